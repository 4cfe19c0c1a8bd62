// expect-error: arguments of a durable call must be copyable
// Every attempt receives its own fresh copy of the arguments, so they must be copyable.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <memory>

#ifndef DURABLE_COMPILE_FAIL_FIXED
inline constexpr durable::function consume{
    "consume", [](std::unique_ptr<int> p) -> durable::durable_task<int> { co_return *p; }};
int main() { static_cast<void>(consume(std::make_unique<int>(7))); }
#else
inline constexpr durable::function consume{
    "consume", [](std::shared_ptr<int> p) -> durable::durable_task<int> { co_return *p; }};
int main() { static_cast<void>(consume(std::make_shared<int>(7))); }
#endif
