// durable/detail/journal_format.hpp — the bytes of a journal file, and the scanner that reads
// them without changing anything (file_journal's open, `file_journal::inspect`, the fuzzer).
//
// Layout, all integers little endian whatever the host:
//
//   header (16 bytes): magic 89 44 4A 4E 4C 0D 0A 1A ("\x89DJNL\r\n\x1A", PNG-style: the high
//                      byte catches 7-bit transfers, CR LF catches newline conversion)
//                      u32 format version (1)
//                      u32 CRC-32C of the 12 bytes before it
//   record (9 + n):    u32 payload length n (at most max_journal_payload)
//                      u8  type (never 0)
//                      n payload bytes
//                      u32 CRC-32C of length, type and payload
//
// A file is the header followed by records, nothing else. See scan_journal for what counts as
// a torn tail (dropped) and what as damage in the middle (refused).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../journal.hpp"
#include "crc32c.hpp"

namespace durable::detail {

inline constexpr std::array<std::byte, 8> journal_magic = {
    std::byte{0x89}, std::byte{'D'},  std::byte{'J'},  std::byte{'N'},
    std::byte{'L'},  std::byte{'\r'}, std::byte{'\n'}, std::byte{0x1A}};
inline constexpr std::uint32_t journal_format_version = 1;
inline constexpr std::size_t journal_header_size = 16;
/// Length and type, in front of the payload.
inline constexpr std::size_t record_prefix_size = 5;
/// Everything a record adds to its payload: prefix and checksum.
inline constexpr std::size_t record_overhead = record_prefix_size + 4;
/// The unit in which storage loses unsynced writes (a sector); see scan_journal.
inline constexpr std::size_t unwritten_block_size = 512;

constexpr void store_le32(std::byte* out, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}
[[nodiscard]] constexpr std::uint32_t load_le32(const std::byte* p) noexcept { return crc32c_load_le32(p); }

/// The header of a file in format `version`.
[[nodiscard]] constexpr std::array<std::byte, journal_header_size> journal_header(
    std::uint32_t version = journal_format_version) noexcept {
  std::array<std::byte, journal_header_size> h{};
  std::copy(journal_magic.begin(), journal_magic.end(), h.begin());
  store_le32(h.data() + 8, version);
  // The portable CRC is constexpr, so the header of this build is a compile-time constant.
  store_le32(h.data() + 12, ~crc32c_raw_portable(~0u, std::span<const std::byte>(h.data(), 12)));
  return h;
}

/// What goes around a payload on disk: written as prefix, payload, suffix.
struct record_frame {
  std::array<std::byte, record_prefix_size> prefix;  ///< length, type
  std::array<std::byte, 4> suffix;                   ///< CRC-32C
};

/// The frame of a record. `payload` must already have passed journal::check_append.
[[nodiscard]] inline record_frame make_record_frame(std::uint8_t type, std::span<const std::byte> payload) noexcept {
  record_frame f{};
  store_le32(f.prefix.data(), static_cast<std::uint32_t>(payload.size()));
  f.prefix[4] = static_cast<std::byte>(type);
  const std::uint32_t crc = crc32c_extend(crc32c(f.prefix), payload);
  store_le32(f.suffix.data(), crc);
  return f;
}

/// Appends the bytes of one record to `out`.
inline void append_record_bytes(std::vector<std::byte>& out, std::uint8_t type,
                                std::span<const std::byte> payload) {
  const record_frame f = make_record_frame(type, payload);
  out.insert(out.end(), f.prefix.begin(), f.prefix.end());
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), f.suffix.begin(), f.suffix.end());
}

/// One record found by a scan; `payload` points into the scanned bytes.
struct record_view {
  std::uint64_t offset;  ///< where its frame starts
  std::uint8_t type;
  std::span<const std::byte> payload;
};

/// What a scan found.
struct scan_result {
  /// The valid records, in order.
  std::vector<record_view> records;
  /// Bytes scanned.
  std::uint64_t size = 0;
  /// [0, valid_end) is the header and `records`; == size when nothing is wrong. 0 when the
  /// header is missing or wrong.
  std::uint64_t valid_end = 0;
  /// What is wrong, if anything.
  journal_damage damage = journal_damage::none;
  /// Where: the first byte of the bad record, or of the bad header field.
  std::uint64_t damage_offset = 0;
  /// For unwritten_block and corrupt_record: where the first valid record after the damage starts.
  std::uint64_t resumes_at = 0;
  /// The particular check that failed ("checksum mismatch: stored 0x..., computed 0x...").
  std::string detail;
};

/// The verdict on the bytes at one offset.
struct record_check {
  enum class verdict : std::uint8_t { valid, incomplete, bad } outcome;
  /// Offset just past the record (valid), or where its declared length would end it (bad,
  /// with a length that fits in the bytes); 0 otherwise.
  std::uint64_t end = 0;
  /// Why it is not valid.
  std::string why;
};

[[nodiscard]] inline std::string hex32(std::uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s = "0x00000000";
  for (std::size_t i = 0; i < 8; ++i) s[9 - i] = digits[(v >> (4 * i)) & 0xFu];
  return s;
}

/// Checks the record that would start at `pos` (pos < bytes.size()).
[[nodiscard]] inline record_check check_record_at(std::span<const std::byte> bytes, std::uint64_t pos) {
  using v = record_check::verdict;
  const std::uint64_t left = bytes.size() - pos;
  if (left < record_overhead)
    return {v::incomplete, 0,
            "only " + std::to_string(left) + " bytes left; a record takes at least " +
                std::to_string(record_overhead)};
  const std::byte* p = bytes.data() + pos;
  const std::uint32_t length = load_le32(p);
  const auto type = static_cast<std::uint8_t>(p[4]);
  if (length > max_journal_payload)
    return {v::bad, 0,
            "length " + std::to_string(length) + " exceeds the maximum payload of " +
                std::to_string(max_journal_payload) + " bytes"};
  if (length > left - record_overhead)
    return {v::incomplete, 0,
            "length " + std::to_string(length) + " runs past the end of the file (" +
                std::to_string(left - record_overhead) + " payload bytes present)"};
  const std::uint64_t end = pos + record_overhead + length;
  if (type == 0) return {v::bad, end, "record type 0 (reserved; zero-filled bytes look like this)"};
  const std::uint32_t stored = load_le32(p + record_prefix_size + length);
  const std::uint32_t computed = crc32c(bytes.subspan(pos, record_prefix_size + length));
  if (stored != computed)
    return {v::bad, end, "checksum mismatch: stored " + hex32(stored) + ", computed " + hex32(computed)};
  return {v::valid, end, {}};
}

/// How the resynchronising scan checksums: in software, or with the crc32 and carry-less
/// multiply instructions. The scan is compiled once per engine so that, in the hardware one,
/// every checksum step inlines into the loop (a function with a target attribute is not
/// inlined into one without).
struct portable_checksum {
  [[nodiscard]] static std::uint32_t raw(std::uint32_t reg, std::span<const std::byte> data) noexcept {
    return crc32c_raw_portable(reg, data);
  }
  [[nodiscard]] static std::uint32_t raw_short(std::uint32_t reg, std::span<const std::byte> data) noexcept {
    return crc32c_raw_portable(reg, data);
  }
  [[nodiscard]] static std::uint32_t multiply(std::uint32_t a, std::uint32_t b) noexcept {
    return crc32c_multiply(a, b);
  }
};
#if DURABLE_DETAIL_CRC32C_HW
struct hardware_checksum {
  [[gnu::target("sse4.2")]] [[nodiscard]] static std::uint32_t raw(std::uint32_t reg,
                                                                  std::span<const std::byte> data) noexcept {
    return crc32c_raw_hardware(reg, data);
  }
  /// `raw` for fewer than 16 bytes: at most four dependent steps instead of up to 8 + 7.
  [[gnu::target("sse4.2")]] [[nodiscard]] static std::uint32_t raw_short(std::uint32_t reg,
                                                                        std::span<const std::byte> data) noexcept {
    const std::byte* p = data.data();
    const std::size_t n = data.size();
    if ((n & 8u) != 0) {
      const std::uint64_t word = static_cast<std::uint64_t>(crc32c_load_le32(p)) |
                                 (static_cast<std::uint64_t>(crc32c_load_le32(p + 4)) << 32);
      reg = static_cast<std::uint32_t>(_mm_crc32_u64(reg, word));
      p += 8;
    }
    if ((n & 4u) != 0) {
      reg = _mm_crc32_u32(reg, crc32c_load_le32(p));
      p += 4;
    }
    if ((n & 2u) != 0) {
      reg = _mm_crc32_u16(reg, static_cast<std::uint16_t>(static_cast<unsigned>(p[0]) | (static_cast<unsigned>(p[1]) << 8)));
      p += 2;
    }
    if ((n & 1u) != 0) reg = _mm_crc32_u8(reg, static_cast<std::uint8_t>(p[0]));
    return reg;
  }
  /// With the feeder's tables for hardware, which take the extra x^33 back out.
  [[gnu::target("pclmul,sse4.2")]] [[nodiscard]] static std::uint32_t multiply(std::uint32_t a,
                                                                              std::uint32_t b) noexcept {
    return crc32c_multiply_x33_hardware(a, b);
  }
};
#endif

/// The CRC-32C of any range [a, b) of `bytes` with from <= a, without reading the range: the
/// registers after each 16-byte stride from `from` are kept, and
///   crc32c([a, b)) = ~(shift(~0 ^ R(a), b - a) ^ R(b))
/// where R(x) is the register (no inversions) after bytes [from, x) and shift feeds zeros; this
/// follows from the register update being linear. One range costs two partial strides and a
/// constant-time shift (crc32c_zero_feeder), whatever its length; the index takes a quarter of
/// the bytes it covers. `Checksum` must match the feeder's `uses_hardware()`.
template <class Checksum>
class crc_range_index {
 public:
  crc_range_index(std::span<const std::byte> bytes, std::uint64_t from, const crc32c_zero_feeder& feeder)
      : bytes_(bytes), from_(from), feeder_(feeder) {
    marks_.reserve(static_cast<std::size_t>((bytes.size() - from) / stride + 1));
    std::uint32_t reg = 0;
    marks_.push_back(reg);
    for (std::uint64_t at = from; at + stride <= bytes.size(); at += stride) {
      reg = Checksum::raw(reg, bytes.subspan(static_cast<std::size_t>(at), stride));
      marks_.push_back(reg);
    }
  }

  /// crc32c of bytes [a, b); from <= a <= b <= size, b - a < crc32c_zero_feeder::limit.
  [[gnu::always_inline]] [[nodiscard]] std::uint32_t crc(std::uint64_t a, std::uint64_t b) const noexcept {
    const auto [low, high] = feeder_.factors(b - a);
    const std::uint32_t shifted = Checksum::multiply(Checksum::multiply(~0u ^ register_at(a), low), high);
    return ~(shifted ^ register_at(b));
  }

 private:
  static constexpr std::size_t stride = 16;

  [[gnu::always_inline]] [[nodiscard]] std::uint32_t register_at(std::uint64_t x) const noexcept {
    const std::uint64_t k = (x - from_) / stride;
    const std::uint64_t start = from_ + k * stride;
    return Checksum::raw_short(marks_[static_cast<std::size_t>(k)],
                         bytes_.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(x - start)));
  }

  std::span<const std::byte> bytes_;
  std::uint64_t from_;
  const crc32c_zero_feeder& feeder_;
  std::vector<std::uint32_t> marks_;
};

static_assert(record_overhead + max_journal_payload < crc32c_zero_feeder::limit);

/// The first offset in (bad_pos, size) where a valid record starts; see find_valid_record_after.
/// Cheap tests first (type, length in range and inside the file) reject almost every offset of
/// random bytes, but not every offset of chosen (or merely regular) bytes: 0x01 repeated passes
/// them at every offset. So a candidate costs O(1) however long its record: records up to
/// `direct_limit` bytes are checksummed directly, longer ones through a range index.
template <class Checksum>
[[gnu::always_inline]] inline std::optional<std::uint64_t> first_valid_record_from(
    std::span<const std::byte> bytes, std::uint64_t bad_pos, const crc32c_zero_feeder& feeder) {
  constexpr std::uint64_t direct_limit = 64;
  const std::uint64_t size = bytes.size();
  std::optional<crc_range_index<Checksum>> index;
  for (std::uint64_t q = bad_pos + 1; q + record_overhead <= size; ++q) {
    const std::byte* p = bytes.data() + q;
    if (p[4] == std::byte{0}) continue;
    const std::uint32_t length = load_le32(p);
    if (length > max_journal_payload || length > size - q - record_overhead) continue;
    const std::uint64_t crc_end = q + record_prefix_size + length;
    const std::uint32_t stored = load_le32(bytes.data() + crc_end);
    std::uint32_t computed = 0;
    if (record_prefix_size + length <= direct_limit) {
      computed = ~Checksum::raw(~0u, bytes.subspan(static_cast<std::size_t>(q), record_prefix_size + length));
    } else {
      if (!index) index.emplace(bytes, bad_pos + 1, feeder);
      computed = index->crc(q, crc_end);
    }
    if (computed == stored) return q;
  }
  return std::nullopt;
}

/// The scan in software; `feeder` must not use hardware.
inline std::optional<std::uint64_t> first_valid_record_from_portable(std::span<const std::byte> bytes,
                                                                     std::uint64_t bad_pos,
                                                                     const crc32c_zero_feeder& feeder) {
  return first_valid_record_from<portable_checksum>(bytes, bad_pos, feeder);
}
#if DURABLE_DETAIL_CRC32C_HW
/// The scan with the crc32 and carry-less multiply instructions; `feeder` must use hardware.
[[gnu::target("pclmul,sse4.2")]] inline std::optional<std::uint64_t> first_valid_record_from_hardware(
    std::span<const std::byte> bytes, std::uint64_t bad_pos, const crc32c_zero_feeder& feeder) {
  return first_valid_record_from<hardware_checksum>(bytes, bad_pos, feeder);
}
#endif

/// The offset of a valid record starting after `bad_pos`, where the record at `bad_pos` failed
/// with `bad`; nullopt if there is none. Tries the bad record's own declared end first (where
/// a flipped payload or checksum bit leaves the next record), then every later offset: linear
/// in the bytes after `bad_pos` whatever they hold, one candidate record per byte at worst.
[[nodiscard]] inline std::optional<std::uint64_t> find_valid_record_after(std::span<const std::byte> bytes,
                                                                          std::uint64_t bad_pos,
                                                                          const record_check& bad) {
  if (bad.end > bad_pos && bad.end < bytes.size() &&
      check_record_at(bytes, bad.end).outcome == record_check::verdict::valid)
    return bad.end;
  const crc32c_zero_feeder& feeder = crc32c_zero_feeder::instance();
#if DURABLE_DETAIL_CRC32C_HW
  if (feeder.uses_hardware()) return first_valid_record_from_hardware(bytes, bad_pos, feeder);
#endif
  return first_valid_record_from_portable(bytes, bad_pos, feeder);
}

/// Whether [from, to) holds a whole, aligned, all-zero block of unwritten_block_size bytes.
[[nodiscard]] inline bool has_zero_block(std::span<const std::byte> bytes, std::uint64_t from, std::uint64_t to) {
  const std::uint64_t first = (from + unwritten_block_size - 1) / unwritten_block_size * unwritten_block_size;
  for (std::uint64_t a = first; a + unwritten_block_size <= to; a += unwritten_block_size) {
    const auto block = bytes.subspan(static_cast<std::size_t>(a), unwritten_block_size);
    if (std::all_of(block.begin(), block.end(), [](std::byte b) { return b == std::byte{0}; })) return true;
  }
  return false;
}

/// Reads journal bytes: the header, then records until the first one that fails its checks.
///
/// What follows the first bad record decides what it is:
///  - Nothing valid after it: a torn tail (`incomplete_record` if the bytes end inside it,
///    `bad_tail_record` otherwise). A crash while appending leaves exactly this: a partial last
///    record, or garbage or zeros where unsynced data never reached the disk.
///  - A valid record after it: damage in the middle (`corrupt_record`). Crashes do not do this
///    to an append-only file; bit rot, a bug or another writer does, and the records after it
///    may have been made durable, so they must not be dropped silently: the file journal
///    refuses to open.
///  - ... unless an aligned, all-zero 512-byte block lies between the bad record and the valid
///    one (`unwritten_block`). After a power loss, a file system that updated the size before
///    the data shows unwritten blocks as zeros, and later blocks may have been written anyway:
///    that is a torn tail too. Nothing after such a gap was ever made durable (a completed
///    fdatasync would have written the gap), so dropping it all loses no promise. Real damage
///    that zeroes a whole aligned block in the middle cannot be told apart from this, and is
///    treated the same way (and reported).
/// "Valid" is the same test everywhere: length within the maximum and the bytes, type not 0,
/// checksum matching; a chance match in garbage has probability 2^-32 per candidate offset.
[[nodiscard]] inline scan_result scan_journal(std::span<const std::byte> bytes) {
  scan_result r;
  r.size = bytes.size();
  constexpr auto header = journal_header();
  const auto damaged = [&r](journal_damage d, std::uint64_t offset, std::string detail) {
    r.damage = d;
    r.damage_offset = offset;
    r.detail = std::move(detail);
    return std::move(r);
  };

  if (bytes.size() <= journal_header_size) {
    const auto n = bytes.size();
    const bool prefix = std::equal(bytes.begin(), bytes.end(), header.begin());
    const bool zeros = std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
    if (n < journal_header_size && (prefix || zeros))
      return damaged(journal_damage::partial_header, 0,
                     n == 0 ? "empty file" : std::to_string(n) + " bytes of a header");
    if (n == journal_header_size && zeros) return damaged(journal_damage::partial_header, 0, "zero-filled header");
  }
  const auto magic_bytes = std::min<std::size_t>(bytes.size(), journal_magic.size());
  if (!std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(magic_bytes), journal_magic.begin()))
    return damaged(journal_damage::not_a_journal, 0,
                   "the file does not start with the journal magic bytes 89 44 4a 4e 4c 0d 0a 1a");
  if (bytes.size() < journal_header_size)
    return damaged(journal_damage::corrupt_header, magic_bytes,
                   "the file ends inside the header (" + std::to_string(bytes.size()) + " bytes)");
  const std::uint32_t version = load_le32(bytes.data() + 8);
  if (version != journal_format_version)
    return damaged(journal_damage::unsupported_version, 8,
                   "format version " + std::to_string(version) + "; this build reads version " +
                       std::to_string(journal_format_version));
  const std::uint32_t stored = load_le32(bytes.data() + 12);
  const std::uint32_t computed = crc32c(bytes.first(12));
  if (stored != computed)
    return damaged(journal_damage::corrupt_header, 12,
                   "header checksum mismatch: stored " + hex32(stored) + ", computed " + hex32(computed));

  std::uint64_t pos = journal_header_size;
  r.valid_end = pos;
  while (pos < bytes.size()) {
    record_check check = check_record_at(bytes, pos);
    if (check.outcome == record_check::verdict::valid) {
      const std::byte* p = bytes.data() + pos;
      r.records.push_back({pos, static_cast<std::uint8_t>(p[4]),
                           bytes.subspan(static_cast<std::size_t>(pos + record_prefix_size), load_le32(p))});
      pos = check.end;
      r.valid_end = pos;
      continue;
    }
    if (const auto next = find_valid_record_after(bytes, pos, check)) {
      r.resumes_at = *next;
      return damaged(has_zero_block(bytes, pos, *next) ? journal_damage::unwritten_block
                                                       : journal_damage::corrupt_record,
                     pos, std::move(check.why));
    }
    return damaged(check.outcome == record_check::verdict::incomplete ? journal_damage::incomplete_record
                                                                      : journal_damage::bad_tail_record,
                   pos, std::move(check.why));
  }
  return r;
}

}  // namespace durable::detail
