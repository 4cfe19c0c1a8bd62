// expect-error: more than one error_table
// A policy takes at most one error_table: merge the entries into one table.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <stdexcept>

struct MaintenanceException : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct UserDeactivated : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#ifndef DURABLE_COMPILE_FAIL_FIXED
using app_policy = durable::policy<
    durable::error_table<durable::on<MaintenanceException, durable::status::temporary_error>>,
    durable::error_table<durable::on<UserDeactivated, durable::status::permanent_error>>>;
#else
using app_policy = durable::policy<
    durable::error_table<durable::on<MaintenanceException, durable::status::temporary_error>,
                         durable::on<UserDeactivated, durable::status::permanent_error>>>;
#endif

durable::durable_task<void, app_policy> body() { co_return; }

int main() { static_cast<void>(body()); }
