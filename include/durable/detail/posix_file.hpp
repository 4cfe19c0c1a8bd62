// durable/detail/posix_file.hpp — every operating-system call the file journal makes.
//
// Nothing else in durable talks to the file system, so porting the journal to another platform
// means replacing this one header. Every failure throws std::system_error carrying errno, and a
// message naming the operation and the path ("fdatasync /var/lib/app/journal: Input/output
// error"), so a log line says what failed where. Calls interrupted by a signal are restarted,
// and short reads and writes are continued until the whole range is done.
//
// Porting notes: macOS's fsync does not flush the drive's cache (it needs fcntl(F_FULLFSYNC));
// Windows needs FlushFileBuffers, MoveFileEx(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)
// and has no directory fsync.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace durable::detail {

/// Throws std::system_error for `err` with the message "<operation> <path>".
[[noreturn]] inline void throw_file_error(int err, const char* operation, const std::string& path) {
  throw std::system_error(err, std::system_category(), std::string(operation) + " " + path);
}

/// An open file descriptor, closed by the destructor. Offsets are explicit (pread/pwrite): the
/// journal keeps its own end of file, so nothing depends on a shared file position.
class posix_file {
 public:
  /// How to open. Only a regular file is ever opened (a FIFO, a device or a directory is
  /// refused, EINVAL "not a regular file", without blocking); files are created 0600 (they hold
  /// every argument and result; the umask may narrow that further), and the modes that write
  /// never follow a symbolic link at the path (ELOOP).
  enum class mode : std::uint8_t {
    read_only,      ///< must exist; a symbolic link is followed (reading changes nothing)
    read_write,     ///< created if missing
    create_new,     ///< must not exist yet (not even as a dangling link); read-write
  };

  posix_file() noexcept = default;
  posix_file(const std::filesystem::path& path, mode how) : path_(path.string()) {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer; it is refused below.
    int flags = O_CLOEXEC | O_NONBLOCK;
    switch (how) {
      case mode::read_only: flags |= O_RDONLY; break;
      case mode::read_write: flags |= O_RDWR | O_CREAT | O_NOFOLLOW; break;
      case mode::create_new: flags |= O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW; break;
    }
    do {
      fd_ = ::open(path_.c_str(), flags, 0600);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) {
      if (errno == ELOOP) throw_file_error(ELOOP, "open (a symbolic link is not followed here)", path_);
      throw_file_error(errno, "open", path_);
    }
    const file_identity id = identity();
    if (!id.regular) {
      close_quietly();
      throw_file_error(EINVAL, "open (not a regular file)", path_);
    }
    // Back to blocking I/O (it changes nothing for a regular file, but says what is meant).
    static_cast<void>(::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK));
  }

  /// Which file an open descriptor or a path refers to.
  struct file_identity {
    dev_t device = 0;
    ino_t inode = 0;
    bool regular = false;
    bool operator==(const file_identity& other) const noexcept {
      return device == other.device && inode == other.inode;
    }
  };
  /// The open file's identity.
  [[nodiscard]] file_identity identity() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw_file_error(errno, "fstat", path_);
    return {st.st_dev, st.st_ino, S_ISREG(st.st_mode)};
  }
  /// The identity of what `path` names now, not following a symbolic link; empty if nothing.
  [[nodiscard]] static std::optional<file_identity> identity_at(const std::filesystem::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      throw_file_error(errno, "lstat", path.string());
    }
    return file_identity{st.st_dev, st.st_ino, S_ISREG(st.st_mode)};
  }
  posix_file(posix_file&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}
  posix_file& operator=(posix_file&& other) noexcept {
    if (this != &other) {
      close_quietly();
      fd_ = std::exchange(other.fd_, -1);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  posix_file(const posix_file&) = delete;
  posix_file& operator=(const posix_file&) = delete;
  ~posix_file() { close_quietly(); }

  /// Whether a file is open.
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  /// The path it was opened with (for messages).
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// The file's size in bytes.
  [[nodiscard]] std::uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw_file_error(errno, "fstat", path_);
    return static_cast<std::uint64_t>(st.st_size);
  }

  /// Reads exactly `out.size()` bytes at `offset`; a file that ends first is an error (EIO).
  void read_at(std::uint64_t offset, std::span<std::byte> out) const {
    while (!out.empty()) {
      const std::size_t chunk = std::min(out.size(), max_chunk);
      const ssize_t n = ::pread(fd_, out.data(), chunk, to_off(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_file_error(errno, "pread", path_);
      }
      if (n == 0) throw_file_error(EIO, "pread (file shorter than expected)", path_);
      const auto got = static_cast<std::size_t>(n);
      out = out.subspan(got);
      offset += got;
    }
  }

  /// The first `length` bytes of the file.
  [[nodiscard]] std::vector<std::byte> read_prefix(std::uint64_t length) const {
    if (length > std::numeric_limits<std::size_t>::max())
      throw_file_error(EFBIG, "read (file too large for memory)", path_);
    std::vector<std::byte> bytes(static_cast<std::size_t>(length));
    read_at(0, bytes);
    return bytes;
  }

  /// Writes all of `pieces`, one after the other, starting at `offset` (one pwritev when the
  /// kernel takes it all, as it does for regular files unless the disk is full).
  void write_at(std::uint64_t offset, std::initializer_list<std::span<const std::byte>> pieces) {
    constexpr std::size_t max_pieces = 8;
    iovec iov[max_pieces];
    std::size_t count = 0;
    for (const auto& piece : pieces) {
      if (piece.empty()) continue;
      if (count == max_pieces) throw_file_error(EINVAL, "pwritev (too many pieces)", path_);
      iov[count++] = iovec{const_cast<std::byte*>(piece.data()), piece.size()};
    }
    iovec* next = iov;
    while (count > 0) {
      const ssize_t n = ::pwritev(fd_, next, static_cast<int>(count), to_off(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_file_error(errno, "pwritev", path_);
      }
      if (n == 0) throw_file_error(EIO, "pwritev (wrote nothing)", path_);
      auto done = static_cast<std::size_t>(n);
      offset += done;
      // A short write: skip what was written and continue with the rest.
      while (count > 0 && done >= next->iov_len) {
        done -= next->iov_len;
        ++next;
        --count;
      }
      if (count > 0) {
        next->iov_base = static_cast<std::byte*>(next->iov_base) + done;
        next->iov_len -= done;
      }
    }
  }
  /// Writes all of `bytes` at `offset`.
  void write_at(std::uint64_t offset, std::span<const std::byte> bytes) {
    write_at(offset, std::initializer_list<std::span<const std::byte>>{bytes});
  }

  /// fsync: data and all metadata reach stable storage.
  void sync() const {
    if (::fsync(fd_) != 0) throw_file_error(errno, "fsync", path_);
  }
  /// fdatasync: data, and the metadata needed to read it back (the size), reach stable storage;
  /// skips timestamps, so it costs one disk flush less on most file systems.
  void sync_data() const {
    if (::fdatasync(fd_) != 0) throw_file_error(errno, "fdatasync", path_);
  }
  /// Cuts the file (or extends it with zeros) to `length` bytes.
  void truncate(std::uint64_t length) const {
    int rc = 0;
    do {
      rc = ::ftruncate(fd_, to_off(length));
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) throw_file_error(errno, "ftruncate", path_);
  }
  /// Takes an exclusive advisory lock without waiting; false if another open file description
  /// (another process, or another open of the same file in this one) holds it. Released when
  /// the descriptor is closed.
  [[nodiscard]] bool try_lock_exclusive() const {
    int rc = 0;
    do {
      rc = ::flock(fd_, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return true;
    if (errno == EWOULDBLOCK) return false;
    throw_file_error(errno, "flock", path_);
  }
  /// Closes now, reporting an error (close can report a failed delayed write on some systems).
  void close() {
    if (fd_ < 0) return;
    const int fd = std::exchange(fd_, -1);
    // Not retried on EINTR: Linux has closed the descriptor whatever close returns.
    if (::close(fd) != 0 && errno != EINTR) throw_file_error(errno, "close", path_);
  }

 private:
  // Linux transfers at most 0x7ffff000 bytes per call; smaller chunks also keep ssize_t honest.
  static constexpr std::size_t max_chunk = std::size_t{1} << 30;

  [[nodiscard]] off_t to_off(std::uint64_t offset) const {
    if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
      throw_file_error(EFBIG, "seek", path_);
    return static_cast<off_t>(offset);
  }
  void close_quietly() noexcept {
    if (fd_ >= 0) static_cast<void>(::close(std::exchange(fd_, -1)));
  }

  int fd_ = -1;
  std::string path_;
};

/// Whether something exists at `path` (false for a missing path; other stat errors throw).
[[nodiscard]] inline bool file_exists(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  throw_file_error(errno, "stat", path.string());
}

/// Atomically replaces `to` with `from` (rename(2): readers see the old file or the new one,
/// never a mix). Durable only once the directory is synced.
inline void rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw_file_error(errno, "rename", from.string() + " -> " + to.string());
}

/// Removes `path`; false if it did not exist.
inline bool remove_file(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_file_error(errno, "unlink", path.string());
}

/// The directory that holds `path` ("." for a bare file name).
[[nodiscard]] inline std::filesystem::path directory_of(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

/// fsyncs the directory that holds `path`, so that a file created, renamed or removed there
/// stays so after a power loss (on Linux a file's own fsync does not cover its directory entry).
inline void sync_directory_of(const std::filesystem::path& path) {
  const std::string dir = directory_of(path).string();
  int fd = -1;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw_file_error(errno, "open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  static_cast<void>(::close(fd));
  if (rc != 0) throw_file_error(err, "fsync directory", dir);
}

}  // namespace durable::detail
