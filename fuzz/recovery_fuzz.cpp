// libFuzzer target: what reads journal records back into state — summarize() and a runtime's
// recover() and the run of what it recovers — on arbitrary records. The scanner is
// journal_fuzz's; here the input is a plain sequence of records (u8 type, u16 little-endian
// payload length, payload), so that the fuzzer reaches the record decoders without having to
// forge checksums. Whatever the records say (any wake-up time, any attempt number, any path,
// any status), recovery must end with a clear error or run to the end, never with undefined
// behaviour (UBSan), a crash, or a hang (libFuzzer's -timeout).
//
//   scripts/fuzz recovery_fuzz 60
//
// Built with -DDURABLE_RECOVERY_FUZZ_WRITE_CORPUS (and without -fsanitize=fuzzer) it writes the
// seed corpus into the directory given as its argument:
//   clang++-14 -std=c++20 -DDURABLE_RECOVERY_FUZZ_WRITE_CORPUS -Iinclude fuzz/recovery_fuzz.cpp
//       -o /tmp/recovery_corpus && /tmp/recovery_corpus fuzz/corpus/recovery
#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <stdexcept>
#include <vector>

namespace {

using namespace std::chrono_literals;

// What the seeds' invocations run: a child call with retries, a sleep, and a fan-out, so that
// recorded completions, retry waits and sleeps at every kind of path have something to match.
inline constexpr durable::function child{"fuzz.child",
                                         [](int x) -> durable::durable_task<int> {
                                           if (x % 3 == 0) co_yield durable::fail(durable::status::temporary_error, "x");
                                           co_return x + 1;
                                         },
                                         {.initial_delay = 1s, .max_attempts = 4}};
inline constexpr durable::function echo{"fuzz.echo", [](int x) -> durable::durable_task<int> {
                                          const int a = co_await child(x);
                                          co_await durable::sleep_for(1h);
                                          auto both = durable::gather(child(a), child(a + 1));
                                          const auto [b, c] = co_await both;
                                          co_return b + c;
                                        }};

std::vector<durable::journal_record> parse(std::span<const std::byte> bytes) {
  std::vector<durable::journal_record> out;
  std::size_t at = 0;
  while (bytes.size() - at >= 3 && out.size() < 256) {
    const auto type = static_cast<std::uint8_t>(bytes[at]);
    const std::size_t length = static_cast<std::size_t>(bytes[at + 1]) | static_cast<std::size_t>(bytes[at + 2]) << 8;
    at += 3;
    const std::size_t take = std::min(length, bytes.size() - at);
    out.push_back({type, {bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin() + static_cast<std::ptrdiff_t>(at + take)}});
    at += take;
  }
  return out;
}

void check(std::span<const std::byte> bytes) {
  const std::vector<durable::journal_record> records = parse(bytes);
  try {
    static_cast<void>(durable::summarize(records));
  } catch (const durable::decode_error&) {
    return;  // a record that does not decode: the runtime refuses it the same way
  }
  durable::memory_journal journal;
  for (const auto& r : records) {
    if (r.type == 0) return;  // no journal stores type 0
    journal.append(r.type, r.payload);
  }
  durable::manual_clock clock;
  clock.advance_to(durable::time_point{} + 1714521600s);  // a wall-clock time, as real journals hold
  durable::runtime rt{clock, {.seed = 1}};
  durable::invocations journaled{rt, journal};
  journaled.register_function(child);
  journaled.register_function(echo);
  try {
    journaled.recover();
  } catch (const std::logic_error&) {  // an unfinished invocation of a function not registered
    return;
  } catch (const durable::journal_error&) {
    return;
  }
  rt.run_until_idle();  // bounded: every call has max_attempts, every sleep ends on the clock
}

}  // namespace

#ifndef DURABLE_RECOVERY_FUZZ_WRITE_CORPUS

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}

#else  // the seed corpus writer

#include <limits>
#include <string>
#include <tuple>

namespace {

template <class Record>
void add(std::vector<std::byte>& out, durable::journal_record_type type, const Record& record) {
  const std::vector<std::byte> payload = durable::encode(record);
  out.push_back(static_cast<std::byte>(type));
  out.push_back(static_cast<std::byte>(payload.size() & 0xFF));
  out.push_back(static_cast<std::byte>(payload.size() >> 8));
  out.insert(out.end(), payload.begin(), payload.end());
}

void started(std::vector<std::byte>& out, const std::string& id, int x) {
  add(out, durable::journal_record_type::invocation_started,
      durable::invocation_started_record{id, "fuzz.echo", durable::encode(std::tuple<int>(x))});
}

void retry_wait(std::vector<std::byte>& out, const std::string& id, durable::call_path path, std::uint32_t attempt,
                std::int64_t wake_ns) {
  add(out, durable::journal_record_type::wait_scheduled,
      durable::wait_scheduled_record{id, std::move(path), durable::wait_kind::retry, attempt,
                                     durable::status::temporary_error, wake_ns});
}

void write(const std::string& dir, const char* name, const std::vector<std::byte>& bytes) {
  const std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  check(bytes);  // every seed recovers and runs to its end
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  constexpr auto max_ns = std::numeric_limits<std::int64_t>::max();
  constexpr auto min_ns = std::numeric_limits<std::int64_t>::min();
  constexpr auto max_attempt = std::numeric_limits<std::uint32_t>::max();

  std::vector<std::byte> fresh;
  started(fresh, "a", 1);
  write(dir, "started", fresh);

  std::vector<std::byte> progress = fresh;
  add(progress, durable::journal_record_type::call_completed,
      durable::call_completed_record{"a", {0, 0}, "fuzz.child", durable::status::ok, durable::failure_reason::fatal_status,
                                     1, {}, durable::encode(2)});
  add(progress, durable::journal_record_type::wait_scheduled,
      durable::wait_scheduled_record{"a", {0, 1}, durable::wait_kind::sleep, 0, durable::status::ok, 3600000000000});
  write(dir, "child_done_then_sleeping", progress);

  std::vector<std::byte> waiting;
  started(waiting, "b", 3);
  retry_wait(waiting, "b", {0, 0}, 2, 5000000000);
  write(dir, "child_waiting_to_retry", waiting);

  std::vector<std::byte> extreme;
  started(extreme, "c", 3);
  retry_wait(extreme, "c", {0, 0}, max_attempt, min_ns);
  started(extreme, "d", 3);
  retry_wait(extreme, "d", {0, 0}, max_attempt - 1, max_ns);
  add(extreme, durable::journal_record_type::wait_scheduled,
      durable::wait_scheduled_record{"d", {0, 1}, durable::wait_kind::sleep, 0, durable::status::ok, min_ns});
  write(dir, "extreme_values", extreme);

  std::vector<std::byte> orphan = fresh;
  retry_wait(orphan, "ghost", {0}, 1, 0);
  add(orphan, durable::journal_record_type::invocation_reset, durable::invocation_reset_record{"a", "code changed"});
  write(dir, "orphan_and_reset", orphan);

  std::vector<std::byte> finished;
  started(finished, "e", 4);
  add(finished, durable::journal_record_type::call_completed,
      durable::call_completed_record{"e", {0}, "fuzz.echo", durable::status::not_found,
                                     durable::failure_reason::fatal_status, max_attempt, "gone", {}});
  write(dir, "finished_failed", finished);
  return 0;
}

#endif
