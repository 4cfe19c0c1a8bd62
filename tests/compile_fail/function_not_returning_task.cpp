// expect-error: must return a durable::durable_task
// The callable of a durable::function must be a coroutine returning a durable_task: the call
// retries by starting a fresh task for each attempt.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <string>

#ifndef DURABLE_COMPILE_FAIL_FIXED
inline constexpr durable::function lookup{
    "lookup", [](std::string domain) -> std::string { return domain + ".ip"; }};
#else
inline constexpr durable::function lookup{
    "lookup", [](std::string domain) -> durable::durable_task<std::string> { co_return domain + ".ip"; }};
#endif

int main() { static_cast<void>(lookup(std::string("example.com"))); }
