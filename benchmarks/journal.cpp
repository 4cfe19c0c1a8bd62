// Appends per second into a file journal, in each sync mode, against raw write(2) loops that
// write the same bytes (payload + 9 bytes of framing) to a file in the same directory:
//   journal_every_record_*  one fdatasync per record        vs write + fdatasync per record
//   journal_batch32_*       32 appends, one make_durable    vs 32 writes + one fdatasync
//   journal_threads4_64B    4 threads, make_durable each    vs 4 threads, write + fdatasync each
//                           (group commit lets them share flushes; the raw loop cannot)
//   journal_none_*          no flush at all                 vs write alone
//   journal_open_64MiB      reading a 64 MiB journal (file_journal::inspect: read, then scan)
//                           vs reading its bytes (read(2) into a fresh buffer). The worst case
//                           is a tail that passes the cheap checks at every offset (one record,
//                           then 0x01 repeated: each offset declares a 16 MiB record that fits),
//                           so every offset is checksummed as a record start; the healthy file
//                           holds 1 KiB records. The files sit in the page cache, as they would
//                           when a service restarts.
// Flushing benchmarks wait on the disk, so they are measured (and compared) in real time
// (names end in /real_time). Files are cut back outside the timed region whenever they pass
// 64 MiB, so a long run does not fill the disk.
#include <benchmark/benchmark.h>

#include <durable/file_journal.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::uint64_t rotate_at = std::uint64_t{64} << 20;

/// A fresh directory in the system's temp directory (so on the same disk for every benchmark).
class temp_dir {
 public:
  temp_dir() {
    std::random_device entropy;
    path_ = std::filesystem::temp_directory_path() /
            ("durable-bench-journal-" + std::to_string(::getpid()) + "-" + std::to_string(entropy()));
    std::filesystem::create_directories(path_);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::filesystem::path file(const char* name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// The baseline: a plain file written with write(2) (O_APPEND, so threads can share it).
class raw_file {
 public:
  explicit raw_file(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "open " + path.string());
  }
  raw_file(const raw_file&) = delete;
  raw_file& operator=(const raw_file&) = delete;
  ~raw_file() { ::close(fd_); }

  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::system_category(), "write");
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
  }
  void sync() {
    if (::fdatasync(fd_) != 0) throw std::system_error(errno, std::system_category(), "fdatasync");
  }
  /// Counts `bytes` written; past rotate_at, cuts the file back outside the timed region (to
  /// one byte, not zero: ext4 flushes a file truncated to zero when it is closed).
  void rotate_if_large(benchmark::State& state, std::uint64_t bytes) {
    since_rotation_ += bytes;
    if (since_rotation_ < rotate_at) return;
    since_rotation_ = 0;
    state.PauseTiming();
    if (::ftruncate(fd_, 1) != 0) throw std::system_error(errno, std::system_category(), "ftruncate");
    state.ResumeTiming();
  }

 private:
  int fd_;
  std::uint64_t since_rotation_ = 0;
};

/// The record bytes the journal would write for `payload` (type 1), for the baseline to write.
std::vector<std::byte> framed(std::span<const std::byte> payload) {
  std::vector<std::byte> out;
  durable::detail::append_record_bytes(out, 1, payload);
  return out;
}

std::vector<std::byte> payload_of(benchmark::State& state) {
  return std::vector<std::byte>(static_cast<std::size_t>(state.range(0)), std::byte{0x5A});
}

/// Empties the journal (outside the timed region) whenever it has grown past rotate_at.
void rotate_if_large(benchmark::State& state, durable::file_journal& j, std::uint64_t& written,
                     std::uint64_t record_bytes) {
  written += record_bytes;
  if (written < rotate_at) return;
  written = 0;
  state.PauseTiming();
  j.compact([](const durable::journal_record&) { return false; });
  state.ResumeTiming();
}

void finish(benchmark::State& state, std::int64_t appends, std::int64_t bytes_per_record) {
  state.SetItemsProcessed(appends);
  state.SetBytesProcessed(appends * bytes_per_record);
}

// --- one flush per record ------------------------------------------------------------------

void every_record_baseline(benchmark::State& state) {
  temp_dir dir;
  raw_file f(dir.file("raw"));
  const auto record = framed(payload_of(state));
  for (auto _ : state) {
    f.write(record);
    f.sync();
    f.rotate_if_large(state, record.size());
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(record.size()));
}

void every_record_durable(benchmark::State& state) {
  temp_dir dir;
  durable::file_journal j(dir.file("journal"), {.sync = durable::sync_mode::every_record});
  const auto payload = payload_of(state);
  std::uint64_t written = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(j.append(1, payload));
    rotate_if_large(state, j, written, payload.size() + 9);
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(payload.size() + 9));
  state.counters["flushes_per_append"] =
      static_cast<double>(j.syncs()) / static_cast<double>(state.iterations());
}

// --- a batch of 32, one flush ----------------------------------------------------------------

constexpr int batch = 32;

void batch_baseline(benchmark::State& state) {
  temp_dir dir;
  raw_file f(dir.file("raw"));
  const auto record = framed(payload_of(state));
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) f.write(record);
    f.sync();
    f.rotate_if_large(state, batch * record.size());
  }
  finish(state, static_cast<std::int64_t>(state.iterations()) * batch, static_cast<std::int64_t>(record.size()));
}

void batch_durable(benchmark::State& state) {
  temp_dir dir;
  durable::file_journal j(dir.file("journal"), {.sync = durable::sync_mode::batched});
  const auto payload = payload_of(state);
  std::uint64_t written = 0;
  for (auto _ : state) {
    std::uint64_t lsn = 0;
    for (int i = 0; i < batch; ++i) lsn = j.append(1, payload);
    j.make_durable(lsn);
    rotate_if_large(state, j, written, batch * (payload.size() + 9));
  }
  finish(state, static_cast<std::int64_t>(state.iterations()) * batch, static_cast<std::int64_t>(payload.size() + 9));
  state.counters["flushes_per_append"] =
      static_cast<double>(j.syncs()) / static_cast<double>(state.iterations() * batch);
}

// --- four threads, each waiting for its own record ------------------------------------------
// Thread 0 sets up before the timed loop and tears down after it; Google Benchmark starts and
// ends the loop of all threads together.

std::unique_ptr<temp_dir> shared_dir;
std::unique_ptr<raw_file> shared_raw;
std::unique_ptr<durable::file_journal> shared_journal;

void threads_baseline(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared_dir = std::make_unique<temp_dir>();
    shared_raw = std::make_unique<raw_file>(shared_dir->file("raw"));
  }
  const auto record = framed(payload_of(state));
  for (auto _ : state) {
    shared_raw->write(record);
    shared_raw->sync();
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(record.size()));
  if (state.thread_index() == 0) {
    shared_raw.reset();
    shared_dir.reset();
  }
}

template <durable::sync_mode Mode>
void threads_durable(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared_dir = std::make_unique<temp_dir>();
    shared_journal = std::make_unique<durable::file_journal>(shared_dir->file("journal"),
                                                             durable::file_journal_options{.sync = Mode});
  }
  const auto payload = payload_of(state);
  for (auto _ : state) {
    const auto lsn = shared_journal->append(1, payload);
    shared_journal->make_durable(lsn);
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(payload.size() + 9));
  if (state.thread_index() == 0) {
    // Counters of all threads are summed; only thread 0 sets this one.
    state.counters["flushes_per_append"] =
        static_cast<double>(shared_journal->syncs()) /
        static_cast<double>(state.iterations() * static_cast<std::uint64_t>(state.threads()));
    shared_journal.reset();
    shared_dir.reset();
  }
}

// --- no flush --------------------------------------------------------------------------------

void none_baseline(benchmark::State& state) {
  temp_dir dir;
  raw_file f(dir.file("raw"));
  const auto record = framed(payload_of(state));
  for (auto _ : state) {
    f.write(record);
    f.rotate_if_large(state, record.size());
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(record.size()));
}

void none_durable(benchmark::State& state) {
  temp_dir dir;
  durable::file_journal j(dir.file("journal"), {.sync = durable::sync_mode::none});
  const auto payload = payload_of(state);
  std::uint64_t written = 0;
  for (auto _ : state) {
    j.make_durable(j.append(1, payload));
    rotate_if_large(state, j, written, payload.size() + 9);
  }
  finish(state, static_cast<std::int64_t>(state.iterations()), static_cast<std::int64_t>(payload.size() + 9));
}

constexpr std::size_t open_size = std::size_t{64} << 20;

/// The two 64 MiB files of journal_open_64MiB, written once for the whole run.
class open_files {
 public:
  static const open_files& get() {
    static const open_files files;
    return files;
  }

 private:
  temp_dir dir_;  // first: the paths below are made from it

 public:
  std::filesystem::path healthy;
  std::filesystem::path crafted;

 private:
  open_files() : healthy(dir_.file("healthy")), crafted(dir_.file("crafted")) {
    constexpr auto header = durable::detail::journal_header();
    std::vector<std::byte> bytes(header.begin(), header.end());
    const std::vector<std::byte> payload(1024, std::byte{0x5A});
    while (bytes.size() + payload.size() + durable::detail::record_overhead <= open_size)
      durable::detail::append_record_bytes(bytes, 1, payload);
    write(healthy, bytes);
    bytes.assign(header.begin(), header.end());
    durable::detail::append_record_bytes(bytes, 1, payload);
    bytes.resize(open_size, std::byte{0x01});
    write(crafted, bytes);
  }
  static void write(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    raw_file f(path);
    f.write(bytes);
  }
};

void open_baseline(benchmark::State& state) {
  const auto& path = open_files::get().crafted;
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "open");
    std::vector<std::byte> bytes(open_size);
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n <= 0) throw std::system_error(errno, std::system_category(), "read");
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * open_size));
}

void open_durable(benchmark::State& state, bool crafted) {
  const auto& path = crafted ? open_files::get().crafted : open_files::get().healthy;
  for (auto _ : state) {
    const durable::journal_inspection seen = durable::file_journal::inspect(path);
    const auto expected = crafted ? durable::journal_damage::bad_tail_record : durable::journal_damage::none;
    if (seen.damage != expected || seen.file_size + 2048 < open_size) state.SkipWithError("unexpected inspection");
    benchmark::DoNotOptimize(seen.records.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * open_size));
}

}  // namespace

BENCHMARK(every_record_baseline)->Name("journal_every_record_64B/baseline:write_fdatasync")->Arg(64)->UseRealTime();
BENCHMARK(every_record_durable)->Name("journal_every_record_64B/durable:append")->Arg(64)->UseRealTime();
BENCHMARK(every_record_baseline)->Name("journal_every_record_1KiB/baseline:write_fdatasync")->Arg(1024)->UseRealTime();
BENCHMARK(every_record_durable)->Name("journal_every_record_1KiB/durable:append")->Arg(1024)->UseRealTime();

BENCHMARK(batch_baseline)->Name("journal_batch32_64B/baseline:32_writes_fdatasync")->Arg(64)->UseRealTime();
BENCHMARK(batch_durable)->Name("journal_batch32_64B/durable:32_appends_make_durable")->Arg(64)->UseRealTime();
BENCHMARK(batch_baseline)->Name("journal_batch32_1KiB/baseline:32_writes_fdatasync")->Arg(1024)->UseRealTime();
BENCHMARK(batch_durable)->Name("journal_batch32_1KiB/durable:32_appends_make_durable")->Arg(1024)->UseRealTime();

BENCHMARK(threads_baseline)->Name("journal_threads4_64B/baseline:write_fdatasync")->Arg(64)->Threads(4)->UseRealTime();
BENCHMARK(threads_durable<durable::sync_mode::batched>)
    ->Name("journal_threads4_64B/durable:batched_make_durable")->Arg(64)->Threads(4)->UseRealTime();
BENCHMARK(threads_durable<durable::sync_mode::every_record>)
    ->Name("journal_threads4_64B/durable:every_record")->Arg(64)->Threads(4)->UseRealTime();

BENCHMARK(none_baseline)->Name("journal_none_64B/baseline:write")->Arg(64);
BENCHMARK(none_durable)->Name("journal_none_64B/durable:append")->Arg(64);
BENCHMARK(none_baseline)->Name("journal_none_1KiB/baseline:write")->Arg(1024);
BENCHMARK(none_durable)->Name("journal_none_1KiB/durable:append")->Arg(1024);

BENCHMARK(open_baseline)->Name("journal_open_64MiB/baseline:read_file")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(open_durable, healthy, false)
    ->Name("journal_open_64MiB/durable:inspect_healthy_1KiB_records")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(open_durable, crafted, true)
    ->Name("journal_open_64MiB/durable:inspect_worst_case_tail")
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
