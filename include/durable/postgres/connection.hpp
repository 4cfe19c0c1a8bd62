// durable/postgres/connection.hpp — one libpq connection, and statements on it with typed
// parameters and binary results. What durable::postgres::store is written in; nothing here
// knows about invocations.
#pragma once

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../journal.hpp"

namespace durable::postgres {

/// A database error: the server refused a statement, or the connection failed. `sqlstate()` is
/// the server's five-character code ("40001" a serialization failure, "57P01" a terminated
/// backend), empty when the connection itself failed. A journal_error, so that an invocation
/// treats it as a store failure, never as its own code's.
class database_error : public journal_error {
 public:
  database_error(const std::string& message, std::string sqlstate)
      : journal_error(message), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// True when the connection is gone (a terminated backend, a server restart, a network
  /// failure): the statement may or may not have been applied.
  [[nodiscard]] bool connection_lost() const noexcept {
    // 08: connection exceptions; 57P01..03: the backend was terminated, the server is shutting
    // down or cannot accept connections yet; 53300: too many connections (at connect).
    return sqlstate_.empty() || sqlstate_.starts_with("08") || sqlstate_ == "57P01" || sqlstate_ == "57P02" ||
           sqlstate_ == "57P03" || sqlstate_ == "53300";
  }

 private:
  std::string sqlstate_;
};

/// The parameters of one statement: text for numbers and strings, binary for bytes. Copies and
/// moves are safe: the pointers libpq gets are made when a statement is sent.
class parameters {
 public:
  parameters& text(std::string_view s) {
    owned_.emplace_back(s);
    slots_.push_back({nullptr, static_cast<std::ptrdiff_t>(owned_.size() - 1)});
    lengths_.push_back(static_cast<int>(s.size()));
    formats_.push_back(0);
    return *this;
  }
  parameters& number(std::int64_t n) { return text(std::to_string(n)); }
  parameters& boolean(bool b) { return text(b ? "t" : "f"); }
  parameters& null() { return external(nullptr, 0, 0); }
  parameters& bytes(std::span<const std::byte> b) {
    // A zero-length binary parameter still needs a non-null pointer (null means SQL NULL).
    static const char empty = 0;
    return external(b.empty() ? &empty : reinterpret_cast<const char*>(b.data()), b.size(), 1);
  }
  template <class Range>
  parameters& text_array(const Range& items) {  // a text[] literal: {"a","b"}
    std::string literal = "{";
    for (const auto& item : items) {
      if (literal.size() > 1) literal += ',';
      literal += '"';
      for (const char c : std::string_view(item)) {
        if (c == '"' || c == '\\') literal += '\\';
        literal += c;
      }
      literal += '"';
    }
    literal += '}';
    return text(literal);
  }

  [[nodiscard]] int size() const noexcept { return static_cast<int>(slots_.size()); }
  /// The values as libpq takes them: valid until this object changes or ends.
  [[nodiscard]] const char* const* values() const {
    values_.clear();
    for (const slot& s : slots_) values_.push_back(s.owned >= 0 ? owned_[static_cast<std::size_t>(s.owned)].data() : s.external);
    return values_.data();
  }
  [[nodiscard]] const int* lengths() const noexcept { return lengths_.data(); }
  [[nodiscard]] const int* formats() const noexcept { return formats_.data(); }

 private:
  // A value is either one of owned_ (by index, so that copies point into their own strings)
  // or bytes the caller keeps alive (a payload, for binary parameters).
  struct slot {
    const char* external;
    std::ptrdiff_t owned;  // -1: external
  };
  parameters& external(const char* p, std::size_t n, int format) {
    slots_.push_back({p, -1});
    lengths_.push_back(static_cast<int>(n));
    formats_.push_back(format);
    return *this;
  }
  std::vector<std::string> owned_;
  std::vector<slot> slots_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  mutable std::vector<const char*> values_;
};

/// A statement's result, read in binary: integers in network byte order, bytes as they are.
class result {
 public:
  explicit result(PGresult* r) noexcept : r_(r, &PQclear) {}

  [[nodiscard]] int rows() const noexcept { return PQntuples(r_.get()); }
  [[nodiscard]] bool null(int row, int col) const noexcept { return PQgetisnull(r_.get(), row, col) != 0; }
  [[nodiscard]] std::span<const std::byte> bytes(int row, int col) const noexcept {
    return {reinterpret_cast<const std::byte*>(PQgetvalue(r_.get(), row, col)),
            static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  [[nodiscard]] std::string text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  /// An int2, int4 or int8 column.
  [[nodiscard]] std::int64_t number(int row, int col) const noexcept {
    const auto b = bytes(row, col);
    std::uint64_t v = 0;
    for (const std::byte x : b) v = (v << 8) | static_cast<std::uint8_t>(x);
    if (b.size() < 8 && b.size() > 0 && (static_cast<std::uint8_t>(b[0]) & 0x80) != 0)
      v |= ~std::uint64_t{0} << (8 * b.size());  // sign-extend
    return static_cast<std::int64_t>(v);
  }
  [[nodiscard]] bool boolean(int row, int col) const noexcept {
    const auto b = bytes(row, col);
    return !b.empty() && b[0] != std::byte{0};
  }
  [[nodiscard]] std::int64_t affected() const { return std::atoll(PQcmdTuples(r_.get())); }
  [[nodiscard]] PGresult* raw() const noexcept { return r_.get(); }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

/// One connection to the server. Not thread-safe: its user locks around it.
class connection {
 public:
  /// Connects with a libpq connection string ("host=127.0.0.1 port=5432 dbname=app"). Throws
  /// database_error if the server cannot be reached.
  /// A connection string without a `connect_timeout` gets one of 10 s, so that a server that
  /// does not answer is an error and not a hang.
  explicit connection(const std::string& conninfo) : conn_(connect_with_timeout(conninfo), &PQfinish) {
    if (conn_ == nullptr) throw database_error("durable::postgres: out of memory connecting", {});
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      throw database_error("durable::postgres: cannot connect (" + conninfo_without_password(conninfo) +
                               "): " + trimmed(PQerrorMessage(conn_.get())),
                           {});
    }
    static_cast<void>(PQsetErrorVerbosity(conn_.get(), PQERRORS_DEFAULT));
    // libpq prints the server's notices (a backend being terminated, say) on stderr by
    // default: a library must not write to its user's stderr. Errors still come as exceptions.
    static_cast<void>(PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr));
    exec("SET client_min_messages = warning");
  }

  /// Runs `sql` with `params` as a prepared statement: prepared on this connection the first
  /// time (parsed and planned once), then only executed. For the few statements a store runs
  /// over and over; the text is the key, so it must not vary.
  result exec_prepared(const std::string& sql, const parameters& params) {
    const std::string& name = prepared(sql, params.size());
    result r(PQexecPrepared(conn_.get(), name.c_str(), params.size(), params.values(), params.lengths(), params.formats(), 1));
    check(r, sql);
    return r;
  }

  /// Runs `sql` with `params`; throws database_error if it fails.
  result exec(const std::string& sql, const parameters& params = {}) {
    result r(PQexecParams(conn_.get(), sql.c_str(), params.size(), nullptr, params.values(), params.lengths(),
                          params.formats(), 1));
    check(r, sql);
    return r;
  }

  /// Runs `statements` (each a statement and its parameters) in one transaction, sent together
  /// in one round trip (libpq's pipeline mode), and returns their results in order. A statement
  /// that fails rolls the whole transaction back and throws its database_error (nothing of it
  /// is stored); a lost connection throws with `connection_lost()`, and then the transaction
  /// may or may not have committed.
  /// The statements are prepared ones (see exec_prepared).
  std::vector<result> exec_in_one_transaction(const std::vector<std::pair<const std::string*, const parameters*>>& statements) {
    PGconn* c = conn_.get();
    std::vector<const std::string*> names;
    names.reserve(statements.size());
    for (const auto& [sql, params] : statements) names.push_back(&prepared(*sql, params->size()));  // before the pipeline
    if (PQenterPipelineMode(c) != 1) throw database_error("durable::postgres: cannot enter pipeline mode: " + trimmed(PQerrorMessage(c)), {});
    struct leave_pipeline {
      PGconn* c;
      bool synced = false;
      ~leave_pipeline() {
        if (!synced) static_cast<void>(PQpipelineSync(c));  // results come only after a sync
        // Whatever is left unread (after an error) is read and dropped, so that the connection
        // can leave pipeline mode and be used again; a broken one is discarded by its user.
        for (int guard = 0; guard < 1'000'000; ++guard) {
          if (PQexitPipelineMode(c) == 1 || PQstatus(c) != CONNECTION_OK) return;
          if (PGresult* r = PQgetResult(c)) PQclear(r);
        }
      }
    } leave{c};
    const auto sent = [&](int ok) {
      if (ok != 1) throw database_error("durable::postgres: cannot send a statement: " + trimmed(PQerrorMessage(c)), {});
    };
    sent(PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 1));
    for (std::size_t k = 0; k < statements.size(); ++k) {
      const parameters& p = *statements[k].second;
      sent(PQsendQueryPrepared(c, names[k]->c_str(), p.size(), p.values(), p.lengths(), p.formats(), 1));
    }
    sent(PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 1));
    if (PQpipelineSync(c) != 1) throw database_error("durable::postgres: cannot send a pipeline: " + trimmed(PQerrorMessage(c)), {});
    leave.synced = true;
    // Each statement's result, then a null; BEGIN's and COMMIT's are checked, not returned.
    const auto next = [&](const std::string& what) {
      result r(PQgetResult(c));
      if (r.raw() == nullptr) throw database_error("durable::postgres: the connection ended in a pipeline: " + trimmed(PQerrorMessage(c)), {});
      while (PGresult* extra = PQgetResult(c)) PQclear(extra);  // up to the null that ends this statement's results
      check(r, what);
      return r;
    };
    static const std::string begin_sql = "BEGIN", commit_sql = "COMMIT";
    static_cast<void>(next(begin_sql));
    std::vector<result> out;
    out.reserve(statements.size());
    for (const auto& statement : statements) out.push_back(next(*statement.first));
    static_cast<void>(next(commit_sql));
    result sync(PQgetResult(c));
    if (sync.raw() == nullptr || PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC)
      throw database_error("durable::postgres: a pipeline did not end as expected: " + trimmed(PQerrorMessage(c)), {});
    return out;
  }

  /// Runs several statements separated by semicolons, no parameters (schema creation).
  void exec_script(const std::string& sql) {
    result r(PQexec(conn_.get(), sql.c_str()));
    check(r, sql);
  }

  [[nodiscard]] bool ok() const noexcept { return PQstatus(conn_.get()) == CONNECTION_OK; }
  /// The server process of this connection (what `pg_terminate_backend` takes).
  [[nodiscard]] int backend_pid() const noexcept { return PQbackendPID(conn_.get()); }
  [[nodiscard]] PGconn* native() const noexcept { return conn_.get(); }

 private:
  void check(const result& r, const std::string& sql) {
    const ExecStatusType status = PQresultStatus(r_of(r));
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    const char* state = PQresultErrorField(r_of(r), PG_DIAG_SQLSTATE);
    const std::string message = r_of(r) != nullptr ? trimmed(PQresultErrorMessage(r_of(r))) : trimmed(PQerrorMessage(conn_.get()));
    throw database_error("durable::postgres: " + message + " (in: " + sql.substr(0, 120) + ")",
                         state != nullptr ? std::string(state) : std::string());
  }
  // Keywords are processed in order and the expanded connection string comes last, so a
  // `connect_timeout` of the caller's overrides the default.
  static PGconn* connect_with_timeout(const std::string& conninfo) {
    const char* const keywords[] = {"connect_timeout", "dbname", nullptr};
    const char* const values[] = {"10", conninfo.c_str(), nullptr};
    return PQconnectdbParams(keywords, values, 1);
  }
  // The name of `sql` prepared on this connection, preparing it the first time.
  const std::string& prepared(const std::string& sql, int parameter_count) {
    if (const auto found = prepared_.find(sql); found != prepared_.end()) return found->second;
    std::string name = "durable_" + std::to_string(prepared_.size() + 1);
    result r(PQprepare(conn_.get(), name.c_str(), sql.c_str(), parameter_count, nullptr));
    check(r, sql);
    return prepared_.emplace(sql, std::move(name)).first->second;
  }
  static PGresult* r_of(const result& r) noexcept { return r.raw(); }
  static std::string trimmed(const char* s) {
    std::string out = s != nullptr ? s : "";
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }
  static std::string conninfo_without_password(const std::string& conninfo) {
    const auto at = conninfo.find("password=");
    if (at == std::string::npos) return conninfo;
    auto end = conninfo.find(' ', at);
    return conninfo.substr(0, at) + "password=***" + (end == std::string::npos ? "" : conninfo.substr(end));
  }

  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
  std::unordered_map<std::string, std::string> prepared_;  // statement text -> its name here
};

}  // namespace durable::postgres
