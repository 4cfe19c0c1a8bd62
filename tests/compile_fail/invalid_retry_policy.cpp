// expect-error: multiplier must be finite and at least 1|not a constant expression|not valid in a constant expression
// An invalid retry policy in an `inline constexpr durable::function` is a compile error: a
// multiplier below 1 would make the delays shrink.
// The throw's text appears only in the source line the compilers quote; without quoted source
// lines g++ says "is not a constant expression" and clang "not valid in a constant expression".
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#ifndef DURABLE_COMPILE_FAIL_FIXED
inline constexpr double multiplier = 0.5;
#else
inline constexpr double multiplier = 1.5;
#endif

inline constexpr durable::function poll{
    "poll", []() -> durable::durable_task<int> { co_return 1; },
    durable::retry_policy{.multiplier = multiplier}};

int main() { static_cast<void>(poll()); }
