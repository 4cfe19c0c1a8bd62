// Helpers shared by the journal tests: temporary directories, byte helpers, file access, and
// one "store" type per journal implementation for the contract tests.
#pragma once

#include <durable/file_journal.hpp>
#include <durable/journal.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace journal_support {

/// A fresh directory under the system's temp directory, removed with everything in it.
/// Unique per process and per object, so tests may run in parallel (ctest -j).
class temp_dir {
 public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    std::random_device entropy;
    path_ = std::filesystem::temp_directory_path() /
            ("durable-journal-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
             "-" + std::to_string(entropy()));
    std::filesystem::create_directories(path_);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path file(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out;
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  return out;
}

/// `n` deterministic, irregular bytes.
inline std::vector<std::byte> pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> out(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x & 0xFFu);
  }
  return out;
}

inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) out[i] = static_cast<std::byte>(chars[i]);
  return out;
}

/// Makes the file at `path` hold exactly `bytes`. Overwrites in place and then sets the size,
/// instead of truncating to zero first: ext4 flushes a file rewritten after a truncation to
/// zero when it is closed, which would make every damage-injecting loop wait for the disk.
inline void write_file(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    if (!out.is_open()) out.open(path, std::ios::binary | std::ios::out);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path.string());
  }
  std::filesystem::resize_file(path, bytes.size());
}

/// The contract tests run against each of these: `journal()` is the store under test.
struct memory_store {
  durable::memory_journal store;
  durable::journal& journal() { return store; }
};

template <durable::sync_mode Mode>
struct file_store {
  temp_dir dir;
  durable::file_journal store{dir.file("journal"), {.sync = Mode}};
  durable::journal& journal() { return store; }
};

using file_every_record = file_store<durable::sync_mode::every_record>;
using file_batched = file_store<durable::sync_mode::batched>;
using file_none = file_store<durable::sync_mode::none>;

}  // namespace journal_support
