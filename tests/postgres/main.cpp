// The PostgreSQL tests' main: finds the server CTest's fixture started (scripts/pg-server writes
// its connection string to $DURABLE_TEST_PG_URL_FILE), or else, when there is none, says so
// and exits 77, which CTest reports as skipped.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "postgres_support.hpp"

int main(int argc, char* argv[]) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::string_view(argv[i]).starts_with("--list");
  if (!listing && postgres_support::connection_string().empty()) {
    std::printf("skipped: no PostgreSQL server for the tests (%s)\n", postgres_support::why_none().c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
