// durable/detail/context.hpp — what a running task knows about where it runs.
#pragma once

#include <stop_token>
#include <string_view>

namespace durable {
class runtime;
}

namespace durable::detail {

class journal_scope;

/// Shared by a call (or a root task) and every plain task it awaits: the runtime that drives
/// them and the call they belong to. A call's is in the call's frame, so it outlives its
/// attempts; a spawned root's is the runtime's own (read only) unless a stop token can stop it.
/// Every call waiting for a retry carries one, so it holds nothing that is not used.
struct call_context {
  runtime* rt = nullptr;
  /// The call's name (empty for a root task).
  std::string_view name;
  /// Where a stop request reaches the work; null when nothing can stop it (the fast path).
  const std::stop_token* stop = nullptr;
  /// Where the code is in a journaled invocation; null outside one (the fast path).
  journal_scope* scope = nullptr;

  [[nodiscard]] bool stop_requested() const noexcept { return stop != nullptr && stop->stop_requested(); }
};

}  // namespace durable::detail
