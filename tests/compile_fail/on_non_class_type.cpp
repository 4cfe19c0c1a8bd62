// expect-error: E must be an exception class type
// An entry for a built-in type: `throw 42;` is handled by the policy's fallback, not a table.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <stdexcept>

#ifndef DURABLE_COMPILE_FAIL_FIXED
using app_errors = durable::error_table<durable::on<int, durable::status::permanent_error>>;
#else
using app_errors = durable::error_table<durable::on<std::range_error, durable::status::permanent_error>>;
#endif

durable::durable_task<void, durable::policy<app_errors>> body() { co_return; }

int main() { static_cast<void>(body()); }
