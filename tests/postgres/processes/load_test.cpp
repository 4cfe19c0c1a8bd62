// Load: four worker processes share 2,000 invocations of a five-step function through one
// database; every invocation finishes once and every step's side effect happens exactly once.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "postgres_support.hpp"

TEST_CASE("four workers finish 2,000 invocations, each step's side effect exactly once", "[postgres][processes]") {
  const std::string url = postgres_support::connection_string();
  const std::string schema = postgres_support::fresh_schema("load");
  const std::filesystem::path effects = std::filesystem::temp_directory_path() / (schema + ".effects");
  constexpr int invocation_count = 2000;

  cluster::submitter submitter(url, schema);
  const std::vector<std::string> ids = cluster::submit(submitter.invocations, "load", invocation_count);
  cluster::workers workers(url, schema, effects, 5000, 16);
  for (int w = 0; w < 4; ++w) workers.start();
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(cluster::wait_finished(url, schema, invocation_count, std::chrono::seconds(120)));
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  workers.stop_all();

  const cluster::verdict v = cluster::check(url, schema, ids, effects);
  INFO(cluster::describe(v));
  WARN("4 workers: " << invocation_count << " invocations of 5 steps in " << took << " s");
  CHECK(v.problems.empty());
  CHECK(v.invocations == invocation_count);
  CHECK(v.steps_run == 5 * invocation_count);  // exactly once: no step ran twice
  CHECK(v.steps_run_again == 0);
  // Each ran on some worker, and the work was shared.
  std::map<int, int> per_worker;
  for (const cluster::effect& e : cluster::read_effects(effects)) ++per_worker[e.pid];
  CHECK(per_worker.size() == 4);
  std::filesystem::remove(effects);
  durable::postgres::store({.connection = url, .schema = schema}).drop_schema();
}
