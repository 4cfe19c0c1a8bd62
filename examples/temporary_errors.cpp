// Scenario 1 — temporary errors: the application is down for maintenance, so fetching a
// profile fails for a while. MaintenanceException is registered as a temporary error, so the
// call is retried with exponential backoff until the application is back.
#include <durable/durable.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

struct MaintenanceException : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using app_errors =
    durable::error_table<durable::on<MaintenanceException, durable::status::temporary_error>>;
template <class T = void>
using task = durable::durable_task<T, durable::policy<app_errors>>;

// A stand-in for the remote application: in maintenance for its first three requests.
int requests_served = 0;
std::string get_profile(const std::string& user) {
  if (++requests_served <= 3) throw MaintenanceException("application in maintenance");
  return user + " <" + user + "@example.com>";
}

inline constexpr durable::function fetch_profile{
    "fetch_profile",
    [](std::string user) -> task<std::string> { co_return get_profile(user); },
    {.initial_delay = 500ms, .multiplier = 2.0, .jitter = durable::jitter::none}};

int main() {
  // A manual clock makes the backoff instant and the log reproducible; with
  // `durable::runtime rt;` the same program waits for real.
  durable::manual_clock clock;
  durable::runtime rt{clock};
  rt.on_event(durable::log_events_to(stdout));  // every event as one log line

  const std::string profile = rt.run(fetch_profile("ada"));
  std::printf("profile: %s\n", profile.c_str());
  return profile == "ada <ada@example.com>" ? 0 : 1;
}
