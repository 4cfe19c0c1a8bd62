// expect-error: codec_unavailable<nested_gadget>.*codec<T> is not specialised for this type|codec<T> is not specialised for this type.*codec_unavailable<nested_gadget>
// A container of a class without a codec: the error names the element class, not the container.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

struct nested_gadget {
  std::string name;
};

#ifdef DURABLE_COMPILE_FAIL_FIXED
template <>
struct durable::codec<nested_gadget> : durable::fields<&nested_gadget::name> {};
#endif

using inventory = std::map<std::string, std::vector<std::optional<nested_gadget>>>;

int main() {
  const std::vector<std::byte> bytes(1);
  return static_cast<int>(durable::decode<inventory>(bytes).size());
}
