// durable/file_journal.hpp — the embedded journal: one append-only, checksummed file.
//
// Format and recovery rules: detail/journal_format.hpp. System calls: detail/posix_file.hpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "detail/journal_format.hpp"
#include "detail/posix_file.hpp"
#include "journal.hpp"

namespace durable {

/// When a file journal flushes appended records to stable storage.
enum class sync_mode : std::uint8_t {
  /// `append` returns once its record is on stable storage. Appends from several threads at
  /// once share flushes, as in `batched`.
  every_record,
  /// Group commit: `append` only writes; `make_durable(lsn)` flushes. Many threads' records share
  /// one fdatasync: a caller whose record is already covered returns at once; if a flush is in
  /// flight it waits for it, and if that did not cover its record, one of the waiters flushes
  /// everything written by then. So `make_durable` waits for at most the flush in flight plus
  /// one more.
  batched,
  /// Never flushes records: each is written to the kernel (page cache) before `append` returns,
  /// so it survives the process being killed, but NOT a power loss or an operating-system crash.
  /// `make_durable` returns at once. (Creating the file, repairing a torn tail and compaction
  /// still flush: they must never leave a broken file.)
  none,
};

/// How a file journal is opened.
struct file_journal_options {
  /// When records reach stable storage.
  sync_mode sync = sync_mode::batched;
  /// Repair instead of refusing: a corrupt record followed by valid ones (`corrupt_record`) is
  /// cut off like a torn tail, DROPPING the valid records after it (reported in `recovery()`).
  /// For an operator who has looked at the damage; off by default.
  bool truncate_at_corruption = false;
};

/// What opening a file journal found and repaired.
struct journal_open_report {
  /// The file was missing, empty, or held only a partial header, and got a fresh header.
  bool created = false;
  /// A `<path>.compact` left by an interrupted compaction was deleted.
  bool removed_compaction_leftover = false;
  /// What was cut off the end: none, a torn tail (see `is_torn_tail`), or `corrupt_record` when
  /// `truncate_at_corruption` allowed it.
  journal_damage damage = journal_damage::none;
  /// Byte offset where the dropped bytes began: the file's size after the repair.
  std::uint64_t dropped_at = 0;
  /// How many bytes were dropped.
  std::uint64_t bytes_dropped = 0;
  /// For unwritten_block and corrupt_record: where the valid records that were dropped resumed.
  std::uint64_t resumes_at = 0;
  /// Why the first dropped record was bad ("checksum mismatch: ...").
  std::string detail;
  /// Intact records found (and kept).
  std::uint64_t records = 0;
};

/// What `file_journal::inspect` read, without changing anything.
struct journal_inspection {
  /// The valid records before any damage, in order.
  std::vector<journal_record> records;
  /// The file's size in bytes.
  std::uint64_t file_size = 0;
  /// Bytes [0, valid_end) are the header and `records`; == file_size for an undamaged file.
  std::uint64_t valid_end = 0;
  /// What is wrong, if anything (`is_torn_tail(damage)`: opening would drop it; otherwise,
  /// other than none, opening would refuse).
  journal_damage damage = journal_damage::none;
  /// The byte offset of the damage.
  std::uint64_t damage_offset = 0;
  /// For unwritten_block and corrupt_record: where valid records resume after the damage.
  std::uint64_t resumes_at = 0;
  /// The particular check that failed.
  std::string detail;
};

/// The embedded journal: records appended to one file, each with a CRC-32C, flushed per the
/// sync mode. Opening recovers from a crash at any instant: a torn tail is cut off (and
/// reported by `recovery()`), nothing before it is lost; damage in the middle, a foreign file or
/// an unknown format version is refused with a `journal_error`, and a refused open changes
/// nothing on disk. One owner per file: an exclusive lock refuses a second opener, in this
/// process or another, and is always taken on the file the path names (compaction renames a
/// new file over it; an opener that locked the old one tries again).
///
/// Files are created 0600 (the umask may narrow that): a journal holds every argument and
/// result. The path must name a regular file, not a symbolic link (refused: compaction would
/// replace the link with a file); `<path>.compact`, compaction's temporary file, is created
/// exclusively, so a file or link planted there is removed, never written through.
///
/// Lsns: a file that held n records when opened hands out n+1, n+2, ... (so until compaction
/// the lsn is the record's position in the file); compaction renumbers nothing.
class file_journal final : public journal {
 public:
  using options = file_journal_options;

  /// Opens (creating if missing) the journal at `path`, removes a compaction leftover, recovers
  /// a torn tail. Throws journal_error for a store it refuses or another opener holds, and
  /// std::system_error when the system refuses (missing directory, permissions, I/O error).
  explicit file_journal(std::filesystem::path path, options opts = {})
      : path_(std::move(path)), mode_(opts.sync) {
    open(opts);
  }
  file_journal(const file_journal&) = delete;
  file_journal& operator=(const file_journal&) = delete;
  /// Closes the file. Flushes nothing: only `make_durable` (or every_record) promises durability.
  ~file_journal() override = default;

  std::uint64_t append(std::uint8_t type, std::span<const std::byte> payload) override {
    check_append(type, payload);
    const detail::record_frame frame = detail::make_record_frame(type, payload);  // outside the lock
    std::uint64_t lsn = 0;
    {
      std::lock_guard lock(mutex_);
      throw_if_unusable();
      try {
        file_.write_at(end_, {frame.prefix, payload, frame.suffix});
      } catch (const std::exception& e) {
        // A write that failed half way (disk full) must not leave part of a record in front of
        // the next one: that would be damage in the middle. Cut it off; if even that fails, the
        // file cannot be trusted any more.
        try {
          file_.truncate(end_);
        } catch (const std::exception& cut) {
          unusable_ = "a failed append (" + std::string(e.what()) + ") could not be undone (" +
                      cut.what() + ")";
        }
        throw;
      }
      offsets_.push_back(end_);
      end_ += detail::record_overhead + payload.size();
      lsn = ++last_lsn_;
    }
    if (mode_ == sync_mode::every_record) make_durable(lsn);
    return lsn;
  }

  void make_durable(std::uint64_t lsn) override {
    // Lock-free fast path. The acquire pairs with the release store below, made after the
    // fdatasync that covered `lsn` returned: the caller returns after that flush completed.
    if (lsn <= durable_lsn_.load(std::memory_order_acquire)) return;
    std::unique_lock lock(mutex_);
    check_lsn(lsn, last_lsn_);
    if (mode_ == sync_mode::none) return;  // the record is in the page cache: all `none` promises
    for (;;) {
      throw_if_unusable();
      if (lsn <= durable_lsn_.load(std::memory_order_relaxed)) return;  // a leader covered it
      if (!syncing_) break;
      // A flush is in flight. It may not cover `lsn` (written after it started), but waiting for
      // it and flushing once more covers everything, and lets all waiters share that one flush.
      sync_done_.wait(lock);
    }
    // Become the leader: one fdatasync for every record written so far, by any thread. It runs
    // without the lock so that appends go on meanwhile (they are not covered; the next leader
    // takes them). `syncing_` keeps compaction from replacing `file_` under the flush.
    syncing_ = true;
    const std::uint64_t covered = last_lsn_;
    lock.unlock();
    std::exception_ptr failure;
    try {
      file_.sync_data();
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    syncing_ = false;
    syncs_.fetch_add(1, std::memory_order_relaxed);
    if (failure) {
      // Never retry a failed fsync: Linux may have dropped the dirty pages and marked them
      // clean, so a second fsync can succeed without the data ("fsyncgate"). The journal stops;
      // reopening reads back what is really in the file.
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        unusable_ = std::string("a flush failed (") + e.what() + ")";
      }
      sync_done_.notify_all();
      std::rethrow_exception(failure);
    }
    durable_lsn_.store(covered, std::memory_order_release);
    sync_done_.notify_all();
  }

  [[nodiscard]] std::vector<journal_record> records() const override {
    std::lock_guard lock(mutex_);
    throw_if_unusable();
    const std::vector<std::byte> bytes = file_.read_prefix(end_);
    const detail::scan_result scan = detail::scan_journal(bytes);
    if (scan.damage != journal_damage::none) throw changed_underneath(scan);
    return to_records(scan.records);
  }

  void compact(std::function<bool(const journal_record&)> keep) override {
    std::unique_lock lock(mutex_);
    throw_if_unusable();
    sync_done_.wait(lock, [this] { return !syncing_; });  // a leader's flush uses file_ unlocked
    throw_if_unusable();

    const std::vector<std::byte> bytes = file_.read_prefix(end_);
    const detail::scan_result scan = detail::scan_journal(bytes);
    if (scan.damage != journal_damage::none) throw changed_underneath(scan);
    constexpr auto header = detail::journal_header();
    std::vector<std::byte> next_bytes(header.begin(), header.end());
    std::vector<std::uint64_t> next_offsets;
    journal_record current;  // reused: one allocation for the largest payload
    for (const detail::record_view& r : scan.records) {
      current.type = r.type;
      current.payload.assign(r.payload.begin(), r.payload.end());
      if (keep(current)) {
        next_offsets.push_back(next_bytes.size());
        detail::append_record_bytes(next_bytes, r.type, r.payload);
      }
    }

    // Crash safety: until the rename, `path_` is the old, complete file (a `.compact` left by a
    // crash is deleted on open); after it, the new complete one, flushed before it got the name.
    // The directory flush makes the rename itself survive a power loss.
    const std::filesystem::path tmp = compaction_path(path_);
    detail::posix_file next;
    try {
      // Created exclusively and never through a symbolic link: a file or link planted at the
      // temporary path is removed (the link itself, not what it points to), never written.
      try {
        next = detail::posix_file(tmp, detail::posix_file::mode::create_new);
      } catch (const std::system_error& e) {
        if (e.code() != std::errc::file_exists) throw;
        static_cast<void>(detail::remove_file(tmp));
        next = detail::posix_file(tmp, detail::posix_file::mode::create_new);
      }
      if (!next.try_lock_exclusive()) throw journal_error(tmp.string() + " is locked by another process");
      next.write_at(0, next_bytes);
      next.sync();
      detail::rename_file(tmp, path_);
    } catch (...) {
      next = detail::posix_file();
      try {
        static_cast<void>(detail::remove_file(tmp));
      } catch (...) {  // the old file is intact; the leftover goes at the next open
      }
      throw;
    }
    // From here `path_` names the new file: append to it whatever happens next.
    file_ = std::move(next);
    end_ = next_bytes.size();
    offsets_ = std::move(next_offsets);
    try {
      detail::sync_directory_of(path_);
    } catch (const std::exception& e) {
      // Records appended now could be flushed into a file a power loss would un-rename.
      unusable_ = std::string("compaction could not flush the directory (") + e.what() + ")";
      throw;
    }
    // Every record still stored is in a flushed file; the dropped ones need nothing.
    durable_lsn_.store(last_lsn_, std::memory_order_release);
  }

  [[nodiscard]] std::uint64_t last_lsn() const override {
    std::lock_guard lock(mutex_);
    return last_lsn_;
  }

  /// Reads the one record at `position` from the file (its checksum checked again).
  [[nodiscard]] journal_record read(std::uint64_t position) const override {
    std::lock_guard lock(mutex_);
    throw_if_unusable();
    if (position >= offsets_.size())
      throw std::out_of_range("durable::file_journal::read: no record at position " + std::to_string(position));
    const std::uint64_t offset = offsets_[static_cast<std::size_t>(position)];
    const std::uint64_t next = position + 1 < offsets_.size() ? offsets_[static_cast<std::size_t>(position + 1)] : end_;
    std::vector<std::byte> frame(static_cast<std::size_t>(next - offset));
    file_.read_at(offset, frame);
    const detail::record_check check = detail::check_record_at(frame, 0);
    if (check.outcome != detail::record_check::verdict::valid || check.end != frame.size())
      throw journal_error("durable::file_journal " + path_.string() + ": the record at byte offset " +
                              std::to_string(offset) + " changed underneath the open journal (" + check.why + ")",
                          journal_damage::corrupt_record, offset);
    const auto type = static_cast<std::uint8_t>(frame[4]);
    frame.erase(frame.end() - 4, frame.end());
    frame.erase(frame.begin(), frame.begin() + detail::record_prefix_size);
    return journal_record{type, std::move(frame)};
  }

  /// Reads the file once and hands each record to `visit`.
  void visit(const std::function<void(std::uint64_t, const journal_record&)>& visit) const override {
    std::lock_guard lock(mutex_);
    throw_if_unusable();
    const std::vector<std::byte> bytes = file_.read_prefix(end_);
    const detail::scan_result scan = detail::scan_journal(bytes);
    if (scan.damage != journal_damage::none) throw changed_underneath(scan);
    journal_record current;  // reused: one allocation for the largest payload
    for (std::size_t i = 0; i < scan.records.size(); ++i) {
      current.type = scan.records[i].type;
      current.payload.assign(scan.records[i].payload.begin(), scan.records[i].payload.end());
      visit(i, current);
    }
  }

  /// What opening found and repaired.
  [[nodiscard]] const journal_open_report& recovery() const noexcept { return report_; }
  /// The journal's path.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  /// Its sync mode.
  [[nodiscard]] sync_mode mode() const noexcept { return mode_; }
  /// How many flushes of records it has made so far (group commit makes this smaller than the
  /// number of `make_durable` calls). Opening, repairs and compaction are not counted.
  [[nodiscard]] std::uint64_t syncs() const noexcept { return syncs_.load(std::memory_order_relaxed); }

  /// The temporary file a compaction of `path` writes: `<path>.compact`.
  [[nodiscard]] static std::filesystem::path compaction_path(const std::filesystem::path& path) {
    std::filesystem::path tmp = path;
    tmp += ".compact";
    return tmp;
  }

  /// Reads the journal at `path` without changing anything: no lock, no repair, no removal of
  /// leftovers. Damage is reported, not thrown; std::system_error if the file cannot be read.
  [[nodiscard]] static journal_inspection inspect(const std::filesystem::path& path) {
    const detail::posix_file file(path, detail::posix_file::mode::read_only);
    const std::vector<std::byte> bytes = file.read_prefix(file.size());
    detail::scan_result scan = detail::scan_journal(bytes);
    journal_inspection out;
    out.records = to_records(scan.records);
    out.file_size = scan.size;
    out.valid_end = scan.valid_end;
    out.damage = scan.damage;
    out.damage_offset = scan.damage_offset;
    out.resumes_at = scan.resumes_at;
    out.detail = std::move(scan.detail);
    return out;
  }

 private:
  void open(const options& opts) {
    lock_the_file_at_path();
    const std::vector<std::byte> bytes = file_.read_prefix(file_.size());
    const detail::scan_result scan = detail::scan_journal(bytes);
    switch (scan.damage) {  // nothing is removed or written before the file is known to be ours
      case journal_damage::not_a_journal:
      case journal_damage::unsupported_version:
      case journal_damage::corrupt_header:
        throw refused(scan, "refusing to open it");
      case journal_damage::corrupt_record:
        if (!opts.truncate_at_corruption)
          throw refused(scan, "valid records resume at byte offset " + std::to_string(scan.resumes_at) +
                                  "; refusing to open rather than drop them (file_journal_options::"
                                  "truncate_at_corruption drops everything from byte offset " +
                                  std::to_string(scan.damage_offset) + ")");
        break;
      default:
        break;
    }
    // Only the holder of the lock writes `<path>.compact`, so a leftover is a crashed
    // compaction's (or a file planted there): it goes.
    report_.removed_compaction_leftover = detail::remove_file(compaction_path(path_));

    report_.records = scan.records.size();
    end_ = scan.valid_end;
    switch (scan.damage) {
      case journal_damage::none:
        break;
      case journal_damage::partial_header: {
        constexpr auto header = detail::journal_header();
        file_.write_at(0, header);
        file_.truncate(header.size());
        file_.sync();
        // The file may be new: its directory entry must survive a power loss too.
        detail::sync_directory_of(path_);
        end_ = header.size();
        report_.created = true;
        if (!bytes.empty()) record_drop(scan);
        break;
      }
      case journal_damage::not_a_journal:
      case journal_damage::unsupported_version:
      case journal_damage::corrupt_header:
        break;  // refused above
      case journal_damage::corrupt_record:  // with truncate_at_corruption, or refused above
      case journal_damage::incomplete_record:
      case journal_damage::bad_tail_record:
      case journal_damage::unwritten_block:
        file_.truncate(scan.valid_end);
        file_.sync();  // fsync, not fdatasync: the size changed
        record_drop(scan);
        break;
    }
    // Records read back now may still have been only in the page cache (a killed process in
    // batched mode): flush them, so that what the runtime replays is durable before it acts.
    if (mode_ != sync_mode::none && scan.damage == journal_damage::none) file_.sync_data();
    last_lsn_ = scan.records.size();
    offsets_.clear();
    offsets_.reserve(scan.records.size());
    for (const detail::record_view& r : scan.records) offsets_.push_back(r.offset);
    durable_lsn_.store(last_lsn_, std::memory_order_relaxed);  // before any other thread sees us
  }

  // Opens the file at the path and takes its exclusive lock, checking that the locked file is
  // still the one the path names: compaction renames a new file over the path and closes the
  // old one, which frees the old one's lock, so a lock taken on the old file (opened just before
  // the rename) would guard a file that is no longer the journal. Then it tries again.
  void lock_the_file_at_path() {
    constexpr int max_tries = 1000;  // each retry means a compaction renamed a file meanwhile
    for (int tries = 1;; ++tries) {
      file_ = detail::posix_file(path_, detail::posix_file::mode::read_write);
      if (!file_.try_lock_exclusive())
        throw journal_error("durable::file_journal " + path_.string() +
                            ": already open (locked by another file_journal in this or another process)");
      const auto named = detail::posix_file::identity_at(path_);
      if (named && *named == file_.identity()) return;
      file_ = detail::posix_file();  // closing lets go of the lock on the stale file
      if (tries == max_tries)
        throw journal_error("durable::file_journal " + path_.string() +
                            ": the file was replaced " + std::to_string(max_tries) + " times while opening it");
    }
  }

  void record_drop(const detail::scan_result& scan) {
    report_.damage = scan.damage;
    report_.dropped_at = scan.valid_end;
    report_.bytes_dropped = scan.size - scan.valid_end;
    report_.resumes_at = scan.resumes_at;
    report_.detail = scan.detail;
  }

  [[nodiscard]] journal_error refused(const detail::scan_result& scan, const std::string& verdict) const {
    return journal_error("durable::file_journal " + path_.string() + ": " +
                             std::string(to_string(scan.damage)) + " at byte offset " +
                             std::to_string(scan.damage_offset) + " (" + scan.detail + "); " + verdict,
                         scan.damage, scan.damage_offset);
  }

  [[nodiscard]] journal_error changed_underneath(const detail::scan_result& scan) const {
    return refused(scan, "the file changed underneath the open journal");
  }

  void throw_if_unusable() const {
    if (!unusable_.empty())
      throw journal_error("durable::file_journal " + path_.string() + ": unusable: " + unusable_ +
                          "; reopen it to continue from what the file really holds");
  }

  [[nodiscard]] static std::vector<journal_record> to_records(const std::vector<detail::record_view>& views) {
    std::vector<journal_record> out;
    out.reserve(views.size());
    for (const detail::record_view& v : views) out.push_back({v.type, {v.payload.begin(), v.payload.end()}});
    return out;
  }

  const std::filesystem::path path_;
  const sync_mode mode_;
  journal_open_report report_;

  mutable std::mutex mutex_;
  std::condition_variable sync_done_;
  // Guarded by mutex_ (file_ is also used, not replaced, by a flush leader while syncing_).
  detail::posix_file file_;
  std::uint64_t end_ = 0;       // where the next record goes: the end of the last valid one
  std::uint64_t last_lsn_ = 0;  // the last lsn handed out
  std::vector<std::uint64_t> offsets_;  // where each stored record starts, by position
  bool syncing_ = false;        // a leader is flushing
  std::string unusable_;        // why the journal stopped; empty while it works
  // Written under mutex_, read without it by make_durable's fast path.
  std::atomic<std::uint64_t> durable_lsn_{0};
  std::atomic<std::uint64_t> syncs_{0};
};

}  // namespace durable
