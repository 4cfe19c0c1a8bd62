// durable/output_table.hpp — retry on success: inspecting a returned value.
#pragma once

#include <type_traits>

#include "detail/type_list.hpp"
#include "status.hpp"

namespace durable {

/// One entry of an output table: when a task whose result type is `T` completes, `Check`
/// (a function `status(const T&) noexcept`) says whether the value is final (`ok`), should be
/// tried again later (a retryable status), or is a fatal failure.
template <class T, auto Check>
struct inspect {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "durable::inspect<T, fn>: T must be an unqualified object type (the task's "
                "result type without references)");
  static_assert(std::is_invocable_v<decltype(Check), const T&>,
                "durable::inspect<T, fn>: fn must be a function durable::status(const T&) noexcept");
  static_assert(std::is_nothrow_invocable_r_v<status, decltype(Check), const T&> &&
                    std::is_same_v<std::invoke_result_t<decltype(Check), const T&>, status>,
                "durable::inspect<T, fn>: fn must be a function durable::status(const T&) noexcept");

  /// The result type this entry inspects.
  using value_type = T;

  /// What the value says about the attempt that produced it.
  [[nodiscard]] static status check(const T& value) noexcept { return Check(value); }
};

namespace detail {
template <class T>
constexpr bool is_inspect_entry = false;
template <class T, auto Check>
constexpr bool is_inspect_entry<inspect<T, Check>> = true;

template <class T, class... Entries>
struct find_inspection {
  using type = void;
};
template <class T, class First, class... Rest>
struct find_inspection<T, First, Rest...> {
  using type = std::conditional_t<std::is_same_v<T, typename First::value_type>, First,
                                  typename find_inspection<T, Rest...>::type>;
};
}  // namespace detail

/// A compile-time table of output inspections, at most one per result type.
template <class... Entries>
struct output_table {
  static_assert((detail::is_inspect_entry<Entries> && ...),
                "durable::output_table accepts only durable::inspect<T, fn> entries");
  static_assert(detail::all_distinct<typename Entries::value_type...>,
                "durable::output_table: two entries for the same result type");

  /// The entry that inspects results of type `T` (cv/ref removed), or `void` when none does.
  template <class T>
  using entry_for = typename detail::find_inspection<std::remove_cvref_t<T>, Entries...>::type;
};

}  // namespace durable
