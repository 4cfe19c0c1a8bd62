// Surviving a crash: a journaled invocation whose process is killed half-way finishes after a
// restart, and the steps that had completed are not done again.
#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>

using durable::durable_task;

inline constexpr durable::function create_account{
    "create_account", [](std::string user) -> durable_task<std::string> {
      std::printf("  creating the account of %s\n", user.c_str());
      co_return "acct-" + user;
    }};

inline constexpr durable::function send_welcome_email{
    "send_welcome_email", [](std::string account) -> durable_task<> {
      std::printf("  sending the welcome email for %s\n", account.c_str());
      co_return;
    }};

inline constexpr durable::function open_trial{
    "open_trial", [](std::string account) -> durable_task<int> {
      std::printf("  opening a 30-day trial for %s\n", account.c_str());
      co_return 30;
    }};

// Only for this demonstration: the first process kills itself after the email was sent.
bool kill_after_email = false;

inline constexpr durable::function onboard{
    "onboard", [](std::string user) -> durable_task<int> {
      const std::string account = co_await create_account(user);
      co_await send_welcome_email(account);
      if (kill_after_email) {
        std::printf("  ** the process is killed here **\n");
        std::raise(SIGKILL);
      }
      co_return co_await open_trial(account);
    }};

// What a real program does at every start: open the journal, register the functions, resume
// what a crash interrupted, and start its work (an id that exists already is not run twice).
int run_program(const std::filesystem::path& journal_path) {
  durable::file_journal journal(journal_path);  // sync_mode::batched: fsync before a caller resumes
  durable::runtime rt({.workers = 0});
  durable::invocations journaled{rt, journal};
  journaled.register_function(create_account);
  journaled.register_function(send_welcome_email);
  journaled.register_function(open_trial);
  journaled.register_function(onboard);
  journaled.recover();
  durable::invocation<int> alice = journaled.start("onboard:alice", onboard, std::string("alice"));
  return alice.get();
}

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // nothing lost in a buffer when the process dies
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("durable-example-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path journal_path = dir / "onboarding.journal";

  std::printf("first run:\n");
  const pid_t first = ::fork();
  if (first == 0) {
    kill_after_email = true;
    run_program(journal_path);
    ::_exit(0);
  }
  int wait_status = 0;
  ::waitpid(first, &wait_status, 0);
  std::printf("the first run was killed: %s\n",
              WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL ? "yes" : "no");

  std::printf("second run, on the same journal:\n");
  const int trial_days = run_program(journal_path);
  std::printf("alice is onboarded, with a %d-day trial\n", trial_days);

  std::filesystem::remove_all(dir);
  return WIFSIGNALED(wait_status) && trial_days == 30 ? 0 : 1;
}
