// expect-error: must be a durable::status value or a function
// A function entry must be `durable::status(const E&) noexcept`: classification runs where a
// promise catches, and must not throw.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <stdexcept>

struct DbError : std::runtime_error {
  DbError(const char* what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

#ifndef DURABLE_COMPILE_FAIL_FIXED
durable::status classify_db(const DbError& e) {
#else
durable::status classify_db(const DbError& e) noexcept {
#endif
  return e.code == 1213 ? durable::status::temporary_error : durable::status::permanent_error;
}

using app_errors = durable::error_table<durable::on<DbError, classify_db>>;

durable::durable_task<void, durable::policy<app_errors>> body() { co_return; }

int main() { static_cast<void>(body()); }
