// A server with no connection left: a store starting then retries (each try reported) and
// connects once one is free, or fails with the server's own words after its tries. The test
// fills a server of its own: the shared one serves other tests meanwhile.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "cluster.hpp"

namespace {

// Takes every connection the server allows.
std::vector<std::unique_ptr<durable::postgres::connection>> fill(const std::string& url) {
  std::vector<std::unique_ptr<durable::postgres::connection>> held;
  for (int i = 0; i < 200; ++i) {
    try {
      held.push_back(std::make_unique<durable::postgres::connection>(url));
    } catch (const durable::postgres::database_error&) {
      return held;
    }
  }
  FAIL("the server never ran out of connections");
  return held;
}

}  // namespace

TEST_CASE("with too many connections, a store starting retries and connects once one is free", "[postgres][processes]") {
  cluster::own_server server;
  auto held = fill(server.url());
  REQUIRE(!held.empty());
  std::vector<std::string> reported;
  durable::postgres::store store({.connection = server.url(),
                                  .schema = "too_many",
                                  .connect_attempts = 5,
                                  .on_connect_retry = [&](const std::string& what) {
                                    reported.push_back(what);
                                    held.resize(held.size() - 2);  // two free: the store's and its heartbeat's
                                  }});
  REQUIRE(reported.size() == 1);
  CHECK_THAT(reported[0], Catch::Contains("too many clients") && Catch::Contains("try 2 of 5"));
  const auto started = store.start("a", "flow", durable::encode(std::string("x")));
  CHECK(started.claimed.has_value());
}

TEST_CASE("with too many connections for good, a store fails after its tries with the server's reason", "[postgres][processes]") {
  cluster::own_server server;
  auto held = fill(server.url());
  int tries = 0;
  try {
    durable::postgres::store store({.connection = server.url(),
                                    .schema = "too_many",
                                    .connect_attempts = 3,
                                    .on_connect_retry = [&](const std::string&) { ++tries; }});
    FAIL("connected to a full server");
  } catch (const durable::postgres::database_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("too many clients"));
  }
  CHECK(tries == 2);
}
