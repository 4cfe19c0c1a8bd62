// A worker process for the multi-process tests: serves a PostgreSQL store until SIGTERM.
//
//   durable_postgres_worker <connection> <schema> <lease ms> <capacity>
//
// Steps append to $DURABLE_TEST_EFFECTS.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stop_token>
#include <string>
#include <thread>

#include <durable/postgres/store.hpp>

#include "scenario.hpp"

int main(int argc, char* argv[]) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <connection> <schema> <lease ms> <capacity>\n", argv[0]);
    return 2;
  }
  // SIGTERM asks the serving loop to stop (through sigwait on a thread of its own: a stop
  // request is not async-signal-safe); SIGKILL is what the tests use to crash it.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  std::stop_source stop;
  std::jthread waiter([&] {
    int signal = 0;
    sigwait(&term, &signal);
    stop.request_stop();
  });
  try {
    durable::postgres::store store({.connection = argv[1],
                                    .schema = argv[2],
                                    .lease = std::chrono::milliseconds(std::atoi(argv[3])),
                                    .reconnect_for = std::chrono::seconds(20)});
    durable::runtime rt({.workers = 2});
    durable::invocations invocations{rt, store};
    scenario::register_all(invocations);
    static_cast<void>(invocations.serve(stop.get_token(),
                                        {.capacity = static_cast<std::size_t>(std::atoi(argv[4])),
                                         .poll = std::chrono::milliseconds(100)}));
    rt.run_until_idle();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "durable_postgres_worker: %s\n", e.what());
    kill(getpid(), SIGTERM);
    return 1;
  }
  return 0;
}
