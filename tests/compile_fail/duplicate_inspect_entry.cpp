// expect-error: two entries for the same result type
// Two inspections for one result type in one output_table: which verdict would count?
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <string>

struct DNSVerification {
  std::string domain;
  bool records_present;
};
durable::status confirm_dns_records_presence(const DNSVerification& v) noexcept {
  return v.records_present ? durable::status::ok : durable::status::temporary_error;
}
durable::status domain_is_set(const DNSVerification& v) noexcept {
  return v.domain.empty() ? durable::status::invalid_argument : durable::status::ok;
}

#ifndef DURABLE_COMPILE_FAIL_FIXED
using app_outputs =
    durable::output_table<durable::inspect<DNSVerification, confirm_dns_records_presence>,
                          durable::inspect<DNSVerification, domain_is_set>>;
#else
using app_outputs =
    durable::output_table<durable::inspect<DNSVerification, confirm_dns_records_presence>>;
#endif

durable::durable_task<DNSVerification, durable::policy<app_outputs>> body() {
  DNSVerification v{"example.com", true};
  co_return v;
}

int main() { static_cast<void>(body()); }
