// Scaling out: worker processes share the invocations of one PostgreSQL database. The first
// worker is killed half-way through onboarding alice; the second takes the invocation over once
// the first one's lease has run out, and finishes it without doing the completed steps again.
//
//   DURABLE_PG_URL="host=127.0.0.1 dbname=app" ./example_scaling_out
#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/postgres/store.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stop_token>
#include <string>
#include <thread>

using durable::durable_task;
using namespace std::chrono_literals;

int worker_number = 0;  // which worker process this is (0: the one that submits)

inline constexpr durable::function create_account{
    "create_account", [](std::string user) -> durable_task<std::string> {
      std::printf("  worker %d: creating the account of %s\n", worker_number, user.c_str());
      co_return "acct-" + user;
    }};

inline constexpr durable::function send_welcome_email{
    "send_welcome_email", [](std::string account) -> durable_task<> {
      std::printf("  worker %d: sending the welcome email for %s\n", worker_number, account.c_str());
      co_return;
    }};

inline constexpr durable::function open_trial{
    "open_trial", [](std::string account) -> durable_task<int> {
      std::printf("  worker %d: opening a 30-day trial for %s\n", worker_number, account.c_str());
      co_return 30;
    }};

inline constexpr durable::function onboard{
    "onboard", [](std::string user) -> durable_task<int> {
      const std::string account = co_await create_account(user);
      co_await send_welcome_email(account);
      if (worker_number == 1) {  // only for this demonstration
        std::printf("  ** worker 1 is killed here **\n");
        std::raise(SIGKILL);
      }
      co_return co_await open_trial(account);
    }};

void register_functions(durable::invocations& journaled) {
  journaled.register_function(create_account);
  journaled.register_function(send_welcome_email);
  journaled.register_function(open_trial);
  journaled.register_function(onboard);
}

// A worker process: serves the database until SIGTERM.
int serve(const std::string& url, const std::string& schema) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  std::stop_source stop;
  std::jthread on_term([&] {
    int signal = 0;
    sigwait(&term, &signal);
    stop.request_stop();
  });
  durable::postgres::store store({.connection = url, .schema = schema, .lease = 1s});
  durable::runtime rt({.workers = 1});
  durable::invocations journaled{rt, store};
  register_functions(journaled);
  journaled.serve(stop.get_token(), {.capacity = 4, .poll = 100ms});
  return 0;
}

pid_t start_worker(const char* self, int number, const std::string& url, const std::string& schema) {
  const std::string n = std::to_string(number);
  const char* argv[] = {self, "worker", n.c_str(), url.c_str(), schema.c_str(), nullptr};
  pid_t pid = 0;
  if (::posix_spawn(&pid, self, nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) std::exit(1);
  return pid;
}

int main(int argc, char* argv[]) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // nothing lost in a buffer when a process dies
  if (argc == 5 && std::string(argv[1]) == "worker") {
    worker_number = std::atoi(argv[2]);
    return serve(argv[3], argv[4]);
  }
  const char* url = std::getenv("DURABLE_PG_URL");
  if (url == nullptr) {
    std::printf("set DURABLE_PG_URL to a libpq connection string\n");
    return 2;
  }
  const std::string schema = "scaling_out_" + std::to_string(::getpid());

  // Any process may submit work: it is stored, ready for whichever worker is free.
  durable::postgres::store store({.connection = url, .schema = schema});
  durable::runtime rt({.workers = 1});
  durable::invocations journaled{rt, store};
  register_functions(journaled);
  durable::invocation<int> alice = journaled.submit("onboard:alice", onboard, std::string("alice"));
  std::printf("submitted onboard:alice\n");

  const pid_t first = start_worker(argv[0], 1, url, schema);
  int wait_status = 0;
  ::waitpid(first, &wait_status, 0);
  std::printf("worker 1 was killed: %s\n", WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL ? "yes" : "no");

  const pid_t second = start_worker(argv[0], 2, url, schema);
  std::printf("worker 2 takes over once worker 1's lease (1 s) has run out:\n");
  const int trial_days = alice.get();  // waits for the outcome in the database
  std::printf("alice is onboarded, with a %d-day trial\n", trial_days);

  ::kill(second, SIGTERM);  // a graceful stop
  ::waitpid(second, nullptr, 0);
  store.drop_schema();
  return WIFSIGNALED(wait_status) && trial_days == 30 ? 0 : 1;
}
