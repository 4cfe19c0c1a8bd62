// durable/codec.hpp — how values become journal bytes and back: the durable::codec<T>
// customisation point, the byte writer/reader it works with, and the built-in codecs.
//
// The format (docs/DESIGN.md, "Encoding") is portable across platforms and endianness, and
// canonical: every value has exactly one encoding, and decoding accepts nothing else, so
// `encode(decode<T>(bytes)) == bytes` whenever decoding succeeds. Decoding untrusted bytes is
// always either a value or a `decode_error`: never undefined behaviour, never an allocation
// larger than the input justifies, never unbounded recursion.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace durable {

/// What decoding throws when the bytes are not the encoding of a value of the requested type:
/// truncated, malformed, non-canonical, or beyond the limits in `codec_limits`. The message
/// says what was being decoded, at which byte offset, and what was wrong with it.
class decode_error : public std::runtime_error {
 public:
  /// `decoding` names the thing being decoded ("std::string length"), `offset` is where it
  /// starts in the input, `problem` says what is wrong.
  decode_error(std::string_view decoding, std::size_t offset, std::string_view problem)
      : std::runtime_error(message(decoding, offset, problem)), offset_(offset) {}

  /// The byte offset, from the start of the input, of the thing that failed to decode.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

 private:
  static std::string message(std::string_view decoding, std::size_t at, std::string_view problem) {
    std::string text = "durable: cannot decode ";
    text += decoding;
    text += " at byte offset ";
    text += std::to_string(at);
    text += ": ";
    text += problem;
    return text;
  }

  std::size_t offset_;
};

/// Limits that bound the work of decoding untrusted bytes. Encoding enforces the same limits
/// (throwing `std::length_error`), so every value that encodes also decodes.
struct codec_limits {
  /// Containers (vectors, maps) nested inside each other, at most: recursive user types
  /// recurse through containers, and their depth must not be left to the input.
  static constexpr std::size_t max_depth = 256;
  /// Memory, in bytes (`sizeof` each), of container elements whose encoding is empty
  /// (`std::monostate`, `std::tuple<>`, ...) in one encode or decode. Other elements each use
  /// at least one input byte, so their count is bounded by the input's size instead.
  static constexpr std::size_t max_empty_element_bytes = std::size_t{1} << 20;
};

namespace detail {
struct codec_access;
}  // namespace detail

/// Appends encoded bytes to a `std::vector<std::byte>` that it owns.
class byte_writer {
 public:
  /// An empty writer.
  byte_writer() = default;
  /// A writer that appends after the bytes already in `initial` (a record header, say).
  explicit byte_writer(std::vector<std::byte> initial) noexcept : bytes_(std::move(initial)) {}

  /// Appends one byte.
  void write_byte(std::byte b) { bytes_.push_back(b); }

  /// Appends raw bytes as they are.
  void write_bytes(std::span<const std::byte> raw) {
    if (raw.empty()) return;
    const std::size_t at = bytes_.size();
    bytes_.resize(at + raw.size());
    std::memcpy(bytes_.data() + at, raw.data(), raw.size());
  }

  /// Appends `value` as `sizeof(I)` bytes, least significant first (two's complement).
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  void write_fixed(I value) {
    const auto bits = static_cast<std::make_unsigned_t<I>>(value);
    for (std::size_t i = 0; i < sizeof(I); ++i) {
      bytes_.push_back(static_cast<std::byte>(static_cast<unsigned char>(bits >> (8 * i))));
    }
  }

  /// Appends `value` as an unsigned LEB128 varint: 7 bits per byte, least significant group
  /// first, high bit set on every byte but the last; the shortest such encoding (1–10 bytes).
  [[gnu::always_inline]] void write_varint(std::uint64_t value) {
    if (value < 0x80) [[likely]] {  // most lengths, counts and small numbers: inline
      bytes_.push_back(static_cast<std::byte>(static_cast<unsigned char>(value)));
      return;
    }
    write_long_varint(value);
  }

  /// The bytes written so far (including the initial ones).
  [[nodiscard]] const std::vector<std::byte>& bytes() const noexcept { return bytes_; }
  /// How many bytes have been written (including the initial ones).
  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  /// Moves the bytes out; the writer is left empty.
  [[nodiscard]] std::vector<std::byte> take() && noexcept { return std::move(bytes_); }
  /// Appends `at_most` bytes for the caller to fill through the pointer returned, valid until
  /// the next write; `end_raw` then gives back what the caller did not fill. For encoders
  /// that know a bound on what they write (durable's own records).
  [[nodiscard]] std::byte* begin_raw(std::size_t at_most) {
    const std::size_t at = bytes_.size();
    bytes_.resize(at + at_most);
    return bytes_.data() + at;
  }
  /// Ends a `begin_raw`: the bytes written end at `end`.
  void end_raw(const std::byte* end) noexcept {
    bytes_.resize(static_cast<std::size_t>(end - bytes_.data()));
  }
  /// Forgets the bytes written, keeping the memory for the next ones.
  void clear() noexcept { bytes_.clear(); }
  /// Makes room for `n` bytes in all, so that writing that many allocates once.
  void reserve(std::size_t n) { bytes_.reserve(n); }

 private:
  friend struct detail::codec_access;
  [[gnu::noinline]] void write_long_varint(std::uint64_t value) {
    while (value >= 0x80) {
      bytes_.push_back(static_cast<std::byte>(static_cast<unsigned char>((value & 0x7F) | 0x80)));
      value >>= 7;
    }
    bytes_.push_back(static_cast<std::byte>(static_cast<unsigned char>(value)));
  }

  std::vector<std::byte> bytes_;
  std::size_t depth_ = 0;
  std::size_t empty_element_bytes_ = 0;
};

/// A cursor over encoded bytes. Every read is bounds-checked: reading past the end, or reading
/// something malformed, throws `decode_error` naming `what` was being read and its offset.
class byte_reader {
 public:
  /// A reader at the start of `input`, which must outlive it.
  explicit byte_reader(std::span<const std::byte> input) noexcept : input_(input) {}

  /// Bytes not read yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return input_.size() - offset_; }
  /// Bytes read so far: the offset, from the start of the input, of the next byte.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

  /// Reads one byte.
  std::byte read_byte(std::string_view what) {
    require(1, what);
    return input_[offset_++];
  }

  /// Reads `count` raw bytes; the span views the input.
  std::span<const std::byte> read_bytes(std::size_t count, std::string_view what) {
    require(count, what);
    const auto raw = input_.subspan(offset_, count);
    offset_ += count;
    return raw;
  }

  /// Reads an integer written by `byte_writer::write_fixed<I>`.
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  I read_fixed(std::string_view what) {
    require(sizeof(I), what);
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < sizeof(I); ++i) {
      bits |= std::uint64_t{std::to_integer<unsigned char>(input_[offset_ + i])} << (8 * i);
    }
    offset_ += sizeof(I);
    // Unsigned-to-signed conversion is modular since C++20: the two's complement bits return.
    return static_cast<I>(static_cast<std::make_unsigned_t<I>>(bits));
  }

  /// Reads a varint written by `byte_writer::write_varint`. Rejects encodings longer than
  /// needed (a final 0x00 group) so that every number has one encoding, and values that do
  /// not fit in 64 bits.
  std::uint64_t read_varint(std::string_view what) {
    const std::size_t start = offset_;
    std::uint64_t value = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (offset_ == input_.size()) {
        throw decode_error(what, start, "unexpected end of input inside a varint");
      }
      const unsigned group = std::to_integer<unsigned>(input_[offset_++]);
      if (shift == 63 && group > 1) {
        throw decode_error(what, start, "varint does not fit in 64 bits");
      }
      value |= std::uint64_t{group & 0x7Fu} << shift;
      if ((group & 0x80u) == 0) {
        if (group == 0 && shift != 0) {
          throw decode_error(what, start, "overlong varint (a shorter encoding exists)");
        }
        return value;
      }
    }
  }

  /// Reads a varint byte count of something that follows in the input, and rejects it before
  /// anyone allocates for it when fewer bytes than that remain.
  std::size_t read_length(std::string_view what) {
    const std::size_t start = offset_;
    const std::uint64_t length = read_varint(what);
    if (length > remaining()) {
      throw decode_error(what, start,
                         "length " + std::to_string(length) + " is larger than the " +
                             std::to_string(remaining()) + " bytes that remain");
    }
    return static_cast<std::size_t>(length);
  }

 private:
  friend struct detail::codec_access;

  void require(std::size_t count, std::string_view what) const {
    if (count > remaining()) {
      throw decode_error(what, offset_,
                         "unexpected end of input: needs " + std::to_string(count) +
                             (count == 1 ? " byte, " : " bytes, ") + std::to_string(remaining()) +
                             " remain");
    }
  }

  std::span<const std::byte> input_;
  std::size_t offset_ = 0;
  std::size_t depth_ = 0;
  std::size_t empty_element_bytes_ = 0;
};

/// The customisation point. A specialisation for `T` provides
///   static void encode(const T& value, durable::byte_writer& out);
///   static T decode(durable::byte_reader& in);   // consumes exactly what encode wrote
/// and optionally `static constexpr std::size_t min_encoded_size()`, a lower bound on the
/// bytes of any encoding, which lets containers reject impossible counts early.
/// For aggregates, derive from `durable::fields<&T::a, &T::b, ...>`. This primary template
/// is the "no codec" case: `encodable<T>` is false.
template <class T>
struct codec {
  /// Marks the primary template; never define this in a specialisation.
  using durable_unspecialised = void;
};

/// True when `T` is a plain object type with a usable `codec<T>`. For the built-in containers
/// this includes their element types; `fields<...>` checks its members where it is used.
template <class T>
concept encodable =
    std::is_object_v<T> && std::same_as<T, std::remove_cv_t<T>> &&
    !requires { typename codec<T>::durable_unspecialised; } &&
    requires(const T& value, byte_writer& out, byte_reader& in) {
      codec<T>::encode(value, out);
      { codec<T>::decode(in) } -> std::same_as<T>;
    };

namespace detail {

template <class T>
constexpr bool codec_unavailable = false;

/// The built-in codecs' own element types, so that a missing codec is reported for the
/// innermost type that lacks one (`widget`, not `std::vector<std::optional<widget>>`).
template <class T>
struct codec_components {
  static constexpr bool known = false;
};

template <class T>
constexpr void require_encodable();

template <class... Cs>
struct components_are {
  static constexpr bool known = true;
  static constexpr void require() { (require_encodable<Cs>(), ...); }
};

template <class T, class A>
struct codec_components<std::vector<T, A>> : components_are<T> {};
template <class T, std::size_t N>
struct codec_components<std::array<T, N>> : components_are<T> {};
template <class T>
struct codec_components<std::optional<T>> : components_are<T> {};
template <class A, class B>
struct codec_components<std::pair<A, B>> : components_are<A, B> {};
template <class... Ts>
struct codec_components<std::tuple<Ts...>> : components_are<Ts...> {};
/// A sorted map with unique keys (std::map, or any type with its interface): matched by shape,
/// so that this header does not need <map> (a third of a second of g++ per translation unit
/// that only retries).
template <class M>
concept sorted_unique_map = requires(M& m, const M& cm, typename M::key_type k, typename M::mapped_type v) {
  typename M::key_compare;
  requires std::same_as<typename M::value_type, std::pair<const typename M::key_type, typename M::mapped_type>>;
  { m.emplace(std::move(k), std::move(v)) } -> std::same_as<std::pair<typename M::iterator, bool>>;
  m.emplace_hint(m.end(), std::move(k), std::move(v));
  { cm.key_comp() } -> std::same_as<typename M::key_compare>;
  { cm.size() } -> std::convertible_to<std::size_t>;
};

template <sorted_unique_map M>
struct codec_components<M> : components_are<typename M::key_type, typename M::mapped_type> {};
template <class Rep, class Period>
struct codec_components<std::chrono::duration<Rep, Period>> : components_are<Rep> {};

/// Fails to compile, naming `T` in the instantiation notes, unless `T` is encodable.
template <class T>
constexpr void require_encodable() {
  if constexpr (encodable<T>) {
    return;
  } else if constexpr (std::is_same_v<std::remove_cv_t<T>, long double>) {
    static_assert(codec_unavailable<T>,
                  "durable::codec<long double> is deliberately not provided: its size and "
                  "format differ between platforms (x87 80-bit, IEEE quad, plain double); "
                  "journal a double instead");
  } else if constexpr (!std::is_object_v<T> || !std::same_as<T, std::remove_cv_t<T>>) {
    static_assert(codec_unavailable<T>,
                  "durable::codec<T> works on plain object types: remove const, volatile and "
                  "references from T");
  } else if constexpr (codec_components<T>::known) {
    // A built-in container whose codec is unavailable: an element type lacks a codec.
    codec_components<T>::require();
  } else {
    static_assert(codec_unavailable<T>,
                  "durable::codec<T> is not specialised for this type: add "
                  "template <> struct durable::codec<T> : durable::fields<&T::a, ...> {}");
  }
}

/// `codec<T>::min_encoded_size()` when the codec declares it, else 0 (nothing known).
template <class T>
constexpr std::size_t min_encoded_size() {
  if constexpr (requires {
                  { codec<T>::min_encoded_size() } -> std::convertible_to<std::size_t>;
                }) {
    return codec<T>::min_encoded_size();
  } else {
    return 0;
  }
}

/// Access to the readers' and writers' limit counters, for the container codecs.
struct codec_access {
  // Plain (non-template) functions touch the counters, so that clang never sees a private
  // field as unused in a translation unit that only encodes or only decodes.
  static void enter(byte_reader& in, std::string_view what) {
    if (in.depth_ == codec_limits::max_depth) {
      throw decode_error(what, in.offset(),
                         "containers nested deeper than " +
                             std::to_string(codec_limits::max_depth) + " levels");
    }
    ++in.depth_;
  }
  static void enter(byte_writer& out, std::string_view /*what*/) {
    if (out.depth_ == codec_limits::max_depth) {
      throw std::length_error("durable::encode: containers nested deeper than " +
                              std::to_string(codec_limits::max_depth) +
                              " levels could not be decoded");
    }
    ++out.depth_;
  }
  static void leave(byte_reader& in) noexcept { --in.depth_; }
  static void leave(byte_writer& out) noexcept { --out.depth_; }

  /// Counts one level of container nesting for as long as it lives.
  template <class Stream>
  class nesting {
   public:
    nesting(Stream& stream, std::string_view what) : stream_(stream) { enter(stream_, what); }
    ~nesting() { leave(stream_); }
    nesting(const nesting&) = delete;
    nesting& operator=(const nesting&) = delete;

   private:
    Stream& stream_;
  };

  /// How many more bytes of empty-encoded elements this reader may produce.
  [[nodiscard]] static std::size_t empty_budget_left(const byte_reader& in) noexcept {
    return codec_limits::max_empty_element_bytes - in.empty_element_bytes_;
  }

  /// Records an element of `size` bytes that decoded from no input at all.
  static void charge_empty(byte_reader& in, std::size_t size, std::string_view what,
                           std::size_t at) {
    if (size > empty_budget_left(in)) {
      throw decode_error(what, at,
                         "more than " + std::to_string(codec_limits::max_empty_element_bytes) +
                             " bytes of elements with an empty encoding");
    }
    in.empty_element_bytes_ += size;
  }

  /// Records an element of `size` bytes that encoded to no bytes at all.
  static void charge_empty(byte_writer& out, std::size_t size) {
    if (size > codec_limits::max_empty_element_bytes - out.empty_element_bytes_) {
      throw std::length_error("durable::encode: more than " +
                              std::to_string(codec_limits::max_empty_element_bytes) +
                              " bytes of elements with an empty encoding could not be decoded");
    }
    out.empty_element_bytes_ += size;
  }
};

/// Reads a container's element count and rejects one that the remaining input cannot hold,
/// before anything is allocated. Elements that may encode to nothing are bounded by the
/// reader's budget for them instead.
template <class Element>
std::size_t read_count(byte_reader& in, std::string_view what) {
  const std::size_t start = in.offset();
  const std::uint64_t count = in.read_varint(what);
  constexpr std::size_t min_size = min_encoded_size<Element>();
  const std::size_t room = min_size > 0 ? in.remaining() / min_size
                                        : in.remaining() + codec_access::empty_budget_left(in) /
                                                               sizeof(Element);
  if (count > room) {
    throw decode_error(what, start,
                       "count " + std::to_string(count) + " is more than the " +
                           std::to_string(in.remaining()) + " remaining bytes can hold");
  }
  return static_cast<std::size_t>(count);
}

/// Space to reserve for `count` decoded elements: never more than 64 KiB up front, because
/// the count is only known to fit the input, and a small encoding can stand for a big object.
template <class Element>
std::size_t reserve_for(std::size_t count) noexcept {
  return std::min(count, std::max(std::size_t{1}, (std::size_t{1} << 16) / sizeof(Element)));
}

/// Decodes one element of a container, charging the reader when it used no input.
template <class Element>
Element decode_element(byte_reader& in, std::string_view what) {
  if constexpr (min_encoded_size<Element>() > 0) {
    return codec<Element>::decode(in);
  } else {
    const std::size_t start = in.offset();
    Element element = codec<Element>::decode(in);
    if (in.offset() == start) codec_access::charge_empty(in, sizeof(Element), what, start);
    return element;
  }
}

/// Encodes one element of a container, charging the writer when it wrote nothing.
template <class Element>
void encode_element(const Element& element, byte_writer& out) {
  if constexpr (min_encoded_size<Element>() > 0) {
    codec<Element>::encode(element, out);
  } else {
    const std::size_t start = out.size();
    codec<Element>::encode(element, out);
    if (out.size() == start) codec_access::charge_empty(out, sizeof(Element));
  }
}

/// A readable name for an integer type in error messages.
template <class I>
constexpr std::string_view integer_name() {
  if constexpr (std::is_same_v<I, char>) return "char";
  else if constexpr (std::is_same_v<I, signed char>) return "signed char";
  else if constexpr (std::is_same_v<I, unsigned char>) return "unsigned char";
  else if constexpr (std::is_same_v<I, char8_t>) return "char8_t";
  else if constexpr (std::is_same_v<I, char16_t>) return "char16_t";
  else if constexpr (std::is_same_v<I, char32_t>) return "char32_t";
  else if constexpr (std::is_same_v<I, wchar_t>) return "wchar_t";
  else if constexpr (std::is_signed_v<I>) {
    if constexpr (sizeof(I) == 2) return "std::int16_t";
    else if constexpr (sizeof(I) == 4) return "std::int32_t";
    else return "std::int64_t";
  } else {
    if constexpr (sizeof(I) == 2) return "std::uint16_t";
    else if constexpr (sizeof(I) == 4) return "std::uint32_t";
    else return "std::uint64_t";
  }
}

/// Integers: one raw byte for 1-byte types; otherwise a varint, zigzag-mapped when signed
/// (0, -1, 1, -2, ... become 0, 1, 2, 3, ...) so small magnitudes take one byte.
template <class I>
void write_integer(I value, byte_writer& out) {
  if constexpr (sizeof(I) == 1) {
    out.write_fixed(value);
  } else if constexpr (std::is_signed_v<I>) {
    const auto wide = static_cast<std::int64_t>(value);
    out.write_varint((static_cast<std::uint64_t>(wide) << 1) ^
                     static_cast<std::uint64_t>(wide >> 63));
  } else {
    out.write_varint(static_cast<std::uint64_t>(value));
  }
}

/// Reads what `write_integer<I>` wrote; a value outside `I`'s range is a `decode_error`, so
/// a `long` journaled on one platform never silently truncates on another.
template <class I>
I read_integer(byte_reader& in, std::string_view what) {
  if constexpr (sizeof(I) == 1) {
    return in.read_fixed<I>(what);
  } else {
    const std::size_t start = in.offset();
    const std::uint64_t raw = in.read_varint(what);
    if constexpr (std::is_signed_v<I>) {
      const auto value = static_cast<std::int64_t>((raw >> 1) ^ (std::uint64_t{0} - (raw & 1)));
      if constexpr (sizeof(I) < sizeof(std::int64_t)) {
        if (value < std::int64_t{std::numeric_limits<I>::min()} ||
            value > std::int64_t{std::numeric_limits<I>::max()}) {
          throw decode_error(what, start, "value " + std::to_string(value) + " is out of range");
        }
      }
      return static_cast<I>(value);
    } else {
      if constexpr (sizeof(I) < sizeof(std::uint64_t)) {
        if (raw > std::uint64_t{std::numeric_limits<I>::max()}) {
          throw decode_error(what, start, "value " + std::to_string(raw) + " is out of range");
        }
      }
      return static_cast<I>(raw);
    }
  }
}

template <class C, class M>
C class_of_member(M C::*);
template <class C, class M>
M type_of_member(M C::*);

template <auto First, auto...>
constexpr auto first_of = First;

}  // namespace detail

/// Encodes `value` into a fresh byte vector. Compiles only for encodable types; otherwise the
/// error names the type that lacks a codec.
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& value) {
  detail::require_encodable<T>();
  byte_writer out;
  // Growing from empty would reallocate at 1, 2, 4, ... bytes: a journal record of a few dozen
  // bytes took six allocations. One small reservation covers most records and values.
  out.reserve(64);
  if constexpr (encodable<T>) codec<T>::encode(value, out);
  return std::move(out).take();
}

/// Decodes a `T` that must span all of `bytes`: leftover bytes are a `decode_error` too.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> bytes) {
  detail::require_encodable<T>();
  if constexpr (encodable<T>) {
    byte_reader in(bytes);
    T value = codec<T>::decode(in);
    if (in.remaining() != 0) {
      throw decode_error("the input", in.offset(),
                         std::to_string(in.remaining()) +
                             (in.remaining() == 1 ? " trailing byte" : " trailing bytes") +
                             " after the value");
    }
    return value;
  } else {
    std::terminate();  // unreachable: require_encodable has already failed the build
  }
}

/// The one-line codec for aggregates and simple classes:
///   template <> struct durable::codec<point> : durable::fields<&point::x, &point::y> {};
/// Encodes the listed data members in the order listed, nothing else (no names, no count).
/// Decoding value-initialises the class, then assigns the listed members in order, so the
/// class must be default-constructible and unlisted members keep their default values.
/// Reordering, adding or removing members changes the format.
template <auto... Members>
struct fields {
  static_assert(sizeof...(Members) > 0,
                "durable::fields<...> needs at least one member pointer, like &point::x");
  static_assert((std::is_member_object_pointer_v<decltype(Members)> && ...),
                "durable::fields<...> takes pointers to data members, like &point::x");

  /// The class whose members are listed.
  using class_type = decltype(detail::class_of_member(detail::first_of<Members...>));

  static_assert((std::is_same_v<decltype(detail::class_of_member(Members)), class_type> && ...),
                "durable::fields<...>: the member pointers do not all belong to the same class "
                "(a member declared in a base class has the base as its class)");
  static_assert(
      (!std::is_const_v<decltype(detail::type_of_member(Members))> && ...),
      "durable::fields<...>: a const member cannot be assigned when decoding; write a codec "
      "by hand for this class");

  /// Encodes each listed member with its own codec.
  static void encode(const class_type& value, byte_writer& out) {
    (detail::require_encodable<decltype(detail::type_of_member(Members))>(), ...);
    if constexpr ((encodable<decltype(detail::type_of_member(Members))> && ...)) {
      (codec<decltype(detail::type_of_member(Members))>::encode(value.*Members, out), ...);
    }
  }

  /// Value-initialises a `class_type`, then decodes each listed member into it, in order.
  static class_type decode(byte_reader& in) {
    static_assert(std::default_initializable<class_type>,
                  "durable::fields<...> decodes by value-initialising the class and then "
                  "assigning its members: the class must be default-constructible");
    (detail::require_encodable<decltype(detail::type_of_member(Members))>(), ...);
    class_type value{};
    if constexpr ((encodable<decltype(detail::type_of_member(Members))> && ...)) {
      // The comma fold evaluates left to right: members are read in the listed order.
      ((value.*Members = codec<decltype(detail::type_of_member(Members))>::decode(in)), ...);
    }
    return value;
  }

  /// The sum of the members' lower bounds.
  static constexpr std::size_t min_encoded_size() {
    return (std::size_t{0} + ... +
            detail::min_encoded_size<decltype(detail::type_of_member(Members))>());
  }
};

// ---------------------------------------------------------------------------------------------
// Built-in codecs. Formats are listed in docs/DESIGN.md ("Encoding").
// ---------------------------------------------------------------------------------------------

/// `bool`: one byte, 0 or 1; any other byte is a `decode_error`.
template <>
struct codec<bool> {
  static void encode(const bool& value, byte_writer& out) {
    out.write_byte(value ? std::byte{1} : std::byte{0});
  }
  static bool decode(byte_reader& in) {
    const std::size_t start = in.offset();
    const auto b = std::to_integer<unsigned>(in.read_byte("bool"));
    if (b > 1) {
      throw decode_error("bool", start, "byte " + std::to_string(b) + " is neither 0 nor 1");
    }
    return b == 1;
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// Integers up to 64 bits: 1-byte types as that byte; wider ones as a canonical varint,
/// zigzag-mapped when signed. Decoding rejects values outside the type's range.
template <std::integral I>
  requires(!std::same_as<I, bool> && sizeof(I) <= 8 && std::same_as<I, std::remove_cv_t<I>>)
struct codec<I> {
  static void encode(const I& value, byte_writer& out) { detail::write_integer(value, out); }
  static I decode(byte_reader& in) {
    return detail::read_integer<I>(in, detail::integer_name<I>());
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `float` and `double`: the IEEE 754 bit pattern (4 or 8 bytes), least significant byte
/// first; NaN payloads, infinities and -0.0 survive exactly.
template <std::floating_point F>
  requires(std::numeric_limits<F>::is_iec559 && (sizeof(F) == 4 || sizeof(F) == 8) &&
           std::same_as<F, std::remove_cv_t<F>>)
struct codec<F> {
  using bits_type = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;
  static void encode(const F& value, byte_writer& out) {
    out.write_fixed(std::bit_cast<bits_type>(value));
  }
  static F decode(byte_reader& in) {
    return std::bit_cast<F>(in.read_fixed<bits_type>(sizeof(F) == 4 ? "float" : "double"));
  }
  static constexpr std::size_t min_encoded_size() { return sizeof(F); }
};

/// Enumerations: as their underlying type. Any value of that type decodes (C++ cannot list
/// an enumeration's enumerators); check them in your own code if it matters.
template <class E>
  requires(std::is_enum_v<E> && std::same_as<E, std::remove_cv_t<E>>)
struct codec<E> {
  using underlying = std::underlying_type_t<E>;
  static void encode(const E& value, byte_writer& out) {
    codec<underlying>::encode(static_cast<underlying>(value), out);
  }
  static E decode(byte_reader& in) {
    if constexpr (std::is_same_v<underlying, bool>) {
      return static_cast<E>(codec<bool>::decode(in));
    } else {
      return static_cast<E>(detail::read_integer<underlying>(in, "enum"));
    }
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `std::string` (any allocator): a varint byte length, then the bytes as they are.
template <class Alloc>
struct codec<std::basic_string<char, std::char_traits<char>, Alloc>> {
  using string_type = std::basic_string<char, std::char_traits<char>, Alloc>;
  static void encode(const string_type& value, byte_writer& out) {
    out.write_varint(static_cast<std::uint64_t>(value.size()));
    out.write_bytes(std::as_bytes(std::span(value.data(), value.size())));
  }
  static string_type decode(byte_reader& in) {
    const std::size_t length = in.read_length("std::string length");
    const auto raw = in.read_bytes(length, "std::string bytes");
    // std::byte and char may alias each other, so viewing the input as chars is fine.
    return string_type(reinterpret_cast<const char*>(raw.data()), raw.size());
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `std::vector<T>` (any allocator, `vector<bool>` too): a varint count, then each element.
template <class T, class Alloc>
  requires encodable<T>
struct codec<std::vector<T, Alloc>> {
  using vector_type = std::vector<T, Alloc>;
  static void encode(const vector_type& value, byte_writer& out) {
    const detail::codec_access::nesting<byte_writer> level(out, "std::vector");
    out.write_varint(static_cast<std::uint64_t>(value.size()));
    for (const T& element : value) detail::encode_element<T>(element, out);
  }
  static vector_type decode(byte_reader& in) {
    const detail::codec_access::nesting<byte_reader> level(in, "std::vector");
    const std::size_t count = detail::read_count<T>(in, "std::vector count");
    vector_type result;
    result.reserve(detail::reserve_for<T>(count));
    for (std::size_t i = 0; i < count; ++i) {
      result.push_back(detail::decode_element<T>(in, "std::vector element"));
    }
    return result;
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `std::array<T, N>`: the N elements, no count. Decoding value-initialises the array and
/// assigns each element, so T must be default-constructible.
template <class T, std::size_t N>
  requires encodable<T>
struct codec<std::array<T, N>> {
  static void encode(const std::array<T, N>& value, byte_writer& out) {
    for (const T& element : value) codec<T>::encode(element, out);
  }
  static std::array<T, N> decode(byte_reader& in) {
    static_assert(std::default_initializable<T>,
                  "durable::codec<std::array<T, N>> needs a default-constructible T");
    std::array<T, N> result{};
    for (T& element : result) element = codec<T>::decode(in);
    return result;
  }
  static constexpr std::size_t min_encoded_size() {
    return N * detail::min_encoded_size<T>();
  }
};

/// `std::optional<T>`: a tag byte, 0 (empty) or 1 (a value follows); any other tag is a
/// `decode_error`.
template <class T>
  requires encodable<T>
struct codec<std::optional<T>> {
  static void encode(const std::optional<T>& value, byte_writer& out) {
    out.write_byte(value ? std::byte{1} : std::byte{0});
    if (value) codec<T>::encode(*value, out);
  }
  static std::optional<T> decode(byte_reader& in) {
    const std::size_t start = in.offset();
    const auto tag = std::to_integer<unsigned>(in.read_byte("std::optional tag"));
    if (tag > 1) {
      throw decode_error("std::optional tag", start,
                         "byte " + std::to_string(tag) + " is neither 0 (empty) nor 1 (a value)");
    }
    if (tag == 0) return std::nullopt;
    return std::optional<T>(std::in_place, codec<T>::decode(in));
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `std::pair<A, B>`: first, then second.
template <class A, class B>
  requires(encodable<A> && encodable<B>)
struct codec<std::pair<A, B>> {
  static void encode(const std::pair<A, B>& value, byte_writer& out) {
    codec<A>::encode(value.first, out);
    codec<B>::encode(value.second, out);
  }
  static std::pair<A, B> decode(byte_reader& in) {
    // A braced initializer list is evaluated left to right: first is read first.
    return std::pair<A, B>{codec<A>::decode(in), codec<B>::decode(in)};
  }
  static constexpr std::size_t min_encoded_size() {
    return detail::min_encoded_size<A>() + detail::min_encoded_size<B>();
  }
};

/// `std::tuple<Ts...>`: each element in order; the empty tuple is zero bytes.
template <class... Ts>
  requires(encodable<Ts> && ...)
struct codec<std::tuple<Ts...>> {
  static void encode(const std::tuple<Ts...>& value, [[maybe_unused]] byte_writer& out) {
    std::apply([&](const Ts&... element) { (codec<Ts>::encode(element, out), ...); }, value);
  }
  static std::tuple<Ts...> decode([[maybe_unused]] byte_reader& in) {
    // A braced initializer list is evaluated left to right: elements are read in order.
    return std::tuple<Ts...>{codec<Ts>::decode(in)...};
  }
  static constexpr std::size_t min_encoded_size() {
    return (std::size_t{0} + ... + detail::min_encoded_size<Ts>());
  }
};

/// `std::map<K, V>` (any comparator and allocator, or any sorted unique map with its
/// interface): a varint count, then key, value, key, value, ... in the map's order. Decoding
/// requires strictly increasing keys, which rejects duplicates and keeps the encoding of each
/// map unique.
template <detail::sorted_unique_map Map>
  requires(encodable<typename Map::key_type> && encodable<typename Map::mapped_type>)
struct codec<Map> {
  using map_type = Map;
  using K = typename Map::key_type;
  using V = typename Map::mapped_type;
  using entry = std::pair<K, V>;  // the element as far as limits are concerned

  static void encode(const map_type& value, byte_writer& out) {
    const detail::codec_access::nesting<byte_writer> level(out, "std::map");
    out.write_varint(static_cast<std::uint64_t>(value.size()));
    for (const auto& [key, mapped] : value) {
      const std::size_t start = out.size();
      codec<K>::encode(key, out);
      codec<V>::encode(mapped, out);
      if constexpr (detail::min_encoded_size<entry>() == 0) {
        if (out.size() == start) detail::codec_access::charge_empty(out, sizeof(entry));
      }
    }
  }

  static map_type decode(byte_reader& in) {
    const detail::codec_access::nesting<byte_reader> level(in, "std::map");
    const std::size_t count = detail::read_count<entry>(in, "std::map count");
    map_type result;
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t start = in.offset();
      K key = codec<K>::decode(in);
      if (!result.empty()) {
        const K& last = std::prev(result.end())->first;
        if (!result.key_comp()(last, key)) {
          throw decode_error("std::map key", start,
                             result.key_comp()(key, last)
                                 ? "keys out of order (they must be strictly increasing)"
                                 : "duplicate key");
        }
      }
      V mapped = codec<V>::decode(in);
      if constexpr (detail::min_encoded_size<entry>() == 0) {
        if (in.offset() == start) {
          detail::codec_access::charge_empty(in, sizeof(entry), "std::map entry", start);
        }
      }
      result.emplace_hint(result.end(), std::move(key), std::move(mapped));
    }
    return result;
  }
  static constexpr std::size_t min_encoded_size() { return 1; }
};

/// `std::chrono::duration<Rep, Period>`: its `count()` with Rep's codec. The period is not
/// written: decode into the same duration type you encoded.
template <class Rep, class Period>
  requires encodable<Rep>
struct codec<std::chrono::duration<Rep, Period>> {
  using duration_type = std::chrono::duration<Rep, Period>;
  static void encode(const duration_type& value, byte_writer& out) {
    codec<Rep>::encode(value.count(), out);
  }
  static duration_type decode(byte_reader& in) { return duration_type(codec<Rep>::decode(in)); }
  static constexpr std::size_t min_encoded_size() { return detail::min_encoded_size<Rep>(); }
};

/// `std::monostate`: zero bytes. It stands in for the result of a `void` function.
template <>
struct codec<std::monostate> {
  static void encode(const std::monostate&, byte_writer&) {}
  static std::monostate decode(byte_reader&) { return {}; }
  static constexpr std::size_t min_encoded_size() { return 0; }
};

}  // namespace durable
