// The PostgreSQL component's program of the packaging test: it compiles and links the store
// over libpq, and a store pointed at a closed port fails with a clear error, after one try.
#include <durable/postgres/store.hpp>

#include <cstdio>
#include <string>

int main() {
  try {
    durable::postgres::store store({.connection = "host=127.0.0.1 port=1 connect_timeout=2", .connect_attempts = 1});
  } catch (const durable::postgres::database_error& e) {
    const bool clear = std::string(e.what()).find("cannot connect") != std::string::npos;
    std::printf("postgres: %s\n", clear ? "refused a closed port, clearly" : e.what());
    return clear ? 0 : 1;
  }
  return 1;
}
