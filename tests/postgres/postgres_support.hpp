// What the PostgreSQL tests share: the server's connection string, and a schema per test.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

namespace postgres_support {

/// The connection string in $DURABLE_TEST_PG_URL_FILE (written by scripts/pg-server), or
/// $DURABLE_TEST_PG_URL itself; empty when there is none.
inline std::string connection_string() {
  if (const char* url = std::getenv("DURABLE_TEST_PG_URL"); url != nullptr && *url != '\0') return url;
  const char* file = std::getenv("DURABLE_TEST_PG_URL_FILE");
  if (file == nullptr) return {};
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

inline std::string why_none() {
  if (std::getenv("DURABLE_TEST_PG_URL_FILE") == nullptr) return "DURABLE_TEST_PG_URL_FILE is not set";
  return std::string("no server wrote ") + std::getenv("DURABLE_TEST_PG_URL_FILE") +
         " (is PostgreSQL 15 installed? scripts/setup-deps installs it)";
}

/// A schema name no other test uses, in this process or another.
inline std::string fresh_schema(const std::string& prefix = "t") {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}() % 100000;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(salt) + "_" + std::to_string(counter++);
}

}  // namespace postgres_support
