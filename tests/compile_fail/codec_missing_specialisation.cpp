// expect-error: codec_unavailable<unregistered_widget>.*codec<T> is not specialised for this type|codec<T> is not specialised for this type.*codec_unavailable<unregistered_widget>
// Journaling a class that never opted in: the error names the class and says how to opt in.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <cstdint>

struct unregistered_widget {
  std::int32_t id;
  double weight;
};

#ifdef DURABLE_COMPILE_FAIL_FIXED
template <>
struct durable::codec<unregistered_widget>
    : durable::fields<&unregistered_widget::id, &unregistered_widget::weight> {};
#endif

int main() {
  const auto bytes = durable::encode(unregistered_widget{1, 2.5});
  return static_cast<int>(bytes.size());
}
