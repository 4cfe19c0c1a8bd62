// expect-error: co_yield in a durable_task accepts only durable::fail
// A durable_task is not a generator: co_yield takes only durable::fail(status, message).
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

durable::durable_task<int> body() {
#ifndef DURABLE_COMPILE_FAIL_FIXED
  co_yield 42;
#else
  co_yield durable::fail(durable::status::temporary_error, "not yet");
#endif
  co_return 1;
}

int main() { static_cast<void>(body()); }
