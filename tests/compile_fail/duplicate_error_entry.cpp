// expect-error: two entries for the same exception type
// Two entries for one exception type in one error_table: which status would it be?
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <stdexcept>

struct MaintenanceException : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#ifndef DURABLE_COMPILE_FAIL_FIXED
using app_errors = durable::error_table<
    durable::on<MaintenanceException, durable::status::temporary_error>,
    durable::on<MaintenanceException, durable::status::permanent_error>>;
#else
using app_errors =
    durable::error_table<durable::on<MaintenanceException, durable::status::temporary_error>>;
#endif

durable::durable_task<void, durable::policy<app_errors>> body() { co_return; }

int main() { static_cast<void>(body()); }
