// durable_crash_test: kills a worker process with SIGKILL hundreds of times while it runs
// journaled invocations on a file journal, and checks what a user relies on:
//   * every invocation eventually finishes with the right result, and
//   * no step whose completion was journaled ever runs again in a later incarnation.
//
// The parent is single-threaded and forks one worker process ("incarnation" k) at a time. A
// worker opens the journal, recovers, starts invocations inv-0..inv-N-1 (starting an existing
// id is a no-op) and waits for them all. Each step appends "k <id> <step>" to a side-effect file
// (one O_APPEND write per line) before it returns. Before incarnation k starts, the parent reads
// the journal read-only (file_journal::inspect, a torn tail is allowed) and records C_k, the
// steps whose completion is journaled; a side-effect line "k id s" with (id, s) in C_k is a
// step that ran again although its completion was journaled: a failure.
//
// The work is done in rounds, each on a fresh journal: incarnations are killed after a random
// delay until one finishes by itself (or the round's kill cap is reached, and one last
// incarnation runs unkilled). Then the round is checked.
//
// Scale: DURABLE_CRASH_KILLS (default 300) and DURABLE_CRASH_SECONDS (default 60) bound the
// total number of kills and the time spent killing; DURABLE_CRASH_MAX_DELAY_MS (default 15)
// is the longest random delay before a kill (sanitized builds start slower and need more);
// DURABLE_CRASH_SEED seeds the delays.
#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal_records.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using durable::durable_task;

namespace {

constexpr int invocations = 40;
constexpr int steps = 4;

// ---- the worker's side ----

int incarnation = -1;     // k, in the worker
int side_effect_fd = -1;  // the side-effect file, O_APPEND

void append_line(const std::string& line) {
  // One write() per line: with O_APPEND it lands whole at the end of the file.
  const ssize_t n = ::write(side_effect_fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "crash_test worker %d: write to the side-effect file failed: %s\n", incarnation,
                 std::strerror(errno));
    ::_exit(4);
  }
}

std::int64_t step_value(std::int64_t v, int s) { return v * 3 + s; }

std::int64_t expected_result(int i) {
  std::int64_t v = i;
  for (int s = 0; s < steps; ++s) v = step_value(v, s);
  return v;
}

inline constexpr durable::function step{
    "crash.step", [](std::string id, int s, std::int64_t v) -> durable_task<std::int64_t> {
      append_line(std::to_string(incarnation) + " " + id + " " + std::to_string(s) + "\n");
      // Some steps wait a little, so that kills land inside steps as well as between them.
      if ((s + static_cast<int>(id.size())) % 2 == 1) co_await durable::sleep_for(1ms);
      co_return step_value(v, s);
    }};

inline constexpr durable::function job{"crash.job", [](std::string id, int i) -> durable_task<std::int64_t> {
  std::int64_t v = i;
  for (int s = 0; s < steps; ++s) v = co_await step(id, s, v);  // step s has path [0, s]
  co_return v;
}};

std::string inv_id(int i) { return "inv-" + std::to_string(i); }

[[noreturn]] void worker(const std::filesystem::path& dir, int k) {
  incarnation = k;
  try {
    side_effect_fd = ::open((dir / "side_effects").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (side_effect_fd < 0) throw std::runtime_error("cannot open the side-effect file");
    // sync_mode::none writes each record to the kernel before append returns: that survives
    // the process being killed (all this test does), not a power loss. Every fourth
    // incarnation uses batched, which must behave the same.
    const durable::sync_mode mode = k % 4 == 3 ? durable::sync_mode::batched : durable::sync_mode::none;
    durable::file_journal journal(dir / "journal", {.sync = mode});
    durable::runtime rt({.seed = 1, .workers = 1});
    durable::invocations journaled{rt, journal};
    journaled.register_function(step);
    journaled.register_function(job);
    journaled.recover();
    std::vector<durable::invocation<std::int64_t>> started;
    for (int i = 0; i < invocations; ++i) started.push_back(journaled.start(inv_id(i), job, inv_id(i), i));
    for (int i = 0; i < invocations; ++i) {
      const std::int64_t got = started[static_cast<std::size_t>(i)].get();
      if (got != expected_result(i)) {
        std::fprintf(stderr, "crash_test worker %d: %s returned %lld, expected %lld\n", k, inv_id(i).c_str(),
                     static_cast<long long>(got), static_cast<long long>(expected_result(i)));
        ::_exit(2);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_test worker %d: %s\n", k, e.what());
    ::_exit(3);
  }
  std::ofstream(dir / "done") << k << "\n";
  ::_exit(0);
}

// ---- the parent's side ----

using step_key = std::pair<std::string, std::uint32_t>;  // (invocation id, step)

int failures = 0;

void fail(const std::string& what) {
  ++failures;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

durable::journal_summary read_journal(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return {};
  durable::journal_inspection seen = durable::file_journal::inspect(path);
  if (seen.damage != durable::journal_damage::none && !durable::is_torn_tail(seen.damage)) {
    fail("the journal " + path.string() + " is damaged beyond a torn tail: " + seen.detail);
  }
  return durable::summarize(seen.records);
}

std::set<step_key> completed_steps(const durable::journal_summary& summary) {
  std::set<step_key> out;
  for (const auto& [id, inv] : summary.invocations) {
    for (const auto& [path, done] : inv.completed) {
      if (path.size() == 2 && path[0] == 0 && done.function == "crash.step") out.emplace(id, path[1]);
    }
  }
  return out;
}

void sleep_for(std::chrono::nanoseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1'000'000'000), static_cast<long>(d.count() % 1'000'000'000)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtol(v, nullptr, 10) : fallback;
}

struct totals {
  long kills = 0;
  long incarnations = 0;
  long finished_before_kill = 0;
  long lines = 0;
  long reexecutions = 0;  // steps run again whose completion had not been journaled: allowed
  long rounds = 0;
  long journaled_seen = 0;  // sum over incarnations of |C_k|: what the lines were checked against
};

enum class ending { killed, finished };

// Runs incarnation k; kills it after `kill_after` unless that is negative. Fails on a worker
// that exits with an error, or runs for more than a minute.
ending run_incarnation(const std::filesystem::path& dir, int k, std::chrono::nanoseconds kill_after) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    fail(std::string("fork: ") + std::strerror(errno));
    std::exit(1);
  }
  if (pid == 0) worker(dir, k);
  if (kill_after >= 0ns) {
    sleep_for(kill_after);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      fail(std::string("waitpid: ") + std::strerror(errno));
      std::exit(1);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      fail("incarnation " + std::to_string(k) + " did not finish within 60 s (hung?)");
      return ending::killed;
    }
    sleep_for(1ms);
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return ending::killed;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ending::finished;
  fail("incarnation " + std::to_string(k) + " ended badly: " +
       (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                          : "signal " + std::to_string(WTERMSIG(status))));
  return ending::killed;
}

// Checks a finished round: results, and no re-execution of journaled steps.
void check_round(const std::filesystem::path& dir, const std::map<int, std::set<step_key>>& journaled_before,
                 totals& t) {
  const durable::journal_summary summary = read_journal(dir / "journal");
  for (int i = 0; i < invocations; ++i) {
    const auto it = summary.invocations.find(inv_id(i));
    if (it == summary.invocations.end()) {
      fail(dir.string() + ": " + inv_id(i) + " is not in the journal");
      continue;
    }
    const durable::call_completed_record* outcome = it->second.outcome();
    if (it->second.state != durable::invocation_state::succeeded || outcome == nullptr) {
      fail(dir.string() + ": " + inv_id(i) + " did not succeed (state " +
           std::string(durable::to_string(it->second.state)) + ")");
      continue;
    }
    const auto got = durable::decode<std::int64_t>(outcome->value);
    if (got != expected_result(i)) {
      fail(dir.string() + ": " + inv_id(i) + " journaled " + std::to_string(got) + ", expected " +
           std::to_string(expected_result(i)));
    }
  }

  std::ifstream in(dir / "side_effects");
  std::string line;
  std::map<step_key, int> runs;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    int k = -1;
    std::string id;
    int s = -1;
    if (!(fields >> k >> id >> s) || s < 0 || s >= steps || !journaled_before.contains(k)) {
      fail(dir.string() + ": malformed side-effect line '" + line + "'");
      continue;
    }
    ++t.lines;
    const step_key key{id, static_cast<std::uint32_t>(s)};
    if (++runs[key] > 1) ++t.reexecutions;
    if (journaled_before.at(k).contains(key)) {
      fail(dir.string() + ": incarnation " + std::to_string(k) + " ran step " + std::to_string(s) + " of " + id +
           " again, although its completion was journaled before it started");
    }
  }
  for (int i = 0; i < invocations; ++i) {
    for (int s = 0; s < steps; ++s) {
      if (!runs.contains({inv_id(i), static_cast<std::uint32_t>(s)})) {
        fail(dir.string() + ": step " + std::to_string(s) + " of " + inv_id(i) + " never ran");
      }
    }
  }
}

// Reads every result back through a fresh runtime on the last round's journal (no threads: the
// parent forks no more after this).
void check_through_runtime(const std::filesystem::path& dir) {
  durable::file_journal journal(dir / "journal", {.sync = durable::sync_mode::none});
  durable::runtime rt({.workers = 0});
  durable::invocations journaled{rt, journal};
  journaled.register_function(step);
  journaled.register_function(job);
  journaled.recover();
  for (int i = 0; i < invocations; ++i) {
    auto inv = journaled.start(inv_id(i), job, std::string("ignored"), -1);
    if (!inv.finished()) {
      fail("after recovery, " + inv_id(i) + " is not finished");
      continue;
    }
    const std::int64_t got = inv.get();
    if (got != expected_result(i)) fail("start(" + inv_id(i) + ").get() returned " + std::to_string(got));
  }
}

}  // namespace

int main() {
  const long max_kills = env_or("DURABLE_CRASH_KILLS", 300);
  const auto budget = std::chrono::seconds(env_or("DURABLE_CRASH_SECONDS", 60));
  const auto seed = static_cast<std::uint64_t>(env_or("DURABLE_CRASH_SEED", 20240601));
  constexpr long kills_per_round = 60;

  std::random_device entropy;
  const std::filesystem::path root = std::filesystem::temp_directory_path() /
                                     ("durable-crash-test-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(entropy()));
  std::filesystem::create_directories(root);

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long> delay_us(0, 1000 * env_or("DURABLE_CRASH_MAX_DELAY_MS", 15));
  const auto began = std::chrono::steady_clock::now();
  totals t;
  int k = 0;
  std::filesystem::path last_round;

  try {
    do {
      const std::filesystem::path dir = root / ("round-" + std::to_string(t.rounds++));
      std::filesystem::create_directories(dir);
      last_round = dir;
      std::map<int, std::set<step_key>> journaled_before;  // C_k, per incarnation k
      long round_kills = 0;
      for (;;) {
        journaled_before[k] = completed_steps(read_journal(dir / "journal"));
        t.journaled_seen += static_cast<long>(journaled_before[k].size());
        const bool kill_it = round_kills < kills_per_round && t.kills < max_kills &&
                             std::chrono::steady_clock::now() - began < budget;
        const auto after = kill_it ? std::chrono::nanoseconds(std::chrono::microseconds(delay_us(rng))) : -1ns;
        const ending e = run_incarnation(dir, k++, after);
        ++t.incarnations;
        if (failures != 0) break;
        if (e == ending::killed) {
          ++t.kills;
          ++round_kills;
          continue;
        }
        if (kill_it) ++t.finished_before_kill;
        break;
      }
      if (failures == 0 && !std::filesystem::exists(dir / "done")) fail(dir.string() + ": no done marker");
      if (failures == 0) check_round(dir, journaled_before, t);
    } while (failures == 0 && t.kills < max_kills && std::chrono::steady_clock::now() - began < budget);
    if (failures == 0) check_through_runtime(last_round);
  } catch (const std::exception& e) {
    fail(std::string("exception in the harness: ") + e.what());
  }

  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::printf(
      "durable_crash_test: %ld rounds, %ld incarnations, %ld SIGKILLs (%ld finished before their kill), "
      "%d invocations x %d steps per round, %ld side-effect lines, %ld re-executions of steps whose "
      "completion was not journaled yet (allowed), %ld journaled steps checked against (sum of |C_k|), %.1f s, "
      "seed %llu\n",
      t.rounds, t.incarnations, t.kills, t.finished_before_kill, invocations, steps, t.lines, t.reexecutions,
      t.journaled_seen, seconds,
      static_cast<unsigned long long>(seed));
  if (failures == 0) {
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
    std::printf("durable_crash_test: PASSED\n");
    return 0;
  }
  std::printf("durable_crash_test: FAILED (%d failures); files kept in %s\n", failures, root.c_str());
  return 1;
}
