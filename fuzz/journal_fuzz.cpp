// libFuzzer target: the journal scanner (detail::scan_journal) on arbitrary bytes.
//
// Checks what the format promises, whatever the input:
//  - the scan stays inside the input (valid_end <= size) and says "no damage" only when it
//    consumed every byte;
//  - re-serialising the records it found reproduces the bytes before valid_end exactly, and
//    scanning that prefix alone finds the same records and no damage;
//  - a torn tail really has no valid record after it (checked offset by offset, so the
//    scanner's fast range-checksum search is compared against the plain check), and the
//    record where valid data resumes after mid-file damage really is valid.
// A broken invariant aborts, which libFuzzer reports with the input.
//
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude
//       fuzz/journal_fuzz.cpp -o /tmp/journal_fuzz
//   /tmp/journal_fuzz -max_total_time=60 <copy of fuzz/corpus/journal>
//
// Built with -DDURABLE_JOURNAL_FUZZ_WRITE_CORPUS (and without -fsanitize=fuzzer) it is instead
// a program that writes the seed corpus into the directory given as its argument:
//   clang++-14 -std=c++20 -DDURABLE_JOURNAL_FUZZ_WRITE_CORPUS -Iinclude fuzz/journal_fuzz.cpp
//       -o /tmp/journal_corpus && /tmp/journal_corpus fuzz/corpus/journal
#include <durable/detail/journal_format.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

namespace detail = durable::detail;
using durable::journal_damage;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "journal_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

bool header_damage(journal_damage d) {
  return d == journal_damage::partial_header || d == journal_damage::not_a_journal ||
         d == journal_damage::unsupported_version || d == journal_damage::corrupt_header;
}

void check(std::span<const std::byte> bytes) {
  const detail::scan_result scan = detail::scan_journal(bytes);
  require(scan.size == bytes.size(), "size is the input's size");
  require(scan.valid_end <= scan.size, "valid_end <= size");
  require((scan.damage == journal_damage::none) == (scan.valid_end == scan.size && scan.size >= 16),
          "no damage exactly when every byte is a valid header or record");
  require(scan.damage == journal_damage::none || !scan.detail.empty(), "damage comes with a detail");

  if (header_damage(scan.damage)) {
    require(scan.valid_end == 0 && scan.records.empty(), "a bad header yields nothing");
    return;
  }
  require(scan.valid_end >= detail::journal_header_size, "a good header is part of the valid prefix");

  // Re-serialise: header + frames of the records == the valid prefix, byte for byte.
  constexpr auto header = detail::journal_header();
  std::vector<std::byte> rebuilt(header.begin(), header.end());
  for (const detail::record_view& r : scan.records) {
    require(r.offset == rebuilt.size(), "record offsets follow each other");
    require(r.type != 0, "no record of type 0");
    require(r.payload.size() <= durable::max_journal_payload, "no payload above the maximum");
    detail::append_record_bytes(rebuilt, r.type, r.payload);
  }
  require(rebuilt.size() == scan.valid_end, "records end at valid_end");
  require(std::equal(rebuilt.begin(), rebuilt.end(), bytes.begin()), "re-serialised records reproduce the prefix");

  // The prefix on its own is a clean journal with the same records.
  const detail::scan_result prefix = detail::scan_journal(bytes.first(static_cast<std::size_t>(scan.valid_end)));
  require(prefix.damage == journal_damage::none, "the valid prefix scans clean");
  require(prefix.records.size() == scan.records.size(), "the valid prefix has the same records");

  if (scan.damage == journal_damage::none) return;
  require(scan.damage_offset == scan.valid_end, "record damage starts where the valid records end");
  require(detail::check_record_at(bytes, scan.valid_end).outcome != detail::record_check::verdict::valid,
          "the record at the damage is not valid");

  // Both checksum engines of the search agree (the scan uses the hardware one where it can).
  static const detail::crc32c_zero_feeder portable = detail::crc32c_zero_feeder::portable();
  const auto found = detail::first_valid_record_from_portable(bytes, scan.valid_end, portable);
#if DURABLE_DETAIL_CRC32C_HW
  if (detail::crc32c_zero_feeder::instance().uses_hardware())
    require(detail::first_valid_record_from_hardware(bytes, scan.valid_end, detail::crc32c_zero_feeder::instance()) ==
                found,
            "the software and hardware searches find the same record");
#endif

  using v = detail::record_check::verdict;
  if (scan.damage == journal_damage::incomplete_record || scan.damage == journal_damage::bad_tail_record) {
    require(!found.has_value(), "the search finds no record after a torn tail");
    // A torn tail: no valid record may start anywhere after it. Checked directly at every
    // offset (quadratic, so only for inputs of fuzzer size).
    if (bytes.size() <= (std::size_t{1} << 16))
      for (std::uint64_t q = scan.valid_end + 1; q < bytes.size(); ++q)
        require(detail::check_record_at(bytes, q).outcome != v::valid, "no valid record after a torn tail");
  } else {
    require(scan.damage == journal_damage::corrupt_record || scan.damage == journal_damage::unwritten_block,
            "record damage is a torn tail or damage in the middle");
    require(found.has_value(), "the search finds a record after damage in the middle");
    require(scan.resumes_at > scan.valid_end, "valid data resumes after the damage");
    require(detail::check_record_at(bytes, scan.resumes_at).outcome == v::valid, "valid data resumes with a valid record");
    require(detail::has_zero_block(bytes, scan.valid_end, scan.resumes_at) ==
                (scan.damage == journal_damage::unwritten_block),
            "unwritten_block exactly when a zero block lies between");
  }
}

}  // namespace

#ifndef DURABLE_JOURNAL_FUZZ_WRITE_CORPUS

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}

#else  // the seed corpus writer

#include <string>

namespace {

std::vector<std::byte> text(const char* s) {
  std::vector<std::byte> out;
  for (; *s != '\0'; ++s) out.push_back(static_cast<std::byte>(*s));
  return out;
}

std::vector<std::byte> journal_of(const std::vector<std::pair<std::uint8_t, std::vector<std::byte>>>& records) {
  constexpr auto header = detail::journal_header();
  std::vector<std::byte> out(header.begin(), header.end());
  for (const auto& [type, payload] : records) detail::append_record_bytes(out, type, payload);
  return out;
}

std::vector<std::byte> filler(std::size_t n, unsigned seed) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 131 + seed * 17 + (i >> 3)) & 0xFF);
  return out;
}

void write(const std::string& dir, const char* name, const std::vector<std::byte>& bytes) {
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  check(bytes);  // every seed passes the invariants
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const auto three = journal_of({{1, text("invocation started: order-42")}, {2, filler(40, 1)}, {3, text("done")}});
  write(dir, "header_only", journal_of({}));
  write(dir, "three_records", three);
  write(dir, "empty_payload", journal_of({{9, {}}, {10, text("x")}}));

  auto torn = three;
  torn.resize(torn.size() - 3);
  write(dir, "torn_last_record", torn);

  auto bad_crc = three;
  bad_crc.back() ^= std::byte{0x01};
  write(dir, "bad_checksum_last_record", bad_crc);

  auto middle = three;
  middle[16 + 9 + 28 + 7] ^= std::byte{0x40};  // inside the second record's payload
  write(dir, "corrupt_middle_record", middle);

  auto garbage = three;
  const auto noise = filler(200, 5);
  garbage.insert(garbage.end(), noise.begin(), noise.end());
  write(dir, "garbage_tail", garbage);

  std::vector<std::pair<std::uint8_t, std::vector<std::byte>>> many;
  for (unsigned i = 1; i <= 20; ++i) many.push_back({static_cast<std::uint8_t>(i), filler(90, i)});
  auto unwritten = journal_of(many);
  std::fill(unwritten.begin() + 512, unwritten.begin() + 1024, std::byte{0});
  write(dir, "unwritten_block", unwritten);

  auto big = journal_of({{1, text("small")}, {2, filler(1500, 3)}});
  big.resize(big.size() - 700);
  write(dir, "torn_large_record", big);

  // A bad length in front of a long valid record: finding it takes the range-checksum search.
  auto resync = journal_of({{1, text("small")}, {2, filler(1500, 4)}});
  resync[16 + 3] = std::byte{0x7F};
  write(dir, "bad_length_before_large_record", resync);

  write(dir, "partial_header", std::vector<std::byte>(three.begin(), three.begin() + 10));
  const auto v2 = detail::journal_header(2);
  write(dir, "version_2_header", std::vector<std::byte>(v2.begin(), v2.end()));
  write(dir, "foreign_file", text("#!/bin/sh\necho this is not a journal\n"));
  return 0;
}

#endif
