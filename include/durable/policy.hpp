// durable/policy.hpp — the compile-time policy of a durable_task: errors, outputs, fallback.
#pragma once

#include <cstdint>
#include <type_traits>

#include "error_table.hpp"
#include "output_table.hpp"
#include "status.hpp"

namespace durable {

/// The status of an exception that no table entry matches (including `throw 42;`).
template <status S>
struct fallback {
  static_assert(S != status::ok, "durable::fallback<status::ok> would turn every unknown exception "
                                 "into a success; pick a failure status");
  /// The fallback status.
  static constexpr status value = S;
};

/// Where the coroutine frames of a policy's tasks come from.
enum class frame_allocation : std::uint8_t {
  recycled,    ///< per-thread free lists of frames (the default; global new under ASan)
  global_new,  ///< plain `::operator new` / `::operator delete` for every frame
};

/// A policy parameter choosing the frame allocation: `policy<frames<frame_allocation::global_new>>`.
template <frame_allocation A>
struct frames {
  /// The chosen allocation.
  static constexpr frame_allocation value = A;
};

namespace detail {
template <class T>
constexpr bool is_error_table = false;
template <class... Es>
constexpr bool is_error_table<error_table<Es...>> = true;

template <class T>
constexpr bool is_output_table = false;
template <class... Es>
constexpr bool is_output_table<output_table<Es...>> = true;

template <class T>
constexpr bool is_fallback = false;
template <status S>
constexpr bool is_fallback<fallback<S>> = true;

template <class T>
constexpr bool is_frames = false;
template <frame_allocation A>
constexpr bool is_frames<frames<A>> = true;

template <template <class> class, class Default, class... Ps>
struct pick {
  using type = Default;
};
template <template <class> class Is, class Default, class P, class... Ps>
struct pick<Is, Default, P, Ps...> {
  using type =
      std::conditional_t<Is<P>::value, P, typename pick<Is, Default, Ps...>::type>;
};
template <class T>
struct error_table_q : std::bool_constant<is_error_table<T>> {};
template <class T>
struct output_table_q : std::bool_constant<is_output_table<T>> {};
template <class T>
struct fallback_q : std::bool_constant<is_fallback<T>> {};
template <class T>
struct frames_q : std::bool_constant<is_frames<T>> {};
}  // namespace detail

/// The compile-time policy of a `durable_task`: an `error_table`, an `output_table` and a
/// `fallback`, each optional and in any order. `policy<app_errors, app_outputs>` and
/// `policy<app_outputs>` both work. (Rarely needed: `frames<...>` picks the frame allocation.)
template <class... Params>
struct policy {
  static_assert(((detail::is_error_table<Params> || detail::is_output_table<Params> ||
                  detail::is_fallback<Params> || detail::is_frames<Params>) && ...),
                "durable::policy accepts only durable::error_table<...>, "
                "durable::output_table<...>, durable::fallback<status> and durable::frames<...>");
  static_assert((int{detail::is_error_table<Params>} + ... + 0) <= 1,
                "durable::policy: more than one error_table; merge them into one");
  static_assert((int{detail::is_output_table<Params>} + ... + 0) <= 1,
                "durable::policy: more than one output_table; merge them into one");
  static_assert((int{detail::is_fallback<Params>} + ... + 0) <= 1,
                "durable::policy: more than one fallback");
  static_assert((int{detail::is_frames<Params>} + ... + 0) <= 1,
                "durable::policy: more than one frames<...>");

  /// The policy's own error table (consulted together with `standard_errors`).
  using errors = typename detail::pick<detail::error_table_q, error_table<>, Params...>::type;
  /// The policy's output inspections.
  using outputs = typename detail::pick<detail::output_table_q, output_table<>, Params...>::type;
  /// The status of an exception nothing matches.
  static constexpr status fallback_status =
      detail::pick<detail::fallback_q, fallback<status::permanent_error>, Params...>::type::value;
  /// Where the frames of this policy's tasks are allocated.
  static constexpr frame_allocation frame_allocation_kind =
      detail::pick<detail::frames_q, frames<frame_allocation::recycled>, Params...>::type::value;
};

/// No table of its own: `standard_errors`, no output inspection, unknown exceptions permanent.
using default_policy = policy<>;

namespace detail {
template <class T>
constexpr bool is_policy = false;
template <class... Ps>
constexpr bool is_policy<policy<Ps...>> = true;
}  // namespace detail

}  // namespace durable
