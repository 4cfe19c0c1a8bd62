// durable/journal.hpp — the store under crash durability: an ordered log of opaque records.
//
// The runtime appends what it must not forget (an invocation started, a call completed, a wait
// scheduled) and reads everything back after a restart. It only talks to `journal`, so the
// embedded `file_journal` and, later, a shared database can stand behind it alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace durable {

/// One record: a type chosen by the writer (the store never interprets it, except that 0 is
/// reserved) and payload bytes the store keeps as they are.
struct journal_record {
  std::uint8_t type = 0;
  std::vector<std::byte> payload;

  friend bool operator==(const journal_record&, const journal_record&) = default;
};

/// The largest payload a journal accepts: 64 MiB. A length field above it can only be damage,
/// so a reader never allocates or reads gigabytes because of one flipped bit.
inline constexpr std::size_t max_journal_payload = std::size_t{64} << 20;

/// What a scan found wrong with stored journal bytes.
enum class journal_damage : std::uint8_t {
  none,                 ///< nothing
  // Torn tails: what a crash leaves behind. Dropped when a file journal opens.
  partial_header,       ///< at most a header's worth of bytes, a prefix of the header or zeros: creation was cut short
  incomplete_record,    ///< the last record ends before its declared length
  bad_tail_record,      ///< a record fails its checks (checksum, length, type) and no valid record follows it
  unwritten_block,      ///< a bad record, later valid records, and between them a zero-filled 512-byte block: never-synced data
  // Refused: a file journal does not open these.
  not_a_journal,        ///< the file does not start with the journal's magic bytes
  unsupported_version,  ///< a format version this build does not read
  corrupt_header,       ///< the header's checksum does not match
  corrupt_record,       ///< a bad record followed by valid ones: damage in the middle, not a torn tail
};

/// A short description of a damage kind ("incomplete record").
[[nodiscard]] constexpr std::string_view to_string(journal_damage d) noexcept {
  switch (d) {
    case journal_damage::none: return "no damage";
    case journal_damage::partial_header: return "partial header";
    case journal_damage::incomplete_record: return "incomplete record";
    case journal_damage::bad_tail_record: return "bad record at the tail";
    case journal_damage::unwritten_block: return "unwritten block";
    case journal_damage::not_a_journal: return "not a durable journal";
    case journal_damage::unsupported_version: return "unsupported format version";
    case journal_damage::corrupt_header: return "corrupt header";
    case journal_damage::corrupt_record: return "corrupt record (valid records follow)";
  }
  return "unknown damage";
}

/// Whether `d` is what a crash can leave at the end of a journal: dropped on open, losing
/// nothing that was ever made durable.
[[nodiscard]] constexpr bool is_torn_tail(journal_damage d) noexcept {
  return d == journal_damage::partial_header || d == journal_damage::incomplete_record ||
         d == journal_damage::bad_tail_record || d == journal_damage::unwritten_block;
}

inline std::ostream& operator<<(std::ostream& out, journal_damage d) { return out << to_string(d); }

/// A journal refused to open or to go on: a foreign or corrupt store, a store another process
/// holds, or a store left unusable by a failed flush. The message says what and where (path,
/// byte offset); `damage()` and `offset()` say it to code.
class journal_error : public std::runtime_error {
 public:
  explicit journal_error(const std::string& message, journal_damage damage = journal_damage::none,
                         std::uint64_t offset = 0)
      : std::runtime_error(message), damage_(damage), offset_(offset) {}

  /// The damage found, or `none` when the error is not about stored content.
  [[nodiscard]] journal_damage damage() const noexcept { return damage_; }
  /// The byte offset of the damage (0 when `damage()` is none).
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

 private:
  journal_damage damage_;
  std::uint64_t offset_;
};

/// An ordered, append-only store of records. Every member may be called from several threads
/// at once.
///
/// Each appended record gets a log sequence number (lsn): positive, larger than every lsn this
/// object returned before (so concurrent appenders get distinct lsns in the order their records
/// are stored), never reused, and meaningful only to the object that returned it.
class journal {
 public:
  virtual ~journal() = default;

  /// Stores a record after all the others and returns its lsn. Durable only once
  /// `make_durable` covers it (or at once, for a file journal in `sync_mode::every_record`).
  /// Throws std::invalid_argument for type 0 and std::length_error for a payload larger than
  /// `max_journal_payload`, storing nothing.
  virtual std::uint64_t append(std::uint8_t type, std::span<const std::byte> payload) = 0;

  /// Returns once the record `lsn` and every record before it are as durable as the store
  /// makes them. 0 asks for nothing. An lsn this object never returned throws
  /// std::invalid_argument.
  virtual void make_durable(std::uint64_t lsn) = 0;

  /// Every record in the store, in order.
  [[nodiscard]] virtual std::vector<journal_record> records() const = 0;

  /// Keeps only the records for which `keep` returns true, in their order. `keep` sees each
  /// record once, in order, while the journal is locked: it must not call the journal. If
  /// `keep` throws, nothing changes. Lsns are not renumbered; later appends continue the count.
  /// Afterwards every record kept is durable.
  virtual void compact(std::function<bool(const journal_record&)> keep) = 0;

  /// The lsn of the last record appended through this object (0 before the first).
  [[nodiscard]] virtual std::uint64_t last_lsn() const = 0;

  /// The record stored at `position`: 0 is the first record in the store, and each append
  /// stores the next position; compaction renumbers them (the records kept are 0, 1, ... in
  /// order). std::out_of_range for a position not stored. (Stores of this library read one
  /// record; the default reads them all.)
  [[nodiscard]] virtual journal_record read(std::uint64_t position) const {
    std::vector<journal_record> all = records();
    if (position >= all.size())
      throw std::out_of_range("durable::journal::read: no record at position " + std::to_string(position));
    return std::move(all[static_cast<std::size_t>(position)]);
  }

  /// Calls `visit(position, record)` for every stored record, in order. `visit` must not call
  /// the journal. (The default copies them all first; the stores of this library do not.)
  virtual void visit(const std::function<void(std::uint64_t, const journal_record&)>& visit) const {
    const std::vector<journal_record> all = records();
    for (std::size_t i = 0; i < all.size(); ++i) visit(i, all[i]);
  }

 protected:
  journal() = default;
  journal(const journal&) = default;
  journal& operator=(const journal&) = default;

 public:
  /// The checks every implementation (and every invocation store) makes before storing a
  /// record: std::invalid_argument for type 0, std::length_error for a payload larger than
  /// `max_journal_payload`.
  static void check_append(std::uint8_t type, std::span<const std::byte> payload) {
    if (type == 0)
      throw std::invalid_argument("durable::journal::append: record type 0 is reserved");
    if (payload.size() > max_journal_payload)
      throw std::length_error("durable::journal::append: a payload of " +
                              std::to_string(payload.size()) + " bytes exceeds the maximum of " +
                              std::to_string(max_journal_payload) + " bytes");
  }
 protected:
  /// The check of `make_durable`'s argument, given the last lsn handed out.
  static void check_lsn(std::uint64_t lsn, std::uint64_t last) {
    if (lsn > last)
      throw std::invalid_argument("durable::journal::make_durable: lsn " + std::to_string(lsn) +
                                  " was never returned by append (the last is " +
                                  std::to_string(last) + ")");
  }
};

/// A journal in memory: for tests, and for runtimes that need no durability across restarts.
/// Same contract as a file journal; `make_durable` has nothing to do.
class memory_journal final : public journal {
 public:
  memory_journal() = default;

  std::uint64_t append(std::uint8_t type, std::span<const std::byte> payload) override {
    check_append(type, payload);
    journal_record record{type, {payload.begin(), payload.end()}};
    std::lock_guard lock(mutex_);
    records_.push_back(std::move(record));
    return ++last_lsn_;
  }

  void make_durable(std::uint64_t lsn) override {
    std::lock_guard lock(mutex_);
    check_lsn(lsn, last_lsn_);
  }

  [[nodiscard]] std::vector<journal_record> records() const override {
    std::lock_guard lock(mutex_);
    return records_;
  }

  void compact(std::function<bool(const journal_record&)> keep) override {
    std::lock_guard lock(mutex_);
    std::vector<bool> kept;
    kept.reserve(records_.size());
    for (const journal_record& r : records_) kept.push_back(keep(r));  // may throw: nothing changed yet
    std::size_t out = 0;
    for (std::size_t i = 0; i < records_.size(); ++i) {
      if (!kept[i]) continue;
      if (out != i) records_[out] = std::move(records_[i]);  // never a self-move: that empties a vector
      ++out;
    }
    records_.resize(out);
  }

  [[nodiscard]] std::uint64_t last_lsn() const override {
    std::lock_guard lock(mutex_);
    return last_lsn_;
  }

  [[nodiscard]] journal_record read(std::uint64_t position) const override {
    std::lock_guard lock(mutex_);
    if (position >= records_.size())
      throw std::out_of_range("durable::memory_journal::read: no record at position " + std::to_string(position));
    return records_[static_cast<std::size_t>(position)];
  }

  void visit(const std::function<void(std::uint64_t, const journal_record&)>& visit) const override {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < records_.size(); ++i) visit(i, records_[i]);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<journal_record> records_;
  std::uint64_t last_lsn_ = 0;
};

}  // namespace durable
