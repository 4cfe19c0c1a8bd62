// durable/detail/type_list.hpp — small compile-time helpers over packs of types.
#pragma once

#include <type_traits>

namespace durable::detail {

/// True when no type appears twice in the pack (the tables' "one entry per type" rule).
template <class... Ts>
constexpr bool all_distinct = true;
template <class T, class... Ts>
constexpr bool all_distinct<T, Ts...> = (!std::is_same_v<T, Ts> && ...) && all_distinct<Ts...>;

}  // namespace durable::detail
