// durable::codec (SPEC §7): journal encoding of arguments and results. Round trips of every
// built-in, the exact byte format, user codecs, and that bad bytes always end in decode_error.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <durable/codec.hpp>

namespace {

using bytes = std::vector<std::byte>;

bytes make_bytes(std::initializer_list<int> values) {
  bytes out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

bytes varint(std::uint64_t value) {
  durable::byte_writer out;
  out.write_varint(value);
  return std::move(out).take();
}

bytes concat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class T>
T round_trip(const T& value) {
  return durable::decode<T>(durable::encode(value));
}

template <class T>
void check_round_trip(const T& value) {
  const bytes encoded = durable::encode(value);
  CHECK(durable::decode<T>(encoded) == value);
}

/// The message of the decode_error that decoding `input` as T throws.
template <class T>
std::string decode_failure(const bytes& input) {
  try {
    static_cast<void>(durable::decode<T>(input));
  } catch (const durable::decode_error& e) {
    return e.what();
  }
  FAIL("decoding succeeded");
  return {};
}

// --- user types --------------------------------------------------------------------------------

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  friend bool operator==(const point&, const point&) = default;
};

enum class shape : std::uint8_t { circle, square };
enum legacy_flags : int { flag_none = 0, flag_a = 1, flag_b = -2 };

/// A composite value exercising most built-ins at once.
struct order {
  std::uint64_t id = 0;
  std::string customer;
  std::vector<std::pair<std::string, std::int32_t>> lines;
  std::map<std::string, bool> tags;
  std::optional<double> discount;
  std::chrono::milliseconds timeout{0};
  shape kind = shape::circle;
  std::array<float, 2> position{};
  std::tuple<> nothing;
  std::vector<point> route;
  friend bool operator==(const order&, const order&) = default;
};

/// Only `a` and `b` are journaled; `cache` is rebuilt by the program.
struct settings {
  int a = 0;
  std::string cache = "default";
  int b = 0;
};

/// A hand-written codec with its own validation: a percentage is one byte, at most 100.
struct percent {
  std::uint8_t value = 0;
  friend bool operator==(const percent&, const percent&) = default;
};

/// A hand-written codec that declares no minimum size: containers cannot assume one byte each.
struct celsius {
  double degrees = 0;
  friend bool operator==(const celsius&, const celsius&) = default;
};

/// A recursive type: recursion goes through std::vector.
struct tree {
  std::int32_t value = 0;
  std::vector<tree> children;
  friend bool operator==(const tree&, const tree&) = default;
};

struct unregistered {};

/// Records the largest single allocation it is asked for.
struct allocation_log {
  static inline std::size_t largest = 0;
};

template <class T>
struct tracking_allocator {
  using value_type = T;
  tracking_allocator() = default;
  template <class U>
  tracking_allocator(const tracking_allocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(std::size_t n) {
    allocation_log::largest = std::max(allocation_log::largest, n * sizeof(T));
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>{}.deallocate(p, n); }
  template <class U>
  bool operator==(const tracking_allocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace

template <>
struct durable::codec<point> : durable::fields<&point::x, &point::y> {};
template <>
struct durable::codec<order>
    : durable::fields<&order::id, &order::customer, &order::lines, &order::tags,
                      &order::discount, &order::timeout, &order::kind, &order::position,
                      &order::nothing, &order::route> {};
template <>
struct durable::codec<settings> : durable::fields<&settings::a, &settings::b> {};
template <>
struct durable::codec<tree> : durable::fields<&tree::value, &tree::children> {};

template <>
struct durable::codec<percent> {
  static void encode(const percent& p, durable::byte_writer& out) {
    out.write_fixed(p.value);
  }
  static percent decode(durable::byte_reader& in) {
    const std::size_t at = in.offset();
    const auto v = in.read_fixed<std::uint8_t>("percent");
    if (v > 100) throw durable::decode_error("percent", at, "above 100");
    return percent{v};
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

template <>
struct durable::codec<celsius> {
  static void encode(const celsius& c, durable::byte_writer& out) {
    durable::codec<double>::encode(c.degrees, out);
  }
  static celsius decode(durable::byte_reader& in) {
    return celsius{durable::codec<double>::decode(in)};
  }
};

namespace {

order sample_order() {
  order o;
  o.id = 1234567890123ULL;
  o.customer = "ACME Ltd.";
  o.lines = {{"widget", 3}, {"gadget", -1}, {"", 0}};
  o.tags = {{"priority", true}, {"gift", false}};
  o.discount = 0.15;
  o.timeout = std::chrono::milliseconds(-2500);
  o.kind = shape::square;
  o.position = {1.5F, -0.0F};
  o.route = {{0, 0}, {10, -20}};
  return o;
}

tree chain(std::size_t depth) {
  tree root{static_cast<std::int32_t>(depth), {}};
  tree* node = &root;
  for (std::size_t i = 1; i < depth; ++i) {
    node->children.push_back(tree{static_cast<std::int32_t>(depth - i), {}});
    node = &node->children.back();
  }
  return root;
}

template <class T>
void check_integer_limits() {
  check_round_trip<T>(std::numeric_limits<T>::min());
  check_round_trip<T>(std::numeric_limits<T>::max());
  check_round_trip<T>(T{0});
  check_round_trip<T>(T{1});
  check_round_trip<T>(static_cast<T>(std::numeric_limits<T>::max() / 2));
  if constexpr (std::is_signed_v<T>) {
    check_round_trip<T>(T{-1});
    check_round_trip<T>(static_cast<T>(std::numeric_limits<T>::min() + 1));
  }
}

template <class F>
void check_bits_round_trip(F value) {
  using bits = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  CHECK(std::bit_cast<bits>(round_trip(value)) == std::bit_cast<bits>(value));
}

template <class F>
void check_floating_point_specials() {
  using limits = std::numeric_limits<F>;
  using bits = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  for (F v : {F{0}, -F{0}, F{1}, -F{1}, limits::min(), limits::max(), limits::lowest(),
              limits::epsilon(), limits::denorm_min(), limits::infinity(), -limits::infinity(),
              limits::quiet_NaN(), -limits::quiet_NaN()}) {
    check_bits_round_trip(v);
  }
  // A NaN with a payload keeps it.
  check_bits_round_trip(std::bit_cast<F>(static_cast<bits>(std::bit_cast<bits>(limits::quiet_NaN()) | 5U)));
}

}  // namespace

// --- what is encodable ---------------------------------------------------------------------------

TEST_CASE("encodable holds for built-ins, containers of encodable types and opted-in classes",
          "[codec]") {
  STATIC_REQUIRE(durable::encodable<int>);
  STATIC_REQUIRE(durable::encodable<char32_t>);
  STATIC_REQUIRE(durable::encodable<double>);
  STATIC_REQUIRE(durable::encodable<bool>);
  STATIC_REQUIRE(durable::encodable<shape>);
  STATIC_REQUIRE(durable::encodable<std::byte>);
  STATIC_REQUIRE(durable::encodable<std::string>);
  STATIC_REQUIRE(durable::encodable<std::monostate>);
  STATIC_REQUIRE(durable::encodable<std::tuple<>>);
  STATIC_REQUIRE(durable::encodable<std::chrono::nanoseconds>);
  STATIC_REQUIRE(durable::encodable<std::map<std::string, std::vector<std::optional<point>>>>);
  STATIC_REQUIRE(durable::encodable<std::array<percent, 3>>);
  STATIC_REQUIRE(durable::encodable<tree>);
}

TEST_CASE("encodable is false for types without a codec, qualified types and long double",
          "[codec]") {
  STATIC_REQUIRE_FALSE(durable::encodable<unregistered>);
  STATIC_REQUIRE_FALSE(durable::encodable<std::vector<unregistered>>);
  STATIC_REQUIRE_FALSE(durable::encodable<std::map<int, unregistered>>);
  STATIC_REQUIRE_FALSE(durable::encodable<std::tuple<int, unregistered>>);
  STATIC_REQUIRE_FALSE(durable::encodable<long double>);
  STATIC_REQUIRE_FALSE(durable::encodable<int*>);
  STATIC_REQUIRE_FALSE(durable::encodable<const int>);
  STATIC_REQUIRE_FALSE(durable::encodable<int&>);
  STATIC_REQUIRE_FALSE(durable::encodable<std::string_view>);
}

// --- round trips ---------------------------------------------------------------------------------

TEST_CASE("integers of every width round trip at their limits", "[codec]") {
  check_integer_limits<signed char>();
  check_integer_limits<unsigned char>();
  check_integer_limits<char>();
  check_integer_limits<char8_t>();
  check_integer_limits<char16_t>();
  check_integer_limits<char32_t>();
  check_integer_limits<wchar_t>();
  check_integer_limits<std::int8_t>();
  check_integer_limits<std::uint8_t>();
  check_integer_limits<std::int16_t>();
  check_integer_limits<std::uint16_t>();
  check_integer_limits<std::int32_t>();
  check_integer_limits<std::uint32_t>();
  check_integer_limits<std::int64_t>();
  check_integer_limits<std::uint64_t>();
  check_integer_limits<long>();
  check_integer_limits<unsigned long long>();
}

TEST_CASE("floats and doubles round trip bit for bit, including NaN, infinities and -0.0",
          "[codec]") {
  check_floating_point_specials<float>();
  check_floating_point_specials<double>();
}

TEST_CASE("bool round trips as one byte", "[codec]") {
  CHECK(durable::encode(true) == make_bytes({1}));
  CHECK(durable::encode(false) == make_bytes({0}));
  CHECK(round_trip(true));
  CHECK_FALSE(round_trip(false));
}

TEST_CASE("enums round trip through their underlying type", "[codec]") {
  check_round_trip(shape::square);
  check_round_trip(flag_b);
  check_round_trip(static_cast<shape>(200));  // values outside the enumerators survive too
  check_round_trip(std::byte{0xAB});
  CHECK(durable::encode(shape::square) == make_bytes({1}));
  CHECK(durable::encode(flag_b) == durable::encode(-2));
}

TEST_CASE("strings round trip: empty, embedded NULs, every byte value and large", "[codec]") {
  check_round_trip(std::string{});
  check_round_trip(std::string("a\0b", 3));
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  check_round_trip(every_byte);
  std::string large(3'000'000, 'x');
  for (std::size_t i = 0; i < large.size(); i += 7) large[i] = static_cast<char>(i % 251);
  check_round_trip(large);
  CHECK(durable::encode(large).size() == large.size() + 4);  // 3'000'000 needs a 4-byte varint
}

TEST_CASE("vectors round trip, including vector<bool> and nested vectors", "[codec]") {
  check_round_trip(std::vector<int>{});
  check_round_trip(std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 0, 7});
  check_round_trip(std::vector<bool>{});
  check_round_trip(std::vector<bool>{true, false, false, true, true});
  check_round_trip(std::vector<std::vector<std::string>>{{}, {"a", ""}, {"bc"}});
  check_round_trip(std::vector<std::vector<std::vector<double>>>{{{1.0}, {}}, {}});
  CHECK(durable::encode(std::vector<bool>{true, false}) == make_bytes({2, 1, 0}));
}

TEST_CASE("optional round trips empty and full, nested too", "[codec]") {
  check_round_trip(std::optional<int>{});
  check_round_trip(std::optional<int>{42});
  check_round_trip(std::optional<std::string>{""});
  check_round_trip(std::optional<std::optional<int>>{});
  check_round_trip(std::optional<std::optional<int>>{std::optional<int>{}});
  check_round_trip(std::optional<std::optional<int>>{std::optional<int>{5}});
  CHECK(durable::encode(std::optional<int>{}) == make_bytes({0}));
  CHECK(durable::encode(std::optional<int>{1}) == make_bytes({1, 2}));
}

TEST_CASE("pairs and tuples round trip, including the empty tuple", "[codec]") {
  check_round_trip(std::pair<std::string, double>{"pi", 3.14159});
  check_round_trip(std::tuple<>{});
  check_round_trip(std::tuple<bool>{true});
  check_round_trip(std::tuple<std::int64_t, double, bool, std::string>{-9, 2.5, false, "z"});
  check_round_trip(std::tuple<std::tuple<>, std::pair<int, std::tuple<>>>{});
  CHECK(durable::encode(std::pair<std::uint8_t, bool>{7, true}) == make_bytes({7, 1}));
}

TEST_CASE("maps round trip, keys written in increasing order", "[codec]") {
  check_round_trip(std::map<int, int>{});
  check_round_trip(std::map<std::string, std::vector<int>>{{"b", {1}}, {"a", {}}, {"", {2, 3}}});
  check_round_trip(std::map<int, std::string, std::greater<>>{{1, "one"}, {2, "two"}});
  CHECK(durable::encode(std::map<std::uint8_t, bool>{{9, true}, {3, false}}) ==
        make_bytes({2, 3, 0, 9, 1}));
}

TEST_CASE("durations round trip as their count", "[codec]") {
  check_round_trip(std::chrono::nanoseconds::max());
  check_round_trip(std::chrono::nanoseconds::min());
  check_round_trip(std::chrono::milliseconds(-1));
  check_round_trip(std::chrono::duration<double>(0.25));
  CHECK(durable::encode(std::chrono::seconds(3)) == durable::encode(std::int64_t{3}));
}

TEST_CASE("monostate and empty tuples encode to zero bytes", "[codec]") {
  CHECK(durable::encode(std::monostate{}).empty());
  CHECK(durable::encode(std::tuple<>{}).empty());
  CHECK(durable::encode(std::array<std::monostate, 4>{}).empty());
  check_round_trip(std::monostate{});
  check_round_trip(std::vector<std::monostate>(10));
  CHECK(durable::encode(std::vector<std::monostate>(10)) == make_bytes({10}));
}

TEST_CASE("std::array round trips without a count", "[codec]") {
  check_round_trip(std::array<std::int16_t, 3>{-1, 0, 300});
  check_round_trip(std::array<std::string, 0>{});
  check_round_trip(std::array<std::optional<point>, 2>{point{1, 2}, std::nullopt});
  CHECK(durable::encode(std::array<std::uint8_t, 2>{5, 6}) == make_bytes({5, 6}));
}

TEST_CASE("a composite value round trips", "[codec]") {
  check_round_trip(sample_order());
  check_round_trip(order{});
}

TEST_CASE("a user aggregate opts in with fields and encodes its members in order", "[codec]") {
  check_round_trip(point{-3, 4});
  CHECK(durable::encode(point{-3, 4}) == concat({durable::encode(-3), durable::encode(4)}));
  check_round_trip(std::vector<point>{{1, 2}, {3, 4}});
  check_round_trip(std::map<std::string, point>{{"origin", {}}});
}

TEST_CASE("fields leaves the members it does not list at their default values", "[codec]") {
  settings s;
  s.a = 1;
  s.cache = "rebuilt later";
  s.b = 2;
  const settings back = round_trip(s);
  CHECK(back.a == 1);
  CHECK(back.b == 2);
  CHECK(back.cache == "default");
}

TEST_CASE("a hand-written codec specialisation is used, inside containers too", "[codec]") {
  check_round_trip(percent{100});
  check_round_trip(std::vector<std::optional<percent>>{percent{0}, std::nullopt, percent{55}});
  CHECK(durable::encode(percent{42}) == make_bytes({42}));
  CHECK(decode_failure<std::vector<percent>>(make_bytes({2, 10, 101})) ==
        "durable: cannot decode percent at byte offset 2: above 100");
}

TEST_CASE("a hand-written codec without a declared minimum size is still bounded", "[codec]") {
  check_round_trip(std::vector<celsius>{{-40.0}, {100.0}});
  CHECK_THROWS_AS(durable::decode<std::vector<celsius>>(varint(std::uint64_t{1} << 60)),
                  durable::decode_error);
  // 200 elements that each need 8 bytes, in 200 bytes: the count passes, the input runs out.
  CHECK_THROWS_AS(durable::decode<std::vector<celsius>>(concat({varint(200), bytes(200)})),
                  durable::decode_error);
}

TEST_CASE("a recursive user type round trips", "[codec]") {
  tree t{1, {tree{2, {}}, tree{3, {tree{4, {}}}}}};
  check_round_trip(t);
  check_round_trip(chain(durable::codec_limits::max_depth));
}

TEST_CASE("the byte writer appends after existing bytes and gives them back", "[codec]") {
  durable::byte_writer out(make_bytes({0xAA}));
  out.write_byte(std::byte{0xBB});
  out.write_bytes(make_bytes({1, 2}));
  out.write_fixed(std::uint16_t{0x0102});
  out.write_varint(300);
  CHECK(out.size() == 8);
  CHECK(std::move(out).take() == make_bytes({0xAA, 0xBB, 1, 2, 0x02, 0x01, 0xAC, 0x02}));
}

TEST_CASE("the byte reader tracks its offset and what remains", "[codec]") {
  const bytes input = make_bytes({1, 0x04, 0x03, 0x02, 0x01, 0xFF, 0xFF, 0xAC, 0x02});
  durable::byte_reader in(input);
  CHECK(in.read_byte("b") == std::byte{1});
  CHECK(in.read_fixed<std::uint32_t>("u32") == 0x01020304U);
  CHECK(in.offset() == 5);
  CHECK(in.read_fixed<std::int16_t>("i16") == -1);
  CHECK(in.read_varint("v") == 300);
  CHECK(in.remaining() == 0);
  CHECK_THROWS_AS(in.read_byte("b"), durable::decode_error);
  CHECK(in.read_bytes(0, "nothing").empty());
}

// --- the byte format -----------------------------------------------------------------------------

TEST_CASE("wider integers are varints, zigzag-mapped when signed", "[codec]") {
  CHECK(durable::encode(std::int32_t{0}) == make_bytes({0}));
  CHECK(durable::encode(std::int32_t{-1}) == make_bytes({1}));
  CHECK(durable::encode(std::int32_t{1}) == make_bytes({2}));
  CHECK(durable::encode(std::int64_t{-64}) == make_bytes({0x7F}));
  CHECK(durable::encode(std::int64_t{64}) == make_bytes({0x80, 0x01}));
  CHECK(durable::encode(std::uint16_t{300}) == make_bytes({0xAC, 0x02}));
  CHECK(durable::encode(std::numeric_limits<std::uint64_t>::max()) ==
        make_bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  CHECK(durable::encode(std::numeric_limits<std::int64_t>::min()) ==
        make_bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
}

TEST_CASE("one-byte integers are the byte itself", "[codec]") {
  CHECK(durable::encode(std::int8_t{-1}) == make_bytes({0xFF}));
  CHECK(durable::encode(std::uint8_t{200}) == make_bytes({200}));
  CHECK(durable::encode('A') == make_bytes({0x41}));
}

TEST_CASE("floats and doubles are little-endian IEEE 754 bit patterns", "[codec]") {
  CHECK(durable::encode(1.0F) == make_bytes({0x00, 0x00, 0x80, 0x3F}));
  CHECK(durable::encode(1.0) == make_bytes({0, 0, 0, 0, 0, 0, 0xF0, 0x3F}));
  CHECK(durable::encode(-0.0) == make_bytes({0, 0, 0, 0, 0, 0, 0, 0x80}));
}

TEST_CASE("an integer too large for the decoding type is rejected, not truncated",
          "[codec]") {
  CHECK(decode_failure<std::uint16_t>(varint(70000)) ==
        "durable: cannot decode std::uint16_t at byte offset 0: value 70000 is out of range");
  CHECK_THROWS_AS(durable::decode<std::int32_t>(durable::encode(std::int64_t{1} << 31)),
                  durable::decode_error);
  CHECK_THROWS_AS(durable::decode<std::int32_t>(durable::encode(-(std::int64_t{1} << 31) - 1)),
                  durable::decode_error);
  CHECK(durable::decode<std::int32_t>(durable::encode(-(std::int64_t{1} << 31))) ==
        std::numeric_limits<std::int32_t>::min());
  CHECK_THROWS_AS(durable::decode<char16_t>(durable::encode(std::uint32_t{0x10000})),
                  durable::decode_error);
}

// --- bad input -----------------------------------------------------------------------------------

TEST_CASE("truncating a composite value at any length throws decode_error", "[codec]") {
  const bytes full = durable::encode(sample_order());
  REQUIRE(full.size() > 40);
  for (std::size_t n = 0; n < full.size(); ++n) {
    INFO("prefix of " << n << " of " << full.size() << " bytes");
    const std::span<const std::byte> prefix(full.data(), n);
    CHECK_THROWS_AS(durable::decode<order>(prefix), durable::decode_error);
  }
}

TEST_CASE("corrupting any byte of an encoding gives a value or a decode_error, nothing else",
          "[codec]") {
  const bytes full = durable::encode(sample_order());
  for (std::size_t i = 0; i < full.size(); ++i) {
    for (int replacement : {0x00, 0x01, 0x7F, 0x80, 0xFF}) {
      bytes corrupt = full;
      corrupt[i] = static_cast<std::byte>(replacement);
      INFO("byte " << i << " set to " << replacement);
      try {
        const order o = durable::decode<order>(corrupt);
        CHECK(durable::encode(o) == corrupt);  // canonical: what decodes re-encodes the same
      } catch (const durable::decode_error&) {
      }
    }
  }
}

TEST_CASE("a bool byte other than 0 or 1 is a decode_error", "[codec]") {
  for (int b : {2, 0x80, 0xFF}) {
    CHECK_THROWS_AS(durable::decode<bool>(make_bytes({b})), durable::decode_error);
  }
  CHECK(decode_failure<bool>(make_bytes({7})) ==
        "durable: cannot decode bool at byte offset 0: byte 7 is neither 0 nor 1");
}

TEST_CASE("an optional tag other than 0 or 1 is a decode_error", "[codec]") {
  CHECK(decode_failure<std::optional<int>>(make_bytes({2, 0})) ==
        "durable: cannot decode std::optional tag at byte offset 0: byte 2 is neither 0 "
        "(empty) nor 1 (a value)");
}

TEST_CASE("an oversized length or count is rejected before anything is allocated", "[codec]") {
  using tracked_string = std::basic_string<char, std::char_traits<char>, tracking_allocator<char>>;
  const bytes huge = concat({varint(std::uint64_t{1} << 60), make_bytes({1, 2, 3})});

  allocation_log::largest = 0;
  CHECK(decode_failure<tracked_string>(huge) ==
        "durable: cannot decode std::string length at byte offset 0: length 1152921504606846976 "
        "is larger than the 3 bytes that remain");
  CHECK_THROWS_AS(
      (durable::decode<std::vector<std::int64_t, tracking_allocator<std::int64_t>>>(huge)),
      durable::decode_error);
  CHECK_THROWS_AS(
      (durable::decode<std::vector<tracked_string, tracking_allocator<tracked_string>>>(huge)),
      durable::decode_error);
  CHECK_THROWS_AS((durable::decode<std::map<int, int, std::less<>,
                                           tracking_allocator<std::pair<const int, int>>>>(huge)),
                  durable::decode_error);
  CHECK_THROWS_AS(
      (durable::decode<std::vector<std::monostate, tracking_allocator<std::monostate>>>(huge)),
      durable::decode_error);
  CHECK(allocation_log::largest == 0);

  // A count just above what the input can hold is rejected too.
  CHECK(decode_failure<std::vector<double>>(concat({varint(2), bytes(15)})) ==
        "durable: cannot decode std::vector count at byte offset 0: count 2 is more than the 15 "
        "remaining bytes can hold");
}

TEST_CASE("elements with an empty encoding are bounded per encode and per decode", "[codec]") {
  constexpr std::size_t limit = durable::codec_limits::max_empty_element_bytes;
  CHECK(durable::decode<std::vector<std::monostate>>(varint(limit)).size() == limit);
  CHECK_THROWS_AS(durable::decode<std::vector<std::monostate>>(varint(limit + 1)),
                  durable::decode_error);
  CHECK_THROWS_AS(durable::encode(std::vector<std::monostate>(limit + 1)), std::length_error);

  // The bound is for the whole value, not per container.
  const std::size_t part = limit / 2 + 1;
  CHECK_THROWS_AS(durable::encode(std::vector<std::vector<std::tuple<>>>(2, std::vector<std::tuple<>>(part))),
                  std::length_error);
  CHECK_THROWS_AS(durable::decode<std::vector<std::vector<std::tuple<>>>>(
                      concat({varint(2), varint(part), varint(part)})),
                  durable::decode_error);
  // Bigger elements use more of it.
  using quad = std::array<std::monostate, 4>;
  CHECK_THROWS_AS(durable::decode<std::vector<quad>>(varint(limit / 4 + 1)), durable::decode_error);
}

TEST_CASE("nesting deeper than the limit is rejected without exhausting the stack", "[codec]") {
  constexpr std::size_t max_depth = durable::codec_limits::max_depth;
  CHECK_THROWS_AS(durable::encode(chain(max_depth + 1)), std::length_error);

  // value 0, one child, value 0, one child, ... : a chain far deeper than the limit.
  bytes deep;
  for (int i = 0; i < 100'000; ++i) {
    deep.push_back(std::byte{0});
    deep.push_back(std::byte{1});
  }
  deep.push_back(std::byte{0});
  deep.push_back(std::byte{0});
  const std::string message = decode_failure<tree>(deep);
  CHECK(message == "durable: cannot decode std::vector at byte offset " +
                       std::to_string(2 * max_depth + 1) + ": containers nested deeper than " +
                       std::to_string(max_depth) + " levels");
}

TEST_CASE("trailing bytes after a value are a decode_error", "[codec]") {
  CHECK(decode_failure<std::int32_t>(make_bytes({2, 0})) ==
        "durable: cannot decode the input at byte offset 1: 1 trailing byte after the value");
  CHECK_THROWS_AS(durable::decode<std::monostate>(make_bytes({0})), durable::decode_error);
  bytes extended = durable::encode(sample_order());
  extended.push_back(std::byte{0});
  CHECK_THROWS_AS(durable::decode<order>(extended), durable::decode_error);
}

TEST_CASE("a duplicate map key is a decode_error", "[codec]") {
  CHECK(decode_failure<std::map<std::uint8_t, bool>>(make_bytes({2, 3, 0, 3, 1})) ==
        "durable: cannot decode std::map key at byte offset 3: duplicate key");
}

TEST_CASE("map keys out of order are a decode_error", "[codec]") {
  CHECK(decode_failure<std::map<std::uint8_t, bool>>(make_bytes({2, 9, 0, 3, 1})) ==
        "durable: cannot decode std::map key at byte offset 3: keys out of order (they must be "
        "strictly increasing)");
}

TEST_CASE("overlong and overflowing varints are rejected", "[codec]") {
  // Overlong: a shorter encoding of the same number exists.
  CHECK(decode_failure<std::uint64_t>(make_bytes({0x80, 0x00})) ==
        "durable: cannot decode std::uint64_t at byte offset 0: overlong varint (a shorter "
        "encoding exists)");
  CHECK_THROWS_AS(durable::decode<std::uint32_t>(make_bytes({0x81, 0x80, 0x00})),
                  durable::decode_error);
  CHECK_THROWS_AS(durable::decode<std::string>(make_bytes({0x80, 0x00})), durable::decode_error);
  // Overflow: more than 64 bits.
  CHECK(decode_failure<std::uint64_t>(
            make_bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02})) ==
        "durable: cannot decode std::uint64_t at byte offset 0: varint does not fit in 64 bits");
  CHECK_THROWS_AS(durable::decode<std::uint64_t>(make_bytes(
                      {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x81, 0x00})),
                  durable::decode_error);
  // Truncated.
  CHECK(decode_failure<std::uint64_t>(make_bytes({0xFF, 0xFF})) ==
        "durable: cannot decode std::uint64_t at byte offset 0: unexpected end of input inside "
        "a varint");
}

TEST_CASE("a decode_error names what was decoded and its byte offset", "[codec]") {
  const bytes input = make_bytes({0x02, 0x07});
  try {
    static_cast<void>(durable::decode<std::pair<std::int32_t, bool>>(input));
    FAIL("decoding succeeded");
  } catch (const durable::decode_error& e) {
    CHECK(e.offset() == 1);
    CHECK(std::string(e.what()) ==
          "durable: cannot decode bool at byte offset 1: byte 7 is neither 0 nor 1");
  }
  CHECK(decode_failure<std::pair<std::string, double>>(make_bytes({1, 'a', 0, 0})) ==
        "durable: cannot decode double at byte offset 2: unexpected end of input: needs 8 bytes, "
        "2 remain");
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, durable::decode_error>);
}
