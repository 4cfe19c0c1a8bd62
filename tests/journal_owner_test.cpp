// The file journal's one owner, and files it must not trust: the lock is always on the file
// the path names, a refused open changes nothing, compaction never writes through a planted
// file or link, journals are private, and only regular files are opened.
#include <catch2/catch.hpp>

#include <durable/file_journal.hpp>

#include "journal_support.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

using durable::file_journal;
using durable::journal_error;
using durable::journal_record;
using durable::sync_mode;
using journal_support::bytes_of;
using journal_support::read_file;
using journal_support::temp_dir;
using journal_support::write_file;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

unsigned permissions_of(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777U;
}

}  // namespace

TEST_CASE("another process never gets into a journal whose owner compacts it again and again",
          "[journal][file][owner]") {
  // On tmpfs a compaction's flushes cost nothing, so the owner renames often and the race
  // (open the old file, rename, the old file's lock freed, lock it) comes around often.
  const std::filesystem::path shm = "/dev/shm";
  const std::filesystem::path place =
      (std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path()) /
      ("durable-owner-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(place);
  struct removed_at_end {
    std::filesystem::path dir;
    ~removed_at_end() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{place};
  const auto path = place / "journal";
  file_journal owner(path, {.sync = sync_mode::none});
  owner.append(1, bytes_of("first"));
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Opens race the owner's renames: each one that gets in holds a lock on a stale file.
    int got_in = 0;
    for (int i = 0; i < 20000; ++i) {
      try {
        const file_journal intruder(path, {.sync = sync_mode::none});
        ++got_in;
      } catch (const std::exception&) {  // refused: the owner holds the lock
      }
    }
    ::_exit(got_in > 100 ? 100 : got_in);
  }
  int compactions = 0;
  int status = 0;
  std::string failure;
  while (::waitpid(child, &status, WNOHANG) == 0) {  // the child stops after its tries
    try {
      owner.append(1, bytes_of("again"));
      owner.compact([](const journal_record&) { return true; });
      ++compactions;
    } catch (const std::exception& e) {
      if (failure.empty()) failure = e.what();
    }
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // no open got in
  CHECK(failure.empty());           // and no compaction lost its temporary file to an intruder
  CHECK(compactions > 0);
  CHECK(owner.records().size() == static_cast<std::size_t>(compactions) + 1);
}

TEST_CASE("a refused open leaves the file and a compaction leftover as they were", "[journal][file][owner]") {
  temp_dir dir;
  const auto path = dir.file("notes.txt");
  const auto text = bytes_of("somebody's notes, not a journal\n");
  write_file(path, text);
  const auto leftover = file_journal::compaction_path(path);
  const auto theirs = bytes_of("somebody's other file");
  write_file(leftover, theirs);
  CHECK_THROWS_AS(file_journal(path), journal_error);
  CHECK(read_file(path) == text);
  REQUIRE(std::filesystem::exists(leftover));
  CHECK(read_file(leftover) == theirs);
}

TEST_CASE("compaction never writes through a symbolic link planted at its temporary path",
          "[journal][compaction][owner]") {
  temp_dir dir;
  const auto path = dir.file("journal");
  const auto victim = dir.file("victim");
  const auto precious = bytes_of("a file the journal must never touch");
  write_file(victim, precious);
  file_journal j(path, {.sync = sync_mode::none});
  j.append(1, bytes_of("kept"));
  j.append(2, bytes_of("dropped"));
  std::filesystem::create_symlink(victim, file_journal::compaction_path(path));  // planted after open
  j.compact([](const journal_record& r) { return r.type == 1; });
  CHECK(read_file(victim) == precious);
  CHECK_FALSE(std::filesystem::is_symlink(path));
  CHECK(j.records() == std::vector<journal_record>{{1, bytes_of("kept")}});
  CHECK_FALSE(std::filesystem::exists(file_journal::compaction_path(path)));
}

TEST_CASE("a regular file planted at the temporary path is replaced, not trusted", "[journal][compaction][owner]") {
  temp_dir dir;
  const auto path = dir.file("journal");
  file_journal j(path, {.sync = sync_mode::none});
  j.append(1, bytes_of("kept"));
  write_file(file_journal::compaction_path(path), bytes_of("planted"));
  j.compact([](const journal_record&) { return true; });
  CHECK(j.records() == std::vector<journal_record>{{1, bytes_of("kept")}});
  const durable::journal_inspection seen = file_journal::inspect(path);
  CHECK(seen.records.size() == 1);
}

TEST_CASE("journals and their compacted files are created readable by their owner only", "[journal][file][owner]") {
  const mode_t before = ::umask(022);
  temp_dir dir;
  const auto path = dir.file("journal");
  {
    file_journal j(path);
    CHECK(permissions_of(path) == 0600U);
    j.append(1, bytes_of("secret argument"));
    j.compact([](const journal_record&) { return true; });
    CHECK(permissions_of(path) == 0600U);
  }
  ::umask(before);
}

TEST_CASE("a journal path that is a symbolic link is refused, naming the reason", "[journal][file][owner]") {
  temp_dir dir;
  const auto real = dir.file("real");
  { const file_journal j(real); }
  const auto link = dir.file("link");
  std::filesystem::create_symlink(real, link);
  try {
    const file_journal j(link);
    FAIL("opened a journal through a symbolic link");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::too_many_symbolic_link_levels);
    CHECK(contains(e.what(), "symbolic link"));
  }
}

TEST_CASE("a FIFO is refused at once, as a journal and for inspection", "[journal][file][owner]") {
  temp_dir dir;
  const auto fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  try {
    const file_journal j(fifo);
    FAIL("opened a FIFO as a journal");
  } catch (const std::system_error& e) {
    CHECK(contains(e.what(), "not a regular file"));
  }
  try {
    static_cast<void>(file_journal::inspect(fifo));  // would block waiting for a writer
    FAIL("inspected a FIFO");
  } catch (const std::system_error& e) {
    CHECK(contains(e.what(), "not a regular file"));
  }
}
