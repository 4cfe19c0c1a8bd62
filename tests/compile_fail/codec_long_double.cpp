// expect-error: durable::codec<long double> is deliberately not provided
// long double has no portable format (80-bit x87, IEEE quad or plain double): journal a double.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#ifndef DURABLE_COMPILE_FAIL_FIXED
using amount = long double;
#else
using amount = double;
#endif

int main() { return static_cast<int>(durable::encode(amount{1}).size()); }
