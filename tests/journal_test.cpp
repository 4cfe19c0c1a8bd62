// The journal: CRC-32C, the file format, the contract every journal keeps (memory and file
// alike), and the file journal's recovery from torn tails, damage, foreign files and
// interrupted compactions.
#include <catch2/catch.hpp>

#include <durable/file_journal.hpp>
#include <durable/journal.hpp>

#include "journal_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using durable::file_journal;
using durable::journal_damage;
using durable::journal_error;
using durable::journal_record;
using durable::sync_mode;
using journal_support::bytes_of;
using journal_support::pattern;
using journal_support::read_file;
using journal_support::temp_dir;
using journal_support::write_file;
namespace detail = durable::detail;

namespace {

std::vector<std::byte> concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Writes `records` to a new journal at `path` (sync_mode::none: these tests are about bytes).
void make_journal(const std::filesystem::path& path, const std::vector<journal_record>& records) {
  file_journal j(path, {.sync = sync_mode::none});
  for (const auto& r : records) j.append(r.type, r.payload);
}

/// Three records; the last one short, so that every byte and bit of it can be tried quickly.
std::vector<journal_record> three_records() {
  return {{1, bytes_of("invocation started: order-42")}, {2, pattern(40, 7)}, {3, pattern(12, 9)}};
}

/// Frame offsets of the records in a journal file.
std::vector<std::uint64_t> record_offsets(const std::vector<std::byte>& bytes) {
  std::vector<std::uint64_t> out;
  for (const auto& v : detail::scan_journal(bytes).records) out.push_back(v.offset);
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// CRC-32C
// ---------------------------------------------------------------------------------------------

TEST_CASE("crc32c matches the published check values", "[journal][crc32c]") {
  CHECK(detail::crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(detail::crc32c({}) == 0u);
  // RFC 3720 (iSCSI), appendix B.4.
  std::vector<std::byte> zeros(32), ones(32, std::byte{0xFF}), up(32), down(32);
  for (std::size_t i = 0; i < 32; ++i) {
    up[i] = static_cast<std::byte>(i);
    down[i] = static_cast<std::byte>(31 - i);
  }
  CHECK(detail::crc32c(zeros) == 0x8A9136AAu);
  CHECK(detail::crc32c(ones) == 0x62A8AB43u);
  CHECK(detail::crc32c(up) == 0x46DD794Eu);
  CHECK(detail::crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("crc32c in hardware and in software agree on every length and alignment", "[journal][crc32c]") {
  const auto data = pattern(300, 1);
  for (std::size_t start = 0; start < 9; ++start)
    for (std::size_t length = 0; start + length <= data.size(); ++length) {
      const auto piece = std::span<const std::byte>(data).subspan(start, length);
      REQUIRE(detail::crc32c_raw_hardware(0x9E3779B9u, piece) == detail::crc32c_raw_portable(0x9E3779B9u, piece));
    }
}

TEST_CASE("crc32c_extend continues a checksum across any split", "[journal][crc32c]") {
  const auto data = pattern(100, 2);
  const std::span<const std::byte> all(data);
  for (std::size_t split = 0; split <= data.size(); ++split)
    REQUIRE(detail::crc32c_extend(detail::crc32c(all.first(split)), all.subspan(split)) == detail::crc32c(all));
}

TEST_CASE("crc32c_shift equals feeding that many zero bytes", "[journal][crc32c]") {
  for (std::uint64_t n : {0u, 1u, 2u, 3u, 7u, 8u, 63u, 64u, 1000u, 4096u, 65537u, 1u << 20}) {
    const std::vector<std::byte> zeros(static_cast<std::size_t>(n));
    REQUIRE(detail::crc32c_shift(0xDEADBEEFu, n) == detail::crc32c_raw(0xDEADBEEFu, zeros));
  }
}

TEST_CASE("the zero feeder shifts in constant time to the same register as crc32c_shift", "[journal][crc32c]") {
  const auto& machine = detail::crc32c_zero_feeder::instance();
  const auto portable = detail::crc32c_zero_feeder::portable();
  CHECK_FALSE(portable.uses_hardware());
  std::uint32_t reg = 0x12345678u;
  for (std::uint64_t n : std::initializer_list<std::uint64_t>{0, 1, 2, 9, 16383, 16384, 16385, 1000003, (1ull << 26) + 9,
                          detail::crc32c_zero_feeder::limit - 1, detail::crc32c_zero_feeder::limit,
                          1ull << 33}) {
    reg = reg * 2654435761u + 1u;
    const std::uint32_t expected = detail::crc32c_shift(reg, n);
    REQUIRE(machine.shift(reg, n) == expected);
    REQUIRE(portable.shift(reg, n) == expected);
  }
}

TEST_CASE("crc32c_multiply is the product of polynomials modulo P", "[journal][crc32c]") {
  // x^a * x^b == x^(a+b): shifting by bytes multiplies by x^8 per byte.
  const std::uint32_t x8 = detail::crc32c_shift(detail::crc32c_one, 1);
  const std::uint32_t x80 = detail::crc32c_shift(detail::crc32c_one, 10);
  CHECK(detail::crc32c_multiply(x8, x80) == detail::crc32c_shift(detail::crc32c_one, 11));
  CHECK(detail::crc32c_multiply(0xCAFEF00Du, detail::crc32c_one) == 0xCAFEF00Du);
  CHECK(detail::crc32c_multiply(detail::crc32c_x_inverse, detail::crc32c_one >> 1) == detail::crc32c_one);
  if (detail::crc32c_carryless_available())
    for (std::uint32_t i = 0, a = 1; i < 10; ++i, a = a * 2654435761u + 12345u)
      for (std::uint32_t k = 0, b = 7; k < 10; ++k, b = b * 40503u + 977u)
        REQUIRE(detail::crc32c_multiply_x33_hardware(a, b) ==
                detail::crc32c_multiply(detail::crc32c_multiply(a, b),
                                        detail::crc32c_shift(detail::crc32c_one >> 1, 4)));  // x^33
}

TEST_CASE("crc_range_index gives the checksum of any range", "[journal][crc32c]") {
  const auto data = pattern(2000, 3);
  const std::span<const std::byte> all(data);
  const auto portable_feeder = detail::crc32c_zero_feeder::portable();
  const detail::crc_range_index<detail::portable_checksum> portable(all, 5, portable_feeder);
  for (std::uint64_t a = 5; a < data.size(); a += 37)
    for (std::uint64_t b = a; b <= data.size(); b += 53)
      REQUIRE(portable.crc(a, b) == detail::crc32c(all.subspan(a, b - a)));
#if DURABLE_DETAIL_CRC32C_HW
  if (detail::crc32c_zero_feeder::instance().uses_hardware()) {
    const detail::crc_range_index<detail::hardware_checksum> hardware(all, 5, detail::crc32c_zero_feeder::instance());
    for (std::uint64_t a = 5; a < data.size(); a += 37)
      for (std::uint64_t b = a; b <= data.size(); b += 53)
        REQUIRE(hardware.crc(a, b) == detail::crc32c(all.subspan(a, b - a)));
  }
#endif
}

// ---------------------------------------------------------------------------------------------
// The format
// ---------------------------------------------------------------------------------------------

TEST_CASE("a journal file starts with the magic bytes, format version 1 and the header's checksum", "[journal][format]") {
  temp_dir dir;
  { file_journal j(dir.file("j"), {.sync = sync_mode::none}); }
  const auto bytes = read_file(dir.file("j"));
  REQUIRE(bytes.size() == 16);
  const std::vector<std::byte> magic = {std::byte{0x89}, std::byte{'D'},  std::byte{'J'},  std::byte{'N'},
                                        std::byte{'L'},  std::byte{'\r'}, std::byte{'\n'}, std::byte{0x1A}};
  CHECK(std::equal(magic.begin(), magic.end(), bytes.begin()));
  CHECK(detail::load_le32(bytes.data() + 8) == 1u);
  CHECK(detail::load_le32(bytes.data() + 12) == detail::crc32c(std::span(bytes).first(12)));
}

TEST_CASE("a record is stored as length, type, payload and a CRC-32C of those, little endian", "[journal][format]") {
  temp_dir dir;
  make_journal(dir.file("j"), {{7, bytes_of("abc")}});
  const auto bytes = read_file(dir.file("j"));
  const std::vector<std::byte> record(bytes.begin() + 16, bytes.end());
  REQUIRE(record.size() == 4 + 1 + 3 + 4);
  CHECK(record[0] == std::byte{3});
  CHECK(record[1] == std::byte{0});
  CHECK(record[2] == std::byte{0});
  CHECK(record[3] == std::byte{0});
  CHECK(record[4] == std::byte{7});
  CHECK(record[5] == std::byte{'a'});
  CHECK(record[7] == std::byte{'c'});
  const std::uint32_t crc = detail::crc32c(std::span(record).first(8));
  CHECK(detail::load_le32(record.data() + 8) == crc);
  CHECK(record[8] == static_cast<std::byte>(crc & 0xFFu));  // least significant byte first
}

// ---------------------------------------------------------------------------------------------
// The contract: every journal, in memory or in a file in each sync mode
// ---------------------------------------------------------------------------------------------

#define JOURNAL_STORES journal_support::memory_store, journal_support::file_every_record, \
                       journal_support::file_batched, journal_support::file_none

TEMPLATE_TEST_CASE("appended records come back in order with their types and payloads", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  s.journal().append(1, bytes_of("first"));
  s.journal().append(200, pattern(1000, 1));
  s.journal().append(255, bytes_of("third"));
  const std::vector<journal_record> expected = {
      {1, bytes_of("first")}, {200, pattern(1000, 1)}, {255, bytes_of("third")}};
  CHECK(s.journal().records() == expected);
}

TEMPLATE_TEST_CASE("lsns are positive, increase by append, and last_lsn is the latest", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  CHECK(s.journal().last_lsn() == 0);
  const auto a = s.journal().append(1, bytes_of("a"));
  const auto b = s.journal().append(1, bytes_of("b"));
  const auto c = s.journal().append(1, bytes_of("c"));
  CHECK(a > 0);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(s.journal().last_lsn() == c);
}

TEMPLATE_TEST_CASE("an empty payload is stored and returned", "[journal][contract]", JOURNAL_STORES) {
  TestType s;
  s.journal().append(4, {});
  s.journal().append(5, bytes_of("x"));
  const std::vector<journal_record> expected = {{4, {}}, {5, bytes_of("x")}};
  CHECK(s.journal().records() == expected);
}

TEMPLATE_TEST_CASE("record type 0 is rejected and nothing is stored", "[journal][contract]", JOURNAL_STORES) {
  TestType s;
  CHECK_THROWS_AS(s.journal().append(0, bytes_of("x")), std::invalid_argument);
  CHECK(s.journal().records().empty());
  CHECK(s.journal().last_lsn() == 0);
}

TEMPLATE_TEST_CASE("a payload above the maximum is rejected and nothing is stored", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  // Never read (the size check comes first), so left uninitialised: filling 64 MiB is slow at -O0.
  const auto too_big = std::make_unique_for_overwrite<std::byte[]>(durable::max_journal_payload + 1);
  CHECK_THROWS_AS(s.journal().append(1, {too_big.get(), durable::max_journal_payload + 1}), std::length_error);
  CHECK(s.journal().records().empty());
  const auto lsn = s.journal().append(1, bytes_of("still works"));
  s.journal().make_durable(lsn);
  CHECK(s.journal().records().size() == 1);
}

TEMPLATE_TEST_CASE("make_durable of an lsn never returned is rejected, and of 0 asks nothing", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  s.journal().make_durable(0);
  const auto lsn = s.journal().append(1, bytes_of("a"));
  s.journal().make_durable(lsn);
  s.journal().make_durable(lsn);  // again: already durable
  CHECK_THROWS_AS(s.journal().make_durable(lsn + 1), std::invalid_argument);
}

TEMPLATE_TEST_CASE("compaction keeps the chosen records in their order", "[journal][contract]", JOURNAL_STORES) {
  TestType s;
  for (std::uint8_t i = 1; i <= 10; ++i) s.journal().append(i, pattern(i * 10u, i));
  std::vector<std::uint8_t> seen;
  s.journal().compact([&seen](const journal_record& r) {
    seen.push_back(r.type);
    return r.type % 3 != 0;
  });
  CHECK(seen == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  std::vector<journal_record> expected;
  for (std::uint8_t i = 1; i <= 10; ++i)
    if (i % 3 != 0) expected.push_back({i, pattern(i * 10u, i)});
  CHECK(s.journal().records() == expected);
}

TEMPLATE_TEST_CASE("lsns keep increasing after compaction and appends go after the kept records",
                   "[journal][contract]", JOURNAL_STORES) {
  TestType s;
  s.journal().append(1, bytes_of("a"));
  const auto before = s.journal().append(2, bytes_of("b"));
  s.journal().compact([](const journal_record& r) { return r.type == 2; });
  s.journal().make_durable(before);  // an lsn from before compaction is still accepted
  const auto after = s.journal().append(3, bytes_of("c"));
  CHECK(after > before);
  s.journal().make_durable(after);
  const std::vector<journal_record> expected = {{2, bytes_of("b")}, {3, bytes_of("c")}};
  CHECK(s.journal().records() == expected);
}

TEMPLATE_TEST_CASE("a keep predicate that throws leaves the journal unchanged", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  s.journal().append(1, bytes_of("a"));
  s.journal().append(2, bytes_of("b"));
  CHECK_THROWS_AS(s.journal().compact([](const journal_record& r) -> bool {
    if (r.type == 2) throw std::runtime_error("predicate failed");
    return false;
  }),
                  std::runtime_error);
  CHECK(s.journal().records().size() == 2);
  s.journal().append(3, bytes_of("c"));
  CHECK(s.journal().records().size() == 3);
}

TEMPLATE_TEST_CASE("compaction that keeps nothing leaves an empty, appendable journal", "[journal][contract]",
                   JOURNAL_STORES) {
  TestType s;
  s.journal().append(1, bytes_of("a"));
  s.journal().compact([](const journal_record&) { return false; });
  CHECK(s.journal().records().empty());
  s.journal().append(2, bytes_of("b"));
  CHECK(s.journal().records() == std::vector<journal_record>{{2, bytes_of("b")}});
}

// ---------------------------------------------------------------------------------------------
// The file journal: reopening, sync modes
// ---------------------------------------------------------------------------------------------

TEST_CASE("records survive closing and reopening in every sync mode", "[journal][file]") {
  const auto mode = GENERATE(sync_mode::every_record, sync_mode::batched, sync_mode::none);
  temp_dir dir;
  const auto path = dir.file("j");
  const std::vector<journal_record> expected = {{1, bytes_of("one")}, {2, {}}, {3, pattern(5000, 4)}};
  {
    file_journal j(path, {.sync = mode});
    std::uint64_t last = 0;
    for (const auto& r : expected) last = j.append(r.type, r.payload);
    j.make_durable(last);
  }
  file_journal j(path, {.sync = mode});
  CHECK(j.records() == expected);
  CHECK(j.recovery().damage == journal_damage::none);
  CHECK_FALSE(j.recovery().created);
  CHECK(j.recovery().records == 3);
}

TEST_CASE("a missing file is created with a header and no records", "[journal][file]") {
  temp_dir dir;
  file_journal j(dir.file("new"));
  CHECK(j.recovery().created);
  CHECK(j.recovery().damage == journal_damage::none);
  CHECK(j.records().empty());
  CHECK(std::filesystem::file_size(dir.file("new")) == 16);
}

TEST_CASE("an empty file gets a header", "[journal][file]") {
  temp_dir dir;
  write_file(dir.file("j"), {});
  file_journal j(dir.file("j"));
  CHECK(j.recovery().created);
  CHECK(j.recovery().bytes_dropped == 0);
  CHECK(std::filesystem::file_size(dir.file("j")) == 16);
}

TEST_CASE("a header cut short by a crash is written again", "[journal][file]") {
  temp_dir dir;
  const auto header = detail::journal_header();
  for (std::size_t n : {std::size_t{1}, std::size_t{8}, std::size_t{15}}) {
    write_file(dir.file("j"), std::vector<std::byte>(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(n)));
    file_journal j(dir.file("j"));
    CHECK(j.recovery().created);
    CHECK(j.recovery().damage == journal_damage::partial_header);
    CHECK(j.recovery().bytes_dropped == n);
    j.append(1, bytes_of("works"));
    CHECK(j.records().size() == 1);
  }
  // Zeros where the header should be: the size reached the disk but the data did not.
  write_file(dir.file("z"), std::vector<std::byte>(16));
  file_journal z(dir.file("z"));
  CHECK(z.recovery().damage == journal_damage::partial_header);
}

TEST_CASE("reopening continues the lsn count after the records in the file", "[journal][file]") {
  temp_dir dir;
  make_journal(dir.file("j"), three_records());
  file_journal j(dir.file("j"), {.sync = sync_mode::none});
  CHECK(j.last_lsn() == 3);
  CHECK(j.append(9, bytes_of("x")) == 4);
  j.make_durable(3);  // records found at open count as handed out
}

TEST_CASE("every_record flushes on each append, batched only in make_durable, none never", "[journal][file]") {
  temp_dir dir;
  file_journal every(dir.file("every"), {.sync = sync_mode::every_record});
  file_journal batched(dir.file("batched"), {.sync = sync_mode::batched});
  file_journal none(dir.file("none"), {.sync = sync_mode::none});
  std::uint64_t last = 0;
  for (int i = 0; i < 3; ++i) {
    every.append(1, bytes_of("r"));
    last = batched.append(1, bytes_of("r"));
    none.make_durable(none.append(1, bytes_of("r")));
  }
  CHECK(every.syncs() == 3);
  CHECK(batched.syncs() == 0);
  batched.make_durable(last);
  CHECK(batched.syncs() == 1);
  CHECK(none.syncs() == 0);
}

TEST_CASE("make_durable of a record an earlier flush covered does not flush again", "[journal][file]") {
  temp_dir dir;
  file_journal j(dir.file("j"), {.sync = sync_mode::batched});
  const auto a = j.append(1, bytes_of("a"));
  const auto b = j.append(1, bytes_of("b"));
  j.make_durable(b);
  j.make_durable(a);
  j.make_durable(b);
  CHECK(j.syncs() == 1);
}

TEST_CASE("a payload of exactly the maximum size is stored and read back", "[journal][file]") {
  temp_dir dir;
  const std::vector<std::byte> biggest(durable::max_journal_payload, std::byte{0x5A});
  {
    file_journal j(dir.file("j"), {.sync = sync_mode::none});
    j.append(1, biggest);
  }
  file_journal j(dir.file("j"), {.sync = sync_mode::none});
  const auto records = j.records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].payload == biggest);
}

TEST_CASE("a second opener of the same file is refused while the first holds it", "[journal][file]") {
  temp_dir dir;
  std::optional<file_journal> first;
  first.emplace(dir.file("j"));
  try {
    file_journal second(dir.file("j"));
    FAIL("a second file_journal opened the same file");
  } catch (const journal_error& e) {
    CHECK(contains(e.what(), "already open"));
    CHECK(contains(e.what(), dir.file("j").string()));
  }
  first.reset();
  file_journal third(dir.file("j"));  // released on close
}

// ---------------------------------------------------------------------------------------------
// Torn tails: dropped, nothing before them lost
// ---------------------------------------------------------------------------------------------

TEST_CASE("a torn tail at every byte offset inside the last record drops just that record", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  const auto records = three_records();
  make_journal(path, records);
  const auto whole = read_file(path);
  const std::uint64_t last = record_offsets(whole).back();
  const std::vector<journal_record> intact(records.begin(), records.end() - 1);
  for (std::uint64_t cut = last + 1; cut < whole.size(); ++cut) {
    INFO("file cut at byte " << cut);
    write_file(path, std::vector<std::byte>(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)));
    {
      file_journal j(path, {.sync = sync_mode::none});
      CHECK(j.recovery().damage == journal_damage::incomplete_record);
      CHECK(j.recovery().dropped_at == last);
      CHECK(j.recovery().bytes_dropped == cut - last);
      CHECK(j.records() == intact);
      j.append(8, bytes_of("after recovery"));
    }
    CHECK(std::filesystem::file_size(path) == last + 9 + 14);
    file_journal again(path, {.sync = sync_mode::none});
    CHECK(again.recovery().damage == journal_damage::none);
    auto expected = intact;
    expected.push_back({8, bytes_of("after recovery")});
    CHECK(again.records() == expected);
  }
}

TEST_CASE("flipping any bit of the last record drops just that record", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  const auto records = three_records();
  make_journal(path, records);
  const auto whole = read_file(path);
  const std::uint64_t last = record_offsets(whole).back();
  const std::vector<journal_record> intact(records.begin(), records.end() - 1);
  for (std::uint64_t bit = last * 8; bit < whole.size() * 8; ++bit) {
    INFO("bit " << bit % 8 << " of byte " << bit / 8 << " flipped");
    auto damaged = whole;
    damaged[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    write_file(path, damaged);
    file_journal j(path, {.sync = sync_mode::none});
    CHECK(durable::is_torn_tail(j.recovery().damage));
    CHECK(j.recovery().dropped_at == last);
    CHECK(j.records() == intact);
    CHECK(std::filesystem::file_size(path) == last);
  }
}

TEST_CASE("garbage after the last record is dropped", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  const auto whole = read_file(path);
  write_file(path, concat(whole, pattern(3000, 11)));
  file_journal j(path, {.sync = sync_mode::none});
  CHECK(durable::is_torn_tail(j.recovery().damage));
  CHECK(j.recovery().dropped_at == whole.size());
  CHECK(j.recovery().bytes_dropped == 3000);
  CHECK(j.records() == three_records());
}

TEST_CASE("zero bytes after the last record are dropped", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  const auto whole = read_file(path);
  write_file(path, concat(whole, std::vector<std::byte>(4096)));
  file_journal j(path, {.sync = sync_mode::none});
  CHECK(j.recovery().damage == journal_damage::bad_tail_record);
  CHECK(contains(j.recovery().detail, "type 0"));
  CHECK(j.records() == three_records());
}

TEST_CASE("a last record whose length exceeds the maximum is dropped as a torn tail", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  auto bytes = read_file(path);
  const std::uint64_t last = record_offsets(bytes).back();
  detail::store_le32(bytes.data() + last, 0xFFFFFFF0u);
  write_file(path, bytes);
  file_journal j(path, {.sync = sync_mode::none});
  CHECK(j.recovery().damage == journal_damage::bad_tail_record);
  CHECK(contains(j.recovery().detail, "exceeds the maximum"));
  CHECK(j.records().size() == 2);
}

TEST_CASE("zeros over an aligned block in the middle are unwritten data: dropped from the first bad record",
          "[journal][recovery]") {
  // A power loss with unsynced appends: the size grew, one block never reached the disk (reads
  // as zeros), a later block did. Nothing from the gap on was ever made durable.
  temp_dir dir;
  const auto path = dir.file("j");
  std::vector<journal_record> records;
  for (std::uint8_t i = 1; i <= 40; ++i) records.push_back({i, pattern(100, i)});
  make_journal(path, records);
  auto bytes = read_file(path);
  const auto offsets = record_offsets(bytes);
  std::fill(bytes.begin() + 1024, bytes.begin() + 1536, std::byte{0});
  write_file(path, bytes);
  const auto first_bad = static_cast<std::size_t>(
      std::count_if(offsets.begin(), offsets.end(), [](std::uint64_t o) { return o + 109 <= 1024; }));
  file_journal j(path, {.sync = sync_mode::none});
  CHECK(j.recovery().damage == journal_damage::unwritten_block);
  CHECK(j.recovery().dropped_at == offsets[first_bad]);
  CHECK(j.recovery().resumes_at > 1536);
  CHECK(j.records() == std::vector<journal_record>(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(first_bad)));
}

// ---------------------------------------------------------------------------------------------
// Damage in the middle, foreign files, unknown versions: refused
// ---------------------------------------------------------------------------------------------

TEST_CASE("a flipped bit in any middle record refuses to open, naming the record's offset", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  const auto whole = read_file(path);
  const auto offsets = record_offsets(whole);
  const std::uint64_t middle = offsets[1];
  for (std::uint64_t bit = middle * 8; bit < offsets[2] * 8; ++bit) {
    INFO("bit " << bit % 8 << " of byte " << bit / 8 << " flipped");
    auto damaged = whole;
    damaged[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    write_file(path, damaged);
    try {
      file_journal j(path, {.sync = sync_mode::none});
      FAIL("opened a journal with a corrupt middle record");
    } catch (const journal_error& e) {
      CHECK(e.damage() == journal_damage::corrupt_record);
      CHECK(e.offset() == middle);
      CHECK(contains(e.what(), path.string()));
      CHECK(contains(e.what(), "byte offset " + std::to_string(middle)));
      CHECK(contains(e.what(), "valid records resume at byte offset " + std::to_string(offsets[2])));
    }
    CHECK(read_file(path) == damaged);  // refused without changing a byte
  }
}

TEST_CASE("truncate_at_corruption drops everything from a corrupt middle record", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  const auto records = three_records();
  make_journal(path, records);
  auto bytes = read_file(path);
  const auto offsets = record_offsets(bytes);
  bytes[offsets[1] + 7] ^= std::byte{0x10};
  write_file(path, bytes);
  file_journal j(path, {.sync = sync_mode::none, .truncate_at_corruption = true});
  CHECK(j.recovery().damage == journal_damage::corrupt_record);
  CHECK(j.recovery().dropped_at == offsets[1]);
  CHECK(j.recovery().resumes_at == offsets[2]);
  CHECK(j.records() == std::vector<journal_record>{records[0]});
}

TEST_CASE("a foreign file is refused as not a journal, and left alone", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("notes.txt");
  const auto text = bytes_of("this is somebody's text file, not a journal\n");
  write_file(path, text);
  try {
    file_journal j(path);
    FAIL("opened a foreign file");
  } catch (const journal_error& e) {
    CHECK(e.damage() == journal_damage::not_a_journal);
    CHECK(contains(e.what(), "not a durable journal"));
    CHECK(contains(e.what(), path.string()));
  }
  CHECK(read_file(path) == text);
}

TEST_CASE("an unknown format version is refused, naming the version", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  const auto header = detail::journal_header(2);
  const std::vector<std::byte> bytes(header.begin(), header.end());
  write_file(path, bytes);
  try {
    file_journal j(path);
    FAIL("opened a journal of format version 2");
  } catch (const journal_error& e) {
    CHECK(e.damage() == journal_damage::unsupported_version);
    CHECK(contains(e.what(), "format version 2"));
    CHECK(contains(e.what(), "reads version 1"));
    CHECK(contains(e.what(), path.string()));
  }
  CHECK(read_file(path) == bytes);
}

TEST_CASE("a header with a bad checksum is refused", "[journal][recovery]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  auto bytes = read_file(path);
  bytes[13] ^= std::byte{1};
  write_file(path, bytes);
  try {
    file_journal j(path);
    FAIL("opened a journal with a corrupt header");
  } catch (const journal_error& e) {
    CHECK(e.damage() == journal_damage::corrupt_header);
    CHECK(contains(e.what(), "header checksum mismatch"));
  }
}

// ---------------------------------------------------------------------------------------------
// Compaction
// ---------------------------------------------------------------------------------------------

TEST_CASE("compaction survives reopening", "[journal][compaction]") {
  temp_dir dir;
  const auto path = dir.file("j");
  {
    file_journal j(path);
    for (std::uint8_t i = 1; i <= 6; ++i) j.append(i, pattern(50, i));
    j.compact([](const journal_record& r) { return r.type % 2 == 0; });
    j.make_durable(j.append(7, bytes_of("after")));
  }
  CHECK_FALSE(std::filesystem::exists(file_journal::compaction_path(path)));
  file_journal j(path);
  const std::vector<journal_record> expected = {
      {2, pattern(50, 2)}, {4, pattern(50, 4)}, {6, pattern(50, 6)}, {7, bytes_of("after")}};
  CHECK(j.records() == expected);
  CHECK(j.recovery().damage == journal_damage::none);
}

TEST_CASE("a compaction file left by a crash is removed on open and the journal is intact", "[journal][compaction]") {
  // A crash before the rename leaves the old journal complete and a partial <path>.compact.
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  const auto leftover = file_journal::compaction_path(path);
  const auto partial = read_file(path);
  write_file(leftover, std::vector<std::byte>(partial.begin(), partial.begin() + 30));
  file_journal j(path);
  CHECK(j.recovery().removed_compaction_leftover);
  CHECK_FALSE(std::filesystem::exists(leftover));
  CHECK(j.records() == three_records());
}

TEST_CASE("inspect reads a damaged journal without changing it", "[journal][inspect]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, three_records());
  auto bytes = read_file(path);
  const auto offsets = record_offsets(bytes);
  bytes.resize(bytes.size() - 3);
  write_file(path, bytes);
  write_file(file_journal::compaction_path(path), bytes_of("leftover"));

  const durable::journal_inspection seen = file_journal::inspect(path);
  CHECK(seen.damage == journal_damage::incomplete_record);
  CHECK(seen.damage_offset == offsets[2]);
  CHECK(seen.valid_end == offsets[2]);
  CHECK(seen.file_size == bytes.size());
  const auto records = three_records();
  CHECK(seen.records == std::vector<journal_record>(records.begin(), records.begin() + 2));
  CHECK(read_file(path) == bytes);
  CHECK(std::filesystem::exists(file_journal::compaction_path(path)));
}

TEST_CASE("inspect reports a refused file instead of throwing", "[journal][inspect]") {
  temp_dir dir;
  write_file(dir.file("x"), bytes_of("PK\x03\x04 a zip file, perhaps"));
  const auto seen = file_journal::inspect(dir.file("x"));
  CHECK(seen.damage == journal_damage::not_a_journal);
  CHECK(seen.records.empty());
  CHECK_THROWS_AS(file_journal::inspect(dir.file("missing")), std::system_error);
}

// ---------------------------------------------------------------------------------------------
// The scanner on its own
// ---------------------------------------------------------------------------------------------

// A tail of regular bytes that passes the cheap checks at every other offset, each candidate
// declaring a record of 64 KiB or 4 MiB: 00 01 00 40 repeated, read from offsets 0 and 2 mod 4.
std::vector<std::byte> tail_of_candidates(std::size_t size) {
  static constexpr std::byte unit[4] = {std::byte{0x40}, std::byte{0x00}, std::byte{0x01}, std::byte{0x00}};
  std::vector<std::byte> tail(size);
  for (std::size_t i = 0; i < size; ++i) tail[i] = unit[i % 4];
  return tail;
}

TEST_CASE("a tail with a candidate record at every other offset is read to the right verdict", "[journal][format]") {
  const auto header = detail::journal_header();
  std::vector<std::byte> file(header.begin(), header.end());
  detail::append_record_bytes(file, 1, pattern(100, 1));
  const std::uint64_t damage_at = file.size();
  const auto tail = tail_of_candidates(std::size_t{1} << 20);
  file.insert(file.end(), tail.begin(), tail.end());

  SECTION("nothing valid after it: a torn tail") {
    const auto scan = detail::scan_journal(file);
    CHECK(scan.damage == journal_damage::bad_tail_record);
    CHECK(scan.valid_end == damage_at);
  }
  SECTION("a valid record hidden at its end: damage in the middle") {
    const std::uint64_t hidden_at = file.size();
    detail::append_record_bytes(file, 2, pattern(5000, 2));
    const auto scan = detail::scan_journal(file);
    CHECK(scan.damage == journal_damage::corrupt_record);
    CHECK(scan.damage_offset == damage_at);
    CHECK(scan.resumes_at == hidden_at);
    const auto portable = detail::crc32c_zero_feeder::portable();
    CHECK(detail::first_valid_record_from_portable(file, damage_at, portable) == hidden_at);
  }
}

TEST_CASE("the scanner finds no valid record in a torn record's bytes", "[journal][format]") {
  // find_valid_record_after must agree with checking every offset directly.
  temp_dir dir;
  const auto path = dir.file("j");
  std::vector<journal_record> records;
  for (std::uint8_t i = 1; i <= 20; ++i) records.push_back({i, pattern(37u * i, i)});
  make_journal(path, records);
  const auto bytes = read_file(path);
  const auto offsets = record_offsets(bytes);
  for (std::size_t k = 0; k < offsets.size(); ++k) {
    auto damaged = bytes;
    damaged[offsets[k] + 6] ^= std::byte{0x80};
    const auto scan = detail::scan_journal(damaged);
    CHECK(scan.valid_end == offsets[k]);
    if (k + 1 < offsets.size()) {
      CHECK(scan.damage == journal_damage::corrupt_record);
      CHECK(scan.resumes_at == offsets[k + 1]);
    } else {
      CHECK(scan.damage == journal_damage::bad_tail_record);
    }
  }
}
