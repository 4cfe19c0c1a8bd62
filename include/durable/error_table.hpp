// durable/error_table.hpp — teaching durable which exceptions are worth retrying.
#pragma once

#include <cstddef>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "detail/type_list.hpp"
#include "status.hpp"

namespace durable {

namespace detail {
template <class E, auto Action>
constexpr bool is_status_action = std::is_same_v<std::remove_cv_t<decltype(Action)>, status>;

template <class E, auto Action>
constexpr bool is_function_action = [] {
  if constexpr (is_status_action<E, Action>) {
    return false;
  } else if constexpr (std::is_invocable_v<decltype(Action), const E&>) {
    return std::is_same_v<std::invoke_result_t<decltype(Action), const E&>, status> &&
           std::is_nothrow_invocable_v<decltype(Action), const E&>;
  } else {
    return false;
  }
}();
}  // namespace detail

/// One entry of an error table: exceptions of type `E` (and of types derived from it, unless a
/// more specific entry matches) fail an attempt with `Action`, which is either a `status` or a
/// function `status(const E&) noexcept` that decides per exception object.
template <class E, auto Action>
struct on {
  static_assert(std::is_class_v<E> && !std::is_const_v<E> && !std::is_volatile_v<E>,
                "durable::on<E, ...>: E must be an exception class type (not a reference, pointer, "
                "cv-qualified or built-in type)");
  static_assert(detail::is_status_action<E, Action> || detail::is_function_action<E, Action>,
                "durable::on<E, fn>: fn must be a durable::status value or a function "
                "durable::status(const E&) noexcept");

  /// The exception type this entry matches.
  using exception_type = E;

  /// The status an exception matched by this entry stands for.
  [[nodiscard]] static status resolve(const E& e) noexcept {
    if constexpr (detail::is_status_action<E, Action>) {
      static_cast<void>(e);
      return Action;
    } else {
      return Action(e);
    }
  }
};

namespace detail {
template <class T>
constexpr bool is_on_entry = false;
template <class E, auto Action>
constexpr bool is_on_entry<on<E, Action>> = true;
}  // namespace detail

/// A compile-time table from exception types to statuses. The most specific matching entry wins
/// whatever the order of the entries; between unrelated entries that both match (multiple
/// inheritance) the one listed first wins.
template <class... Entries>
struct error_table {
  static_assert((detail::is_on_entry<Entries> && ...),
                "durable::error_table accepts only durable::on<E, status-or-function> entries");
  static_assert(detail::all_distinct<typename Entries::exception_type...>,
                "durable::error_table: two entries for the same exception type");
};

namespace detail {

/// The status of one generic condition (SPEC §2), or `ok` for a condition the table does not list.
[[nodiscard]] constexpr status status_of_condition(std::errc condition) noexcept {
  switch (condition) {
    case std::errc::timed_out:
      return status::timeout;
    case std::errc::connection_refused:
    case std::errc::connection_reset:
    case std::errc::connection_aborted:
    case std::errc::not_connected:
    case std::errc::broken_pipe:
    case std::errc::network_down:
    case std::errc::network_reset:
    case std::errc::network_unreachable:
    case std::errc::host_unreachable:
      return status::tcp_error;
    case std::errc::permission_denied:
    case std::errc::operation_not_permitted:
      return status::permission_denied;
    case std::errc::no_such_file_or_directory:
      return status::not_found;
    case std::errc::invalid_argument:
      return status::invalid_argument;
    default:
      return status::ok;
  }
}

/// Every condition `status_of_condition` lists, for categories that only answer `equivalent`.
inline constexpr std::errc listed_conditions[] = {
    std::errc::timed_out,          std::errc::connection_refused,  std::errc::connection_reset,
    std::errc::connection_aborted, std::errc::not_connected,       std::errc::broken_pipe,
    std::errc::network_down,       std::errc::network_reset,       std::errc::network_unreachable,
    std::errc::host_unreachable,   std::errc::permission_denied,   std::errc::operation_not_permitted,
    std::errc::no_such_file_or_directory, std::errc::invalid_argument};

}  // namespace detail

/// How an error code maps to a status (SPEC §2), by the generic condition it is equivalent to,
/// whatever its category (the system one, a library's own): network errors are `tcp_error`,
/// `timed_out` is `timeout`, and any other code is temporary, as is a code of a category that
/// maps nothing to the generic conditions (standalone Asio 1.22's own system category is one:
/// `durable/asio.hpp` translates its codes first).
[[nodiscard]] inline status classify_error_code(const std::error_code& ec) noexcept {
  // Most categories (generic, system) name their generic condition here: one virtual
  // call instead of one `equivalent` per listed condition.
  const std::error_condition condition = ec.default_error_condition();
  if (condition.category() == std::generic_category()) {
    const status s = detail::status_of_condition(static_cast<std::errc>(condition.value()));
    if (s != status::ok) return s;
  }
  if (ec.category() != std::generic_category() && ec.category() != std::system_category()) {
    // A category may be equivalent to a condition without it being its default one.
    for (const std::errc listed : detail::listed_conditions) {
      if (ec == listed) return detail::status_of_condition(listed);
    }
  }
  return status::temporary_error;
}

/// The standard entry for `std::system_error`: `classify_error_code` of its code.
[[nodiscard]] inline status classify_system_error(const std::system_error& e) noexcept {
  return classify_error_code(e.code());
}

/// The standard library's exceptions, consulted together with every policy's own table (the
/// policy's entry wins when both name the same type).
using standard_errors = error_table<
    on<std::invalid_argument, status::invalid_argument>,
    on<std::domain_error, status::invalid_argument>,
    on<std::out_of_range, status::invalid_argument>,
    on<std::length_error, status::invalid_argument>,
    on<std::logic_error, status::permanent_error>,
    on<std::system_error, classify_system_error>,
    on<std::bad_alloc, status::temporary_error>,
    on<std::bad_array_new_length, status::invalid_argument>>;

}  // namespace durable
