// durable/detail/classify.hpp — turning a caught exception into a status through a policy.
//
// Lookup order (SPEC §2): a durable::error carries its own status; a durable::failure is a
// child call that already gave up; otherwise the policy's table and standard_errors act as one
// table where the most specific matching entry wins; otherwise the policy's fallback.
//
// With libstdc++ the thrown type is read from the exception_ptr without rethrowing, so an
// exact hit is one hash probe on the type_info address. Base-class hits ask the type_info
// itself whether a handler for each entry would catch the object (`__do_catch`, what the
// unwinder uses). Other standard libraries take the portable path: one rethrow per entry.
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "../error.hpp"
#include "../error_table.hpp"
#include "../policy.hpp"
#include "../status.hpp"

#if defined(__GLIBCXX__) && defined(__cpp_rtti)
#define DURABLE_DETAIL_GNU_EH 1
#else
#define DURABLE_DETAIL_GNU_EH 0
#endif

namespace durable::detail {

/// What the policy decided about one exception.
struct classification {
  status code = status::permanent_error;
  /// The exception is a child call's durable::failure: the enclosing call must not retry.
  bool final = false;
  failure_reason reason = failure_reason::fatal_status;
  std::optional<std::chrono::nanoseconds> retry_after;
};

inline classification fallback_verdict(status s) noexcept {
  return {s, false, failure_reason::fatal_status, std::nullopt};
}

inline classification from_error(const error& e) noexcept {
  // A thrown durable::error(status::ok) is a contradiction; treat it like fail(status::ok).
  const status code = e.code() == status::ok ? status::invalid_argument : e.code();
  return {code, false, failure_reason::fatal_status, e.retry_after()};
}

inline classification from_failure(const failure& f) noexcept {
  return {f.code(), true, f.reason(), std::nullopt};
}

using resolver = classification (*)(const void* object) noexcept;

template <class Entry>
classification resolve_entry(const void* object) noexcept {
  using E = typename Entry::exception_type;
  const E& e = *static_cast<const E*>(object);
  if constexpr (std::is_convertible_v<const E*, const error*>) {
    return from_error(e);  // a listed type derived from durable::error: the error still wins
  } else if constexpr (std::is_convertible_v<const E*, const failure*>) {
    return from_failure(e);
  } else {
    // An exception cannot mean success: an entry (or function entry) saying `ok` is reported
    // as invalid_argument, like a thrown durable::error(status::ok) and fail(status::ok).
    const status s = Entry::resolve(e);
    return fallback_verdict(s == status::ok ? status::invalid_argument : s);
  }
}

template <class... Entries>
struct entry_list {
  static constexpr std::size_t size = sizeof...(Entries);
};

template <class... Lists>
struct concat;
template <>
struct concat<> {
  using type = entry_list<>;
};
template <class... A>
struct concat<entry_list<A...>> {
  using type = entry_list<A...>;
};
template <class... A, class... B, class... Rest>
struct concat<entry_list<A...>, entry_list<B...>, Rest...> {
  using type = typename concat<entry_list<A..., B...>, Rest...>::type;
};

template <class E, class... Entries>
constexpr bool named_in = (std::is_same_v<E, typename Entries::exception_type> || ...);

template <class UserTable, class StandardTable>
struct merge_tables;
template <class... U, class... S>
struct merge_tables<error_table<U...>, error_table<S...>> {
  // The policy's entries come first (they win ties); a standard entry for a type the policy
  // also names is dropped, so the policy's entry for that type wins.
  using type = typename concat<
      entry_list<U...>,
      std::conditional_t<named_in<typename S::exception_type, U...>, entry_list<>,
                         entry_list<S>>...>::type;
};

/// The merged table of a policy: its own entries, then the standard ones it does not override.
template <class Policy>
using merged_entries = typename merge_tables<typename Policy::errors, standard_errors>::type;

template <class List>
struct table_facts;
template <class... Es>
struct table_facts<entry_list<Es...>> {
 private:
  template <class Entry>
  static void match_one(const std::exception_ptr& e, bool& matched, const void*& object) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const typename Entry::exception_type& x) {
      matched = true;
      object = &x;  // the exception_ptr keeps the object alive
    } catch (...) {
    }
  }

 public:
  static constexpr std::size_t size = sizeof...(Es);
  static constexpr std::array<resolver, size> resolvers{&resolve_entry<Es>...};

  template <class J>
  static constexpr std::array<bool, size> row_of() {
    return {(std::is_base_of_v<typename Es::exception_type, typename J::exception_type> &&
             !std::is_same_v<typename Es::exception_type, typename J::exception_type>)...};
  }
  // derived[j][i]: entry j's type strictly derives from entry i's type.
  static constexpr std::array<std::array<bool, size>, size> derived{row_of<Es>()...};

  static const std::type_info* type_of(std::size_t i) noexcept {
    static const std::type_info* const types[size == 0 ? 1 : size] = {&typeid(typename Es::exception_type)...};
    return types[i];
  }

  /// Portable matching: which entries would catch `e`, and the object each would bind to.
  static void match_by_rethrow(const std::exception_ptr& e, std::array<bool, size>& matched,
                               std::array<const void*, size>& objects) noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (match_one<Es>(e, matched[I], objects[I]), ...);
    }(std::index_sequence_for<Es...>{});
  }

  /// Among the matching entries, the first listed one that no other match is more specific
  /// than; -1 when nothing matched.
  static int select(const std::array<bool, size>& matched) noexcept {
    for (std::size_t i = 0; i < size; ++i) {
      if (!matched[i]) continue;
      bool most_specific = true;
      for (std::size_t j = 0; j < size; ++j) {
        if (matched[j] && derived[j][i]) {
          most_specific = false;
          break;
        }
      }
      if (most_specific) return static_cast<int>(i);
    }
    return -1;
  }
};

/// The portable classification: rethrow once per candidate and let `catch` decide.
template <class List, status Fallback>
classification classify_portable(const std::exception_ptr& e) noexcept {
  if (!e) return fallback_verdict(Fallback);  // rethrow_exception(nullptr) is undefined
  try {
    std::rethrow_exception(e);
  } catch (const error& x) {
    return from_error(x);
  } catch (const failure& f) {
    return from_failure(f);
  } catch (...) {
  }
  using facts = table_facts<List>;
  std::array<bool, facts::size> matched{};
  std::array<const void*, facts::size> objects{};
  facts::match_by_rethrow(e, matched, objects);
  const int best = facts::select(matched);
  if (best < 0) return fallback_verdict(Fallback);
  return facts::resolvers[static_cast<std::size_t>(best)](objects[static_cast<std::size_t>(best)]);
}

#if DURABLE_DETAIL_GNU_EH
/// The thrown object behind a libstdc++ exception_ptr. Its only member is a pointer to the
/// object itself (libstdc++'s ABI is frozen; `eh_ptr.cc` builds it from the object address).
inline void* exception_object(const std::exception_ptr& e) noexcept {
  static_assert(sizeof(std::exception_ptr) == sizeof(void*),
                "libstdc++'s exception_ptr is expected to hold one pointer");
  void* object = nullptr;
  std::memcpy(&object, static_cast<const void*>(&e), sizeof object);
  return object;
}

/// Would `catch (const Target&)` catch an object of dynamic type `thrown`? On success
/// `object` is adjusted to the Target subobject.
inline bool catches(const std::type_info& target, const std::type_info* thrown, void*& object) noexcept {
  void* adjusted = object;
  if (!target.__do_catch(thrown, &adjusted, 1)) return false;
  object = adjusted;
  return true;
}

/// Exact-type lookup: type_info address -> resolver, built once per merged table.
template <class List>
class exact_index {
 public:
  static const exact_index& get() noexcept {
    static const exact_index index;
    return index;
  }

  [[nodiscard]] resolver find(const std::type_info* type) const noexcept {
    for (std::size_t i = slot_of(type);; i = (i + 1) & (capacity - 1)) {
      if (slots_[i].type == type) return slots_[i].fn;
      if (slots_[i].type == nullptr) return nullptr;
    }
  }

 private:
  using facts = table_facts<List>;
  static constexpr std::size_t capacity = std::bit_ceil(2 * (facts::size + 2));
  struct slot {
    const std::type_info* type = nullptr;
    resolver fn = nullptr;
  };

  static std::size_t slot_of(const std::type_info* type) noexcept {
    const auto bits = reinterpret_cast<std::uintptr_t>(type);
    return static_cast<std::size_t>((static_cast<std::uint64_t>(bits) * 0x9E3779B97F4A7C15ull) >>
                                    (64 - std::countr_zero(capacity))) &
           (capacity - 1);
  }

  exact_index() noexcept {
    add(&typeid(error), [](const void* o) noexcept { return from_error(*static_cast<const error*>(o)); });
    add(&typeid(failure),
        [](const void* o) noexcept { return from_failure(*static_cast<const failure*>(o)); });
    for (std::size_t i = 0; i < facts::size; ++i) add(facts::type_of(i), facts::resolvers[i]);
  }

  void add(const std::type_info* type, resolver fn) noexcept {
    for (std::size_t i = slot_of(type);; i = (i + 1) & (capacity - 1)) {
      if (slots_[i].type == type) return;  // first one wins (policy entries precede standard)
      if (slots_[i].type == nullptr) {
        slots_[i] = {type, fn};
        return;
      }
    }
  }

  std::array<slot, capacity> slots_{};
};

/// Which handler catches a thrown type: an entry's index, or one of these.
inline constexpr int matched_error = -1;
inline constexpr int matched_failure = -2;
inline constexpr int matched_nothing = -3;

/// The outcome of catch matching for one thrown type: which handler, and how far the handler's
/// subobject lies from the thrown object. Both depend only on the thrown (most derived) type,
/// even with virtual bases, so they can be remembered per type.
struct base_match {
  const std::type_info* thrown = nullptr;
  int which = matched_nothing;
  std::ptrdiff_t offset = 0;
};

/// A small per-thread, direct-mapped memory of base matches, so that a type seen before costs a
/// probe instead of walking type hierarchies again. Per thread: no synchronisation needed.
template <class List>
struct base_match_cache {
  static constexpr std::size_t slots = 16;
  base_match entries[slots];

  static std::size_t slot_of(const std::type_info* type) noexcept {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(type) >> 4) % slots);
  }
};
template <class List>
inline thread_local constinit base_match_cache<List> base_matches{};

/// Catch matching without rethrowing: asks each candidate's type_info, like the unwinder does.
template <class List>
base_match match_by_type_info(const std::type_info* thrown, void* object) noexcept {
  const auto offset_of = [object](void* adjusted) {
    return static_cast<char*>(adjusted) - static_cast<char*>(object);
  };
  if (void* o = object; catches(typeid(error), thrown, o)) return {thrown, matched_error, offset_of(o)};
  if (void* o = object; catches(typeid(failure), thrown, o)) return {thrown, matched_failure, offset_of(o)};
  using facts = table_facts<List>;
  std::array<bool, facts::size> matched{};
  std::array<void*, facts::size> objects{};
  for (std::size_t i = 0; i < facts::size; ++i) {
    objects[i] = object;
    matched[i] = catches(*facts::type_of(i), thrown, objects[i]);
  }
  const int best = facts::select(matched);
  if (best < 0) return {thrown, matched_nothing, 0};
  return {thrown, best, offset_of(objects[static_cast<std::size_t>(best)])};
}

/// Base-class (and unknown-type) classification, remembered per thrown type.
template <class List, status Fallback>
classification classify_by_catch_matching(const std::type_info* thrown, void* object) noexcept {
  base_match& remembered = base_matches<List>.entries[base_match_cache<List>::slot_of(thrown)];
  if (remembered.thrown != thrown) remembered = match_by_type_info<List>(thrown, object);
  const void* handler_object = static_cast<char*>(object) + remembered.offset;
  switch (remembered.which) {
    case matched_error:
      return from_error(*static_cast<const error*>(handler_object));
    case matched_failure:
      return from_failure(*static_cast<const failure*>(handler_object));
    case matched_nothing:
      return fallback_verdict(Fallback);
    default:
      return table_facts<List>::resolvers[static_cast<std::size_t>(remembered.which)](handler_object);
  }
}
#endif

/// Classifies an exception for the merged table `List` with fallback `Fallback`.
template <class List, status Fallback>
classification classify_with(const std::exception_ptr& e) noexcept {
#if DURABLE_DETAIL_GNU_EH
  if (!e) return fallback_verdict(Fallback);  // __cxa_exception_type() dereferences the object
  const std::type_info* thrown = e.__cxa_exception_type();
  if (thrown == nullptr) return fallback_verdict(Fallback);
  void* object = exception_object(e);
  if (resolver fn = exact_index<List>::get().find(thrown)) return fn(object);
  return classify_by_catch_matching<List, Fallback>(thrown, object);
#else
  return classify_portable<List, Fallback>(e);
#endif
}

/// Classifies an exception the way a task with policy `Policy` does.
template <class Policy>
classification classify(const std::exception_ptr& e) noexcept {
  return classify_with<merged_entries<Policy>, Policy::fallback_status>(e);
}

}  // namespace durable::detail
