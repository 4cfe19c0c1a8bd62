// expect-error: would turn every unknown exception into a success
// A fallback of status::ok would make every unknown exception a success.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#ifndef DURABLE_COMPILE_FAIL_FIXED
using app_policy = durable::policy<durable::fallback<durable::status::ok>>;
#else
using app_policy = durable::policy<durable::fallback<durable::status::temporary_error>>;
#endif

durable::durable_task<void, app_policy> body() { co_return; }

int main() { static_cast<void>(body()); }
