// Scenario 2 — permanent errors: the user to email has been deactivated. Retrying cannot fix
// that, so UserDeactivated is registered as a permanent error and the call stops after one
// attempt; the caller gets a durable::failure that says why.
#include <durable/durable.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

struct UserDeactivated : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using app_errors =
    durable::error_table<durable::on<UserDeactivated, durable::status::permanent_error>>;
template <class T = void>
using task = durable::durable_task<T, durable::policy<app_errors>>;

int emails_attempted = 0;

inline constexpr durable::function send_welcome_email{
    "send_welcome_email", [](std::string user) -> task<> {
      ++emails_attempted;
      if (user == "mallory") throw UserDeactivated("user " + user + " is deactivated");
      std::printf("email sent to %s\n", user.c_str());
      co_return;
    }};

int main() {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  rt.on_event(durable::log_events_to(stdout));  // every event as one log line

  rt.run(send_welcome_email("alice"));
  try {
    rt.run(send_welcome_email("mallory"));
    return 1;
  } catch (const durable::failure& f) {
    std::printf("failure: %s\n", f.what());
    std::printf("status %s after %u attempt(s)\n", std::string(durable::to_string(f.code())).c_str(),
                f.attempts());
    return f.code() == durable::status::permanent_error && emails_attempted == 2 ? 0 : 1;
  }
}
