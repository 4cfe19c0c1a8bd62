// A journal that cannot record an invocation's progress (a full disk) fails the invocation
// for good: journal_failure, nothing retried (no side effect repeated), nothing more written.
#include <catch2/catch.hpp>

#include <durable/durable.hpp>
#include <durable/invocations.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal.hpp>

#include "journal_support.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using durable::durable_task;
using durable::event_kind;
using durable::failure_reason;

namespace {

/// A memory journal whose every member can be made to throw, as a full disk makes a file
/// journal throw: `fail_from` is the first append (counting from 1) that throws ENOSPC; every
/// later call throws too. Counts what it was asked after the first failure.
class faulty_journal final : public durable::journal {
 public:
  std::optional<std::size_t> fail_append_from;
  bool fail_make_durable = false;
  std::size_t appends = 0;
  std::size_t calls_after_failure = 0;

  std::uint64_t append(std::uint8_t type, std::span<const std::byte> payload) override {
    ++appends;
    if (failed_ || (fail_append_from && appends >= *fail_append_from)) fail();
    return inner_.append(type, payload);
  }
  void make_durable(std::uint64_t lsn) override {
    if (failed_ || fail_make_durable) fail();
    inner_.make_durable(lsn);
  }
  [[nodiscard]] std::vector<durable::journal_record> records() const override { return inner_.records(); }
  void compact(std::function<bool(const durable::journal_record&)> keep) override { inner_.compact(std::move(keep)); }
  [[nodiscard]] std::uint64_t last_lsn() const override { return inner_.last_lsn(); }

 private:
  [[noreturn]] void fail() {
    if (failed_) ++calls_after_failure;
    failed_ = true;
    throw std::system_error(ENOSPC, std::generic_category(), "write journal");
  }
  durable::memory_journal inner_;
  bool failed_ = false;
};

int charges = 0;
inline constexpr durable::function charge{"jf.charge", [](int cents) -> durable_task<int> {
  ++charges;  // the side effect that must happen once
  co_return cents;
}};
inline constexpr durable::function order{"jf.order", [](int cents) -> durable_task<int> {
  const int charged = co_await charge(cents);
  co_return charged + 1;
}};


}  // namespace

TEST_CASE("a journal that fails to record a completed step fails the invocation for good, the step run once",
          "[journal_failure]") {
  faulty_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(charge);
  journaled.register_function(order);
  std::vector<std::optional<failure_reason>> reasons;
  rt.on_event([&reasons](const durable::event& e) {
    if (e.kind == event_kind::failed) reasons.push_back(e.reason);
  });
  charges = 0;
  j.fail_append_from = 2;  // 1: the invocation's start; 2: the charge's completion
  auto inv = journaled.start("order-1", order, 250);
  std::string what;
  try {
    static_cast<void>(inv.get());
    FAIL("the invocation succeeded without its journal");
  } catch (const durable::journal_failure& f) {
    CHECK(f.reason() == failure_reason::journal_failed);
    CHECK_FALSE(durable::is_retryable(f.code()));
    what = f.what();
  }
  CHECK(charges == 1);                   // never retried: the charge was not made twice
  CHECK(j.calls_after_failure == 0);     // nothing more was written for the invocation
  CHECK_THAT(what, Catch::Contains("order-1") && Catch::Contains("write journal"));
  REQUIRE_FALSE(reasons.empty());
  for (const auto& r : reasons) CHECK(r == failure_reason::journal_failed);
}

TEST_CASE("a journal whose flush fails fails the invocation the same way", "[journal_failure]") {
  faulty_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(charge);
  journaled.register_function(order);
  charges = 0;
  auto inv = journaled.start("order-2", order, 5);  // the start itself is flushed fine
  j.fail_make_durable = true;                // then the charge's completion cannot be flushed
  CHECK_THROWS_AS(inv.get(), durable::journal_failure);
  CHECK(charges == 1);
  CHECK(j.calls_after_failure == 0);
}

TEST_CASE("start fails with journal_failure when the journal cannot record the start, and runs nothing",
          "[journal_failure]") {
  faulty_journal j;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(charge);
  journaled.register_function(order);
  charges = 0;
  j.fail_append_from = 1;
  CHECK_THROWS_AS(journaled.start("order-3", order, 5), durable::journal_failure);
  rt.run_until_idle();
  CHECK(charges == 0);
}

TEST_CASE("on a real full filesystem the invocation fails with journal_failure and its step runs once",
          "[journal_failure][full_disk]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting a small tmpfs needs root");
    return;
  }
  journal_support::temp_dir dir;
  const std::filesystem::path mount_point = dir.file("small");
  std::filesystem::create_directories(mount_point);
  if (::mount("durable-test", mount_point.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("skipped: cannot mount a tmpfs here (" << std::system_category().message(errno) << ")");
    return;
  }
  struct unmount_at_end {
    std::filesystem::path at;
    ~unmount_at_end() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  static int big_charges = 0;
  big_charges = 0;
  static constexpr durable::function big_charge{"jf.big_charge", [](int n) -> durable_task<std::string> {
    ++big_charges;
    co_return std::string(static_cast<std::size_t>(n), 'x');  // its completion does not fit
  }};
  static constexpr durable::function big_order{"jf.big_order", [](int n) -> durable_task<std::size_t> {
    const std::string receipt = co_await big_charge(n);
    co_return receipt.size();
  }};
  std::optional<durable::file_journal> j;
  j.emplace(mount_point / "journal");
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, *j};
    journaled.register_function(big_charge);
    journaled.register_function(big_order);
    auto inv = journaled.start("big", big_order, 256 * 1024);
    CHECK_THROWS_AS(inv.get(), durable::journal_failure);
  }
  CHECK(big_charges == 1);
}

namespace {
inline constexpr durable::function jf_step_a{"jf.step_a", [](int x) -> durable_task<int> { co_return x + 1; }};
inline constexpr durable::function jf_step_b{"jf.step_b", [](int x) -> durable_task<int> { co_return x + 2; }};
inline constexpr durable::function jf_flow_v1{"jf.flow", [](int x) -> durable_task<int> {
  const int a = co_await jf_step_a(x);
  co_await durable::sleep_for(std::chrono::hours(1));
  co_return a;
}};
inline constexpr durable::function jf_flow_v2{"jf.flow", [](int x) -> durable_task<int> { co_return co_await jf_step_b(x); }};
}  // namespace

TEST_CASE("a journal that fails to record the reset after a code change fails the invocation, not the process",
          "[journal_failure]") {
  faulty_journal j;
  {
    durable::manual_clock clock;
    durable::runtime rt{clock};
    durable::invocations journaled{rt, j};
    journaled.register_function(jf_step_a);
    journaled.register_function(jf_flow_v1);
    auto inv = journaled.start("flow-1", jf_flow_v1, 1);
    auto tick = [](std::chrono::nanoseconds d) -> durable_task<> { co_await durable::sleep_for(d); };
    rt.run(tick(std::chrono::minutes(1)));
    REQUIRE_FALSE(inv.finished());
  }  // crash; the new program calls step_b where the journal has step_a, and the disk is full
  j.fail_append_from = j.appends + 1;
  durable::manual_clock clock;
  durable::runtime rt{clock};
  durable::invocations journaled{rt, j};
  journaled.register_function(jf_step_b);
  journaled.register_function(jf_flow_v2);
  journaled.recover();
  rt.run_until_idle();  // std::terminate here before the fix (the reset's journal_failure left the root)
  CHECK_THROWS_AS(journaled.start("flow-1", jf_flow_v2, 1).get(), durable::journal_failure);
}
