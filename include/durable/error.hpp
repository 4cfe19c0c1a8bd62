// durable/error.hpp — the exceptions durable throws and lets you throw.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "status.hpp"

namespace durable {

/// Throw-site override of the error table: whatever the table says, an attempt that throws a
/// `durable::error` fails with the status it carries. A retry-after hint replaces the computed
/// backoff for the next retry (still clamped by the policy's `max_delay` and deadline).
class error : public std::runtime_error {
 public:
  error(status code, const std::string& message) : std::runtime_error(message), code_(code) {}
  error(status code, const std::string& message, std::chrono::nanoseconds retry_after)
      : std::runtime_error(message), code_(code), retry_after_(retry_after) {}

  /// The status this error stands for.
  [[nodiscard]] status code() const noexcept { return code_; }
  /// The retry-after hint given at the throw site, if any.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> retry_after() const noexcept {
    return retry_after_;
  }

 private:
  status code_;
  std::optional<std::chrono::nanoseconds> retry_after_;
};

/// Why a durable call gave up (and, in events, why an attempt ended it or was cut short).
enum class failure_reason : std::uint8_t {
  fatal_status,        ///< the last attempt ended with a status that is never retried
  attempts_exhausted,  ///< every allowed attempt failed with a retryable status
  deadline_exceeded,   ///< `max_elapsed` ran out before another attempt could start
  cancelled,           ///< a stop was requested (reserved for cancellation; never retried)
  attempt_timeout,     ///< (events only) the attempt ran past `retry_policy::attempt_timeout`
  journal_failed,      ///< the journal could not record the invocation's progress (never retried)
};

/// A short name for a failure reason ("attempts exhausted").
[[nodiscard]] constexpr std::string_view to_string(failure_reason r) noexcept {
  switch (r) {
    case failure_reason::fatal_status: return "fatal status";
    case failure_reason::attempts_exhausted: return "attempts exhausted";
    case failure_reason::deadline_exceeded: return "deadline exceeded";
    case failure_reason::cancelled: return "cancelled";
    case failure_reason::attempt_timeout: return "attempt timeout";
    case failure_reason::journal_failed: return "journal failed";
  }
  return "unknown";
}

/// What awaiting a durable call (or `runtime::run`) throws when the call gave up for good.
/// A caller that lets it escape fails with the same status and is not retried itself.
class failure : public std::exception {
 public:
  failure(status code, failure_reason reason, std::uint32_t attempts,
          std::string_view function_name, std::exception_ptr cause, std::string_view detail = {})
      : code_(code),
        reason_(reason),
        attempts_(attempts),
        function_name_(function_name),
        cause_(std::move(cause)) {
    what_.reserve(96);
    what_ += function_name_.empty() ? std::string_view("task") : function_name_;
    what_ += " failed with ";
    what_ += to_string(code_);
    what_ += " after ";
    what_ += std::to_string(attempts_);
    what_ += attempts_ == 1 ? " attempt (" : " attempts (";
    what_ += to_string(reason_);
    what_ += ")";
    std::string_view because = detail;
    std::string cause_text;
    if (because.empty() && cause_) cause_text = describe(cause_);
    if (!cause_text.empty()) because = cause_text;
    if (because.substr(0, what_.size()) == what_) {
      what_ = because;  // the detail is this very failure's text already: never say it twice
    } else if (!because.empty()) {
      what_ += ": ";
      what_ += because;
    }
  }

  /// The final status of the call.
  [[nodiscard]] status code() const noexcept { return code_; }
  /// Why the call gave up.
  [[nodiscard]] failure_reason reason() const noexcept { return reason_; }
  /// How many attempts were started.
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
  /// The name of the durable function; empty for an unnamed call or a plain task.
  [[nodiscard]] std::string_view function_name() const noexcept { return function_name_; }
  /// The exception that ended the last attempt; null when it ended through `fail` or output
  /// inspection. For a caller failed by a child call, the child's `durable::failure`.
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }
  /// One line: name, status, attempts, reason and the cause's message.
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  static std::string describe(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      return ex.what();
    } catch (...) {
      return "an exception not derived from std::exception";
    }
  }

  status code_;
  failure_reason reason_;
  std::uint32_t attempts_;
  std::string_view function_name_;
  std::exception_ptr cause_;
  std::string what_;
};

/// What a journaled invocation fails with when its journal could not record its progress (a full
/// disk, an I/O error): a `durable::failure` whose reason is `journal_failed`, final for the
/// whole invocation. Nothing is retried (a retry would repeat side effects whose completion was
/// not recorded) and nothing more is written for that invocation. `cause()` is the store's own
/// exception (a `std::system_error`, say) in the process where it happened.
class journal_failure : public failure {
 public:
  journal_failure(std::uint32_t attempts, std::string_view function_name, std::exception_ptr cause,
                  std::string_view detail)
      : failure(status::permanent_error, failure_reason::journal_failed, attempts, function_name, std::move(cause),
                detail) {}
};

/// What `durable::any` fails with when every task failed: a `durable::failure` that keeps
/// each task's cause, in the order the tasks were given. Its code and reason are those of the
/// first task whose failure was retryable (so an enclosing call may try again), else the first
/// task's.
class all_failed : public failure {
 public:
  all_failed(status code, failure_reason reason, std::vector<std::exception_ptr> causes)
      : failure(code, reason, 1, {}, causes.empty() ? nullptr : causes.front(), summary(causes)),
        causes_(std::move(causes)) {}

  /// One cause per task: its exception, or a `durable::error` with its status and message for
  /// a task that failed without throwing (`fail`, output inspection).
  [[nodiscard]] const std::vector<std::exception_ptr>& causes() const noexcept { return causes_; }

 private:
  static std::string summary(const std::vector<std::exception_ptr>& causes) {
    std::string text = "all " + std::to_string(causes.size()) + " tasks of durable::any failed";
    for (std::size_t i = 0; i < causes.size(); ++i) {
      text += i == 0 ? ": [0] " : "; [" + std::to_string(i) + "] ";
      try {
        std::rethrow_exception(causes[i]);
      } catch (const std::exception& e) {
        text += e.what();
      } catch (...) {
        text += "an exception not derived from std::exception";
      }
    }
    return text;
  }

  std::vector<std::exception_ptr> causes_;
};

}  // namespace durable
