// expect-error: the member pointers do not all belong to the same class
// fields<...> listing a member of another class by mistake.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

struct point {
  int x;
  int y;
};
struct size {
  int width;
  int height;
};

#ifndef DURABLE_COMPILE_FAIL_FIXED
template <>
struct durable::codec<point> : durable::fields<&point::x, &size::height> {};
#else
template <>
struct durable::codec<point> : durable::fields<&point::x, &point::y> {};
#endif

int main() { return static_cast<int>(durable::encode(point{1, 2}).size()); }
