// What classifying an exception costs: exact hits (one hash probe, no rethrow) and base-class
// hits (catch matching through type_info), for tables of 1, 8 and 32 entries.
#include <benchmark/benchmark.h>

#include <durable/durable.hpp>

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <utility>

namespace {

template <int N>
struct listed : std::runtime_error {
  listed() : std::runtime_error("listed") {}
};
template <int N>
struct derived_from_listed : listed<N> {};

template <int... I>
durable::policy<durable::error_table<durable::on<listed<I>, durable::status::temporary_error>...>>
    policy_of(std::integer_sequence<int, I...>);

template <int Size>
using table_policy = decltype(policy_of(std::make_integer_sequence<int, Size>{}));

template <int Size>
void exact_hit(benchmark::State& state) {
  const std::exception_ptr e = std::make_exception_ptr(listed<Size - 1>{});
  for (auto _ : state) {
    benchmark::DoNotOptimize(durable::detail::classify<table_policy<Size>>(e).code);
  }
}

template <int Size>
void base_hit(benchmark::State& state) {
  const std::exception_ptr e = std::make_exception_ptr(derived_from_listed<Size - 1>{});
  for (auto _ : state) {
    benchmark::DoNotOptimize(durable::detail::classify<table_policy<Size>>(e).code);
  }
}

// The hand-written equivalent of a base-class lookup: one rethrow and a ladder of catch
// clauses, one per entry (nested try blocks, since a pack cannot spell out catch clauses).
template <class First, class... Rest>
durable::status ladder_from(const std::exception_ptr& e) {
  try {
    if constexpr (sizeof...(Rest) == 0) {
      std::rethrow_exception(e);
    } else {
      return ladder_from<Rest...>(e);
    }
  } catch (const First&) {
    return durable::status::temporary_error;
  }
}

template <int... I>
durable::status ladder(const std::exception_ptr& e, std::integer_sequence<int, I...>) {
  try {
    return ladder_from<listed<I>...>(e);
  } catch (...) {
    return durable::status::permanent_error;
  }
}

template <int Size>
void base_hit_rethrow_ladder(benchmark::State& state) {
  const std::exception_ptr e = std::make_exception_ptr(derived_from_listed<Size - 1>{});
  for (auto _ : state) {
    benchmark::DoNotOptimize(ladder(e, std::make_integer_sequence<int, Size>{}));
  }
}

}  // namespace

BENCHMARK(exact_hit<1>)->Name("classify_exact/durable:table_of_1");
BENCHMARK(exact_hit<8>)->Name("classify_exact/durable:table_of_8");
BENCHMARK(exact_hit<32>)->Name("classify_exact/durable:table_of_32");
BENCHMARK(base_hit_rethrow_ladder<1>)->Name("classify_base_1/baseline:rethrow_catch_ladder");
BENCHMARK(base_hit<1>)->Name("classify_base_1/durable:table_of_1");
BENCHMARK(base_hit_rethrow_ladder<8>)->Name("classify_base_8/baseline:rethrow_catch_ladder");
BENCHMARK(base_hit<8>)->Name("classify_base_8/durable:table_of_8");
BENCHMARK(base_hit_rethrow_ladder<32>)->Name("classify_base_32/baseline:rethrow_catch_ladder");
BENCHMARK(base_hit<32>)->Name("classify_base_32/durable:table_of_32");

BENCHMARK_MAIN();
