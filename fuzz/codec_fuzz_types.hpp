// The types codec_fuzz decodes, and sample values of each for the seed corpus.
// An input's first byte picks the type (modulo fuzz_type_count); the rest is the encoding.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <durable/codec.hpp>

namespace codec_fuzz {

/// The nested container the journal is most likely to meet in anger.
using nested_map =
    std::map<std::string, std::vector<std::optional<std::tuple<std::int64_t, double, bool>>>>;

enum class kind : std::uint8_t { small, medium, large };

/// A user aggregate covering the remaining built-ins, zero-size members included.
struct record {
  std::uint16_t id = 0;
  std::string name;
  std::array<float, 2> position{};
  std::optional<std::chrono::milliseconds> timeout;
  kind size = kind::small;
  std::pair<std::monostate, std::tuple<>> nothing;
  std::vector<bool> flags;
  std::map<std::int32_t, std::vector<std::monostate>> empties;
  char16_t letter = u'a';
  std::int8_t tiny = 0;
};

/// A recursive user type: input-controlled nesting depth.
struct tree {
  std::int64_t value = 0;
  std::vector<tree> children;
  std::optional<std::string> label;
};

/// Zero-byte elements nested in a container: the decoder's budget for them.
using empties = std::vector<std::vector<std::tuple<>>>;

/// Every integer width, each range-checked on decoding, and both float widths.
using scalars = std::tuple<std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t,
                           std::int16_t, std::int32_t, std::int64_t, wchar_t, char32_t, float,
                           double>;

/// A hand-written codec that validates its value.
struct percent {
  std::uint8_t value = 0;
};

using percents = std::vector<std::pair<percent, std::string>>;

inline constexpr std::size_t fuzz_type_count = 6;

}  // namespace codec_fuzz

template <>
struct durable::codec<codec_fuzz::record>
    : durable::fields<&codec_fuzz::record::id, &codec_fuzz::record::name,
                      &codec_fuzz::record::position, &codec_fuzz::record::timeout,
                      &codec_fuzz::record::size, &codec_fuzz::record::nothing,
                      &codec_fuzz::record::flags, &codec_fuzz::record::empties,
                      &codec_fuzz::record::letter, &codec_fuzz::record::tiny> {};

template <>
struct durable::codec<codec_fuzz::tree>
    : durable::fields<&codec_fuzz::tree::value, &codec_fuzz::tree::children,
                      &codec_fuzz::tree::label> {};

template <>
struct durable::codec<codec_fuzz::percent> {
  static void encode(const codec_fuzz::percent& p, durable::byte_writer& out) {
    out.write_fixed(p.value);
  }
  static codec_fuzz::percent decode(durable::byte_reader& in) {
    const std::size_t at = in.offset();
    const auto v = in.read_fixed<std::uint8_t>("percent");
    if (v > 100) throw durable::decode_error("percent", at, "above 100");
    return codec_fuzz::percent{v};
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

namespace codec_fuzz {

/// Calls `f.template operator()<T>()` with the type that `selector` picks.
template <class F>
void with_type(std::uint8_t selector, F&& f) {
  switch (selector % fuzz_type_count) {
    case 0: f.template operator()<nested_map>(); break;
    case 1: f.template operator()<record>(); break;
    case 2: f.template operator()<tree>(); break;
    case 3: f.template operator()<empties>(); break;
    case 4: f.template operator()<scalars>(); break;
    default: f.template operator()<percents>(); break;
  }
}

}  // namespace codec_fuzz
