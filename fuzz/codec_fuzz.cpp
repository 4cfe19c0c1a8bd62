// libFuzzer target for durable::codec: arbitrary bytes decode to a value or a decode_error,
// nothing else (no crash, no sanitizer report, no other exception, no huge allocation), and
// what decodes re-encodes to exactly the same bytes (the encoding is canonical).
// Input: one byte choosing the type (codec_fuzz_types.hpp), then the encoding.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>

#include "codec_fuzz_types.hpp"

namespace {

struct check_round_trip {
  std::span<const std::byte> input;

  template <class T>
  void operator()() const {
    std::optional<T> value;
    try {
      value.emplace(durable::decode<T>(input));
    } catch (const durable::decode_error&) {
      return;  // the one failure bad bytes may cause
    }
    const std::vector<std::byte> again = durable::encode(*value);
    if (!std::ranges::equal(again, input)) {
      std::fprintf(stderr, "codec_fuzz: %zu input bytes decoded, but re-encoded to %zu other bytes\n",
                   input.size(), again.size());
      std::abort();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // std::byte may alias any object representation, the fuzzer's bytes included.
  const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  codec_fuzz::with_type(data[0], check_round_trip{payload});
  return 0;
}
