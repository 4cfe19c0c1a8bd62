// expect-error: must be a durable::status value or a function
// A function entry must return a durable::status, not a number that looks like one.
// (Compile with -DDURABLE_COMPILE_FAIL_FIXED to check that the corrected file compiles.)
#include <durable/durable.hpp>

#include <stdexcept>

struct DbError : std::runtime_error {
  DbError(const char* what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

#ifndef DURABLE_COMPILE_FAIL_FIXED
int classify_db(const DbError& e) noexcept { return e.code == 1213 ? 6 : 7; }
#else
durable::status classify_db(const DbError& e) noexcept {
  return e.code == 1213 ? durable::status::temporary_error : durable::status::permanent_error;
}
#endif

using app_errors = durable::error_table<durable::on<DbError, classify_db>>;

durable::durable_task<void, durable::policy<app_errors>> body() { co_return; }

int main() { static_cast<void>(body()); }
