// What the multi-process tests share: worker processes started and killed for real, the
// side-effect log they leave, and the checks of what the database holds at the end.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <durable/postgres/connection.hpp>
#include <durable/postgres/store.hpp>

#include "scenario.hpp"

extern char** environ;

namespace cluster {

/// Worker processes (durable_postgres_worker) serving one schema; every one still running is
/// killed when this ends.
class workers {
 public:
  workers(std::string connection, std::string schema, std::filesystem::path effects, int lease_ms, int capacity)
      : connection_(std::move(connection)), schema_(std::move(schema)), effects_(std::move(effects)),
        lease_ms_(lease_ms), capacity_(capacity) {}
  workers(const workers&) = delete;
  workers& operator=(const workers&) = delete;
  ~workers() {
    for (const pid_t pid : running_) ::kill(pid, SIGKILL);
    for (const pid_t pid : running_) ::waitpid(pid, nullptr, 0);
  }

  /// Starts one more worker; its pid.
  pid_t start() {
    const std::string lease = std::to_string(lease_ms_);
    const std::string capacity = std::to_string(capacity_);
    const std::string conninfo = connection_ + " application_name=durable-test-worker";
    std::vector<std::string> env{"DURABLE_TEST_EFFECTS=" + effects_.string()};
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const char* argv[] = {DURABLE_POSTGRES_WORKER, conninfo.c_str(), schema_.c_str(), lease.c_str(), capacity.c_str(), nullptr};
    pid_t pid = 0;
    REQUIRE(::posix_spawn(&pid, DURABLE_POSTGRES_WORKER, nullptr, nullptr, const_cast<char* const*>(argv), envp.data()) == 0);
    running_.push_back(pid);
    return pid;
  }

  /// Kills the worker `pid` with `signal` and waits for it to end.
  void stop(pid_t pid, int signal) {
    ::kill(pid, signal);
    ::waitpid(pid, nullptr, 0);
    std::erase(running_, pid);
  }

  /// Asks every worker to stop (SIGTERM: a graceful hand-off) and waits for them.
  void stop_all() {
    for (const pid_t pid : std::vector<pid_t>(running_)) stop(pid, SIGTERM);
  }

  [[nodiscard]] const std::vector<pid_t>& running() const noexcept { return running_; }

 private:
  std::string connection_;
  std::string schema_;
  std::filesystem::path effects_;
  int lease_ms_;
  int capacity_;
  std::vector<pid_t> running_;
};

/// A PostgreSQL server of a test's own (scripts/pg-server, in a folder of its own), stopped
/// when this ends: for tests that restart it or fill it up, which the shared one must not see.
class own_server {
 public:
  own_server()
      : dir_(std::filesystem::temp_directory_path() / ("durable-own-pg-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(counter()++))) {
    // Ports 20000-26999, apart from the fixtures' (27000-31095) and below Linux's ephemeral
    // ports (32768-60999), where a client socket of an earlier test may hold the port and the
    // server then cannot bind it ("Address already in use" on 60052, once in a few dozen runs).
    // Another port if one is taken all the same.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = std::to_string(20000 + (::getpid() * 7 + counter() + attempt * 1009) % 7000);
      if (run(script() + " start " + dir_.string() + " " + port_ + " >/dev/null") == 0) break;
      port_.clear();
    }
    if (port_.empty()) {
      remove_dir();
      FAIL("scripts/pg-server could not start a server of the test's own on any of 5 ports");
    }
    std::ifstream in(dir_ / "url");
    std::getline(in, url_);
  }
  own_server(const own_server&) = delete;
  own_server& operator=(const own_server&) = delete;
  ~own_server() {
    static_cast<void>(run(script() + " stop " + dir_.string() + " >/dev/null"));
    remove_dir();
  }
  /// An immediate stop (what a crash of the server looks like), then a start.
  void crash_and_restart() { REQUIRE(run(script() + " restart " + dir_.string() + " " + port_ + " >/dev/null") == 0); }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

 private:
  static int run(const std::string& command) { return std::system(command.c_str()); }
  void remove_dir() const {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  static std::string script() { return std::string(DURABLE_SOURCE_DIR) + "/scripts/pg-server"; }
  std::filesystem::path dir_;
  std::string port_;
  std::string url_;
};

/// Submits `count` invocations of the five-step function, ids `<prefix>-<n>` from `first`
/// on, from a store and runtime of the test's own (a submitter, not a worker); their ids.
inline std::vector<std::string> submit(durable::invocations& submitter, const std::string& prefix, int count,
                                       std::size_t first = 0) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    ids.push_back(prefix + "-" + std::to_string(first + static_cast<std::size_t>(i)));
    static_cast<void>(submitter.submit(ids.back(), scenario::five_steps, ids.back()));
  }
  return ids;
}

/// A process's way to submit work to the schema without serving it.
struct submitter {
  submitter(const std::string& url, const std::string& schema, int lease_ms = 10'000)
      : store({.connection = url, .schema = schema, .lease = std::chrono::milliseconds(lease_ms)}) {
    scenario::register_all(invocations);
  }
  durable::postgres::store store;
  durable::runtime rt{{.workers = 1}};
  durable::invocations invocations{rt, store};
};

/// One line of the side-effect log.
struct effect {
  std::string id;
  int step = 0;
  std::uint64_t token = 0;
  std::int64_t at_ns = 0;
  int pid = 0;
};

inline std::vector<effect> read_effects(const std::filesystem::path& path) {
  std::vector<effect> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    effect e;
    fields >> e.id >> e.step >> e.token >> e.at_ns >> e.pid;
    REQUIRE(fields);  // a torn line would be a bug of the test's evidence
    out.push_back(e);
  }
  return out;
}

/// Runs a query on a connection of its own, connecting again (for up to 30 s) if the server
/// went away: the fault tests restart it under the checks' feet.
inline durable::postgres::result query(const std::string& conninfo, const std::string& sql,
                                       const durable::postgres::parameters& params = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    try {
      durable::postgres::connection db(conninfo);
      return db.exec(sql, params);
    } catch (const durable::postgres::database_error& e) {
      if (!e.connection_lost() || std::chrono::steady_clock::now() > deadline) throw;
      // Real time: a real server restarting on its own clock (bounded by the deadline above).
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

/// Waits (bounded) until `count` invocations of the schema have finished; false on time-out.
inline bool wait_finished(const std::string& conninfo, const std::string& schema, std::int64_t count,
                          std::chrono::seconds at_most) {
  const auto deadline = std::chrono::steady_clock::now() + at_most;
  while (std::chrono::steady_clock::now() < deadline) {
    if (query(conninfo, "SELECT count(*) FROM " + schema + ".invocation WHERE state = 3").number(0, 0) >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

/// What the checks found.
struct verdict {
  std::size_t invocations = 0;         // finished, with the right result
  std::size_t steps_run = 0;           // effect lines
  std::size_t steps_run_again = 0;     // effect lines beyond the first of their step
  std::size_t run_after_stored = 0;    // effect lines that began after their step's completion was stored
  std::size_t duplicate_records = 0;   // a step's completion stored more than once
  std::vector<std::string> problems;   // the first few, for the failure message
};

/// Checks every invocation `ids` of `schema` against the side-effect log: finished, its result
/// the tokens of its five steps' stored completions, each step's completion stored once, and
/// no step begun after its completion was stored.
inline verdict check(const std::string& conninfo, const std::string& schema, const std::vector<std::string>& ids,
                     const std::filesystem::path& effects_path) {
  verdict v;
  const std::vector<effect> effects = read_effects(effects_path);
  v.steps_run = effects.size();
  std::map<std::uint64_t, const effect*> by_token;
  std::map<std::pair<std::string, int>, std::vector<const effect*>> by_step;
  for (const effect& e : effects) {
    by_token[e.token] = &e;
    by_step[{e.id, e.step}].push_back(&e);
  }
  for (const auto& [step, runs] : by_step) v.steps_run_again += runs.size() - 1;
  auto problem = [&](std::string what) {
    if (v.problems.size() < 8) v.problems.push_back(std::move(what));
  };

  // Every step completion stored, with when it was written.
  constexpr auto completed = static_cast<std::int16_t>(durable::journal_record_type::call_completed);
  durable::postgres::result records = query(
      conninfo, "SELECT invocation_id, payload, (extract(epoch from written_at) * 1000000000)::bigint FROM " + schema +
                    ".record WHERE type = " + std::to_string(completed));
  std::map<std::pair<std::string, int>, std::vector<std::pair<std::uint64_t, std::int64_t>>> stored;  // token, written
  for (int row = 0; row < records.rows(); ++row) {
    const auto r = durable::decode<durable::call_completed_record>(records.bytes(row, 1));
    if (r.function != "step") continue;
    const auto token = durable::decode<std::uint64_t>(r.value);
    const auto found = by_token.find(token);
    if (found == by_token.end() || found->second->id != records.text(row, 0)) {
      problem("a stored step of " + records.text(row, 0) + " has a token no step of it produced");
      continue;
    }
    stored[{found->second->id, found->second->step}].emplace_back(token, records.number(row, 2));
  }
  for (const auto& [step, completions] : stored) {
    if (completions.size() > 1) {
      ++v.duplicate_records;
      problem("step " + std::to_string(step.second) + " of " + step.first + " is stored " +
              std::to_string(completions.size()) + " times");
    }
    for (const effect* run : by_step[step]) {
      if (run->at_ns > completions.front().second) {
        ++v.run_after_stored;
        problem("step " + std::to_string(step.second) + " of " + step.first + " ran again (pid " +
                std::to_string(run->pid) + ") after its completion was stored");
      }
    }
  }

  // Every invocation finished, with its steps' tokens as its result.
  durable::postgres::result outcomes =
      query(conninfo, "SELECT id, state, outcome FROM " + schema + ".invocation WHERE id = ANY($1::text[])",
            durable::postgres::parameters().text_array(ids));
  std::set<std::string> seen;
  for (int row = 0; row < outcomes.rows(); ++row) {
    const std::string id = outcomes.text(row, 0);
    seen.insert(id);
    if (outcomes.number(row, 1) != 3) {
      problem(id + " did not finish (state " + std::to_string(outcomes.number(row, 1)) + ")");
      continue;
    }
    const auto done = durable::decode<durable::call_completed_record>(outcomes.bytes(row, 2));
    if (done.code != durable::status::ok) {
      problem(id + " failed: " + done.message);
      continue;
    }
    const auto tokens = durable::decode<std::vector<std::uint64_t>>(done.value);
    bool right = tokens.size() == 5;
    for (int k = 1; right && k <= 5; ++k) {
      const auto& completions = stored[{id, k}];
      right = !completions.empty() && completions.front().first == tokens[static_cast<std::size_t>(k - 1)];
    }
    if (right) {
      ++v.invocations;
    } else {
      problem(id + "'s result is not the tokens of its stored steps");
    }
  }
  if (seen.size() != ids.size()) problem(std::to_string(ids.size() - seen.size()) + " invocations are missing");
  return v;
}

inline std::string describe(const verdict& v) {
  std::string out = std::to_string(v.invocations) + " invocations right; " + std::to_string(v.steps_run) +
                    " steps run, " + std::to_string(v.steps_run_again) + " of them again; " +
                    std::to_string(v.run_after_stored) + " after their completion was stored; " +
                    std::to_string(v.duplicate_records) + " stored twice";
  for (const std::string& p : v.problems) out += "\n  " + p;
  return out;
}

}  // namespace cluster
