// durable/detail/crc32c.hpp — CRC-32C (Castagnoli), the checksum of journal records.
//
// CRC-32C rather than zlib's CRC-32: better error detection for the record sizes a journal
// holds (Castagnoli's polynomial keeps Hamming distance 6 up to ~5 KB and 4 up to ~2^31 bits),
// and x86-64 computes it in hardware (SSE4.2 `crc32`), used here when the CPU has it. Elsewhere
// a table-driven slice-by-8 loop does it in software; both give the same bits.
//
// Three levels, all on the reflected 32-bit register:
//  - `crc32c_raw(reg, data)`: the bare register update, no inversions. It is linear over GF(2)
//    in (reg, data) jointly, which is what makes `crc32c_shift` and range CRCs possible.
//  - `crc32c_extend(crc, data)`: continues a finished CRC: extend(crc32c(a), b) == crc32c(a||b).
//  - `crc32c(data)`: the standard checksum (init ~0, final ~0): crc32c("123456789") == 0xE3069283.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#include <wmmintrin.h>
#define DURABLE_DETAIL_CRC32C_HW 1
#else
#define DURABLE_DETAIL_CRC32C_HW 0
#endif

namespace durable::detail {

/// The Castagnoli polynomial 0x1EDC6F41, bit-reversed (the register shifts right).
inline constexpr std::uint32_t crc32c_polynomial = 0x82F63B78u;

/// tables[0] is the classic byte table; tables[k][b] is the register after byte b followed by
/// k zero bytes, so eight bytes are folded in with eight independent lookups.
inline constexpr std::array<std::array<std::uint32_t, 256>, 8> crc32c_tables = [] {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t r = b;
    for (int i = 0; i < 8; ++i) r = (r & 1u) != 0 ? (r >> 1) ^ crc32c_polynomial : r >> 1;
    t[0][b] = r;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}();

[[nodiscard]] constexpr std::uint32_t crc32c_load_le32(const std::byte* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

/// The software register update (slice-by-8). Same result as the hardware one.
[[nodiscard]] constexpr std::uint32_t crc32c_raw_portable(std::uint32_t reg,
                                                          std::span<const std::byte> data) noexcept {
  const auto& t = crc32c_tables;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    // Little-endian loads whatever the host: the reflected register eats bytes in file order.
    const std::uint32_t lo = crc32c_load_le32(p) ^ reg;
    const std::uint32_t hi = crc32c_load_le32(p + 4);
    reg = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++p) reg = (reg >> 8) ^ t[0][(reg ^ static_cast<std::uint32_t>(*p)) & 0xFFu];
  return reg;
}

#if DURABLE_DETAIL_CRC32C_HW
/// The SSE4.2 register update; only called after `crc32c_hardware_available()` said yes.
/// The target attribute lets this one function use the instruction without compiling the
/// whole program for SSE4.2.
[[gnu::target("sse4.2")]] inline std::uint32_t crc32c_raw_hardware(
    std::uint32_t reg, std::span<const std::byte> data) noexcept {
  const std::byte* p = data.data();
  std::size_t n = data.size();
  std::uint64_t r = reg;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint64_t word = static_cast<std::uint64_t>(crc32c_load_le32(p)) |
                               (static_cast<std::uint64_t>(crc32c_load_le32(p + 4)) << 32);
    r = _mm_crc32_u64(r, word);
  }
  auto r32 = static_cast<std::uint32_t>(r);
  for (; n > 0; --n, ++p) r32 = _mm_crc32_u8(r32, static_cast<std::uint8_t>(*p));
  return r32;
}

/// Whether this CPU has the SSE4.2 `crc32` instruction (asked once).
[[nodiscard]] inline bool crc32c_hardware_available() noexcept {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}
#else
[[nodiscard]] inline std::uint32_t crc32c_raw_hardware(std::uint32_t reg,
                                                       std::span<const std::byte> data) noexcept {
  return crc32c_raw_portable(reg, data);
}
[[nodiscard]] inline bool crc32c_hardware_available() noexcept { return false; }
#endif

/// The register after feeding it `data` (no inversions; linear in `reg` and `data`).
[[nodiscard]] inline std::uint32_t crc32c_raw(std::uint32_t reg, std::span<const std::byte> data) noexcept {
  return crc32c_hardware_available() ? crc32c_raw_hardware(reg, data) : crc32c_raw_portable(reg, data);
}

/// Continues a finished CRC-32C: crc32c_extend(crc32c(a), b) == crc32c(a followed by b).
[[nodiscard]] inline std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return ~crc32c_raw(~crc, data);
}

/// The CRC-32C of `data`.
[[nodiscard]] inline std::uint32_t crc32c(std::span<const std::byte> data) noexcept {
  return crc32c_extend(0, data);
}

// ---------------------------------------------------------------------------------------------
// Feeding zeros without touching them. Because the update is linear, the register after n zero
// bytes is a linear map of the register alone: a 32x32 bit matrix. zeros_maps[k] is that map for
// 2^k zero bytes, stored as the images of the 32 basis bits. Any n is then at most one map per
// set bit of n: ~30 maps of 32 xors, whatever n is. The journal scanner uses it to test whether
// a record starts at an arbitrary offset without re-reading its payload (see journal_format.hpp).
// ---------------------------------------------------------------------------------------------

inline constexpr int crc32c_zeros_levels = 40;  // shifts up to 2^40 bytes

/// Applies a linear map given as basis images.
[[nodiscard]] constexpr std::uint32_t crc32c_apply_map(const std::array<std::uint32_t, 32>& map,
                                                       std::uint32_t reg) noexcept {
  std::uint32_t out = 0;
  for (int bit = 0; reg != 0; ++bit, reg >>= 1)
    if ((reg & 1u) != 0) out ^= map[static_cast<std::size_t>(bit)];
  return out;
}

inline constexpr std::array<std::array<std::uint32_t, 32>, crc32c_zeros_levels> crc32c_zeros_maps = [] {
  std::array<std::array<std::uint32_t, 32>, crc32c_zeros_levels> maps{};
  for (std::size_t bit = 0; bit < 32; ++bit) {  // one zero byte: one step of the byte table
    const std::uint32_t reg = 1u << bit;
    maps[0][bit] = (reg >> 8) ^ crc32c_tables[0][reg & 0xFFu];
  }
  for (std::size_t k = 1; k < maps.size(); ++k)  // 2^k zeros: the 2^(k-1) map applied twice
    for (std::size_t bit = 0; bit < 32; ++bit)
      maps[k][bit] = crc32c_apply_map(maps[k - 1], crc32c_apply_map(maps[k - 1], 1u << bit));
  return maps;
}();

/// The register after feeding it `n` zero bytes: crc32c_raw(reg, n zeros), in O(log n).
[[nodiscard]] constexpr std::uint32_t crc32c_shift(std::uint32_t reg, std::uint64_t n) noexcept {
  for (std::size_t k = 0; n != 0 && k < crc32c_zeros_maps.size(); ++k, n >>= 1)
    if ((n & 1u) != 0) reg = crc32c_apply_map(crc32c_zeros_maps[k], reg);
  return reg;
}

// ---------------------------------------------------------------------------------------------
// Feeding zeros in constant time. The register is a polynomial over GF(2) of degree < 32 (bit 31
// is x^0, bit 0 is x^31: the register shifts right), and feeding n zero bytes multiplies it by
// x^(8n) modulo the polynomial P. So a shift is one multiplication by a power of x, and the power
// comes from two tables (n = low + 2^14 * high). On x86-64 the multiplication is a carry-less
// multiply (PCLMULQDQ) reduced by the crc32 instruction: crc32_u64(0, clmul(a, b)) = a*b*x^33,
// so the hardware tables hold each power times x^-33. The scanner of a damaged journal tail
// tests up to one candidate record per byte, each needing one shift (journal_format.hpp).
// ---------------------------------------------------------------------------------------------

/// a * b mod P, in the register's representation (portable; 32 steps).
[[nodiscard]] constexpr std::uint32_t crc32c_multiply(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t product = 0;
  for (std::uint32_t coefficient = 0x80000000u; coefficient != 0; coefficient >>= 1) {  // x^0 first
    if ((a & coefficient) != 0) product ^= b;
    b = (b & 1u) != 0 ? (b >> 1) ^ crc32c_polynomial : b >> 1;  // b *= x
  }
  return product;
}

/// The polynomial 1 (x^0), and x^-1 mod P: P = x^32 + p(x) with p(0) = 1, so
/// x * (x^31 + (p(x) - 1) / x) = P - 1 = 1 (mod P, over GF(2)).
inline constexpr std::uint32_t crc32c_one = 0x80000000u;
inline constexpr std::uint32_t crc32c_x_inverse = ((crc32c_polynomial & 0x7FFFFFFFu) << 1) | 1u;
static_assert(crc32c_multiply(crc32c_x_inverse, crc32c_one >> 1) == crc32c_one);

#if DURABLE_DETAIL_CRC32C_HW
/// a * b * x^33 mod P; only called after `crc32c_carryless_available()` said yes.
[[gnu::target("pclmul,sse4.2")]] inline std::uint32_t crc32c_multiply_x33_hardware(std::uint32_t a,
                                                                                   std::uint32_t b) noexcept {
  const __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)),
                                               _mm_cvtsi32_si128(static_cast<int>(b)), 0);
  return static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(product))));
}

/// Whether this CPU has both PCLMULQDQ and the crc32 instruction (asked once).
[[nodiscard]] inline bool crc32c_carryless_available() noexcept {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") != 0 && __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}
#else
[[nodiscard]] inline std::uint32_t crc32c_multiply_x33_hardware(std::uint32_t a, std::uint32_t b) noexcept {
  return crc32c_multiply(crc32c_multiply(a, b), crc32c_shift(crc32c_one >> 1, 4));  // never called
}
[[nodiscard]] inline bool crc32c_carryless_available() noexcept { return false; }
#endif

/// crc32c_shift in constant time: two lookups and two multiplications, for shifts below
/// `limit` bytes (longer ones fall back to crc32c_shift). The tables take 128 KiB and are
/// built on first use, in about a millisecond.
class crc32c_zero_feeder {
  static constexpr unsigned table_bits = 14;
  static constexpr std::size_t table_size = std::size_t{1} << table_bits;

 public:
  static constexpr std::uint64_t limit = std::uint64_t{1} << (2 * table_bits);

  /// The one instance, built on first use (thread-safe).
  [[nodiscard]] static const crc32c_zero_feeder& instance() {
    static const crc32c_zero_feeder feeder(crc32c_carryless_available());
    return feeder;
  }

  /// The register after feeding it `n` zero bytes: crc32c_shift(reg, n).
  [[nodiscard]] std::uint32_t shift(std::uint32_t reg, std::uint64_t n) const noexcept {
    if (n >= limit) return crc32c_shift(reg, n);
    const auto [low, high] = factors(n);
    if (hardware_) return crc32c_multiply_x33_hardware(crc32c_multiply_x33_hardware(reg, low), high);
    return crc32c_multiply(crc32c_multiply(reg, low), high);
  }

  /// The two factors of a shift by n < limit bytes, for a caller that multiplies by them itself
  /// (with crc32c_multiply, or the hardware multiply when `uses_hardware()`).
  [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> factors(std::uint64_t n) const noexcept {
    return {low_[static_cast<std::size_t>(n & (table_size - 1))], high_[static_cast<std::size_t>(n >> table_bits)]};
  }

  /// Whether shifts use the carry-less multiply instruction.
  [[nodiscard]] bool uses_hardware() const noexcept { return hardware_; }

  /// A feeder that multiplies in software whatever the CPU has (for tests of both paths).
  [[nodiscard]] static crc32c_zero_feeder portable() { return crc32c_zero_feeder(false); }

 private:
  explicit crc32c_zero_feeder(bool hardware) : hardware_(hardware), low_(table_size), high_(table_size) {
    // Each hardware multiplication adds a factor x^33; every table entry takes one back out.
    std::uint32_t base = crc32c_one;
    if (hardware_)
      for (int i = 0; i < 33; ++i) base = crc32c_multiply(base, crc32c_x_inverse);
    const std::uint32_t high_step = crc32c_shift(crc32c_one, table_size);  // x^(8 * 2^14)
    low_[0] = high_[0] = base;
    for (std::size_t i = 1; i < table_size; ++i) {
      low_[i] = crc32c_shift(low_[i - 1], 1);
      high_[i] = crc32c_multiply(high_[i - 1], high_step);
    }
  }

  bool hardware_;
  std::vector<std::uint32_t> low_;   // x^(8 * i), times x^-33 when hardware_
  std::vector<std::uint32_t> high_;  // x^(8 * 2^14 * i), times x^-33 when hardware_
};

}  // namespace durable::detail
