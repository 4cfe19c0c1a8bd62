// Scenario 3 — retry on success: connecting a custom domain needs its DNS records, which show
// up some time after the user adds them. wait_for_dns_records succeeds every time it runs, but
// its result says "not yet" until the records are there; the output table turns that into a
// temporary error, so the call is polled again later. connect_domain resumes once they exist.
#include <durable/durable.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

struct DNSVerification {
  std::string domain;
  bool records_present;
};

durable::status confirm_dns_records_presence(const DNSVerification& v) noexcept {
  return v.records_present ? durable::status::ok : durable::status::temporary_error;
}

using app_outputs = durable::output_table<
    durable::inspect<DNSVerification, confirm_dns_records_presence>>;
template <class T = void>
using task = durable::durable_task<T, durable::policy<app_outputs>>;

// A stand-in for a DNS lookup: the records appear on the fourth look.
int lookups = 0;
DNSVerification verify(const std::string& domain) { return {domain, ++lookups >= 4}; }

std::string connected_domain;
void mark_connected(const std::string& domain) { connected_domain = domain; }

inline constexpr durable::function wait_for_dns_records{
    "wait_for_dns_records",
    [](std::string domain) -> task<DNSVerification> { co_return verify(domain); },
    {.initial_delay = 1min, .max_delay = 10min, .jitter = durable::jitter::none}};

inline constexpr durable::function connect_domain{
    "connect_domain", [](std::string domain) -> task<> {
      DNSVerification v = co_await wait_for_dns_records(domain);  // retried until records show up
      mark_connected(v.domain);
    }};

int main() {
  durable::manual_clock clock;
  durable::runtime rt{clock};
  rt.on_event(durable::log_events_to(stdout));  // every event as one log line

  rt.run(connect_domain("shop.example.com"));
  std::printf("connected: %s after %d DNS lookups\n", connected_domain.c_str(), lookups);
  return connected_domain == "shop.example.com" && lookups == 4 ? 0 : 1;
}
