// The journal inspector (tools/journal_inspector.hpp, the `durable-journal` program): list and
// show in text and JSON, escaping, times, and what it does with damaged or foreign files.
#include <catch2/catch.hpp>

#include <durable/codec.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>

#include "../tools/journal_inspector.hpp"
#include "journal_support.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using durable::call_completed_record;
using durable::call_path;
using durable::failure_reason;
using durable::invocation_reset_record;
using durable::invocation_started_record;
using durable::journal_record;
using durable::journal_record_type;
using durable::status;
using durable::wait_kind;
using durable::wait_scheduled_record;
using journal_support::read_file;
using journal_support::temp_dir;
using journal_support::write_file;
namespace inspector = durable::inspector;

namespace {

// ---------------------------------------------------------------------------------------------
// A small JSON reader: the JSON output must parse, and its strings must read back exactly.
// ---------------------------------------------------------------------------------------------

struct json {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<std::string> keys;  // an object's member names, in order
  std::vector<json> children;     // an array's elements, or an object's member values

  [[nodiscard]] bool is_null() const { return type == kind::null; }
  [[nodiscard]] const std::string& str() const { return checked(kind::string).text; }
  [[nodiscard]] double num() const { return checked(kind::number).number; }
  [[nodiscard]] const std::vector<json>& items() const { return checked(kind::array).children; }
  [[nodiscard]] const json& operator[](std::size_t i) const { return items().at(i); }
  [[nodiscard]] const json& operator[](std::string_view key) const {
    const json& self = checked(kind::object);
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return self.children[i];
    throw std::out_of_range("no member " + std::string(key));
  }

 private:
  [[nodiscard]] const json& checked(kind k) const {
    if (type != k) throw std::runtime_error("not the JSON type expected");
    return *this;
  }
};

class json_reader {
 public:
  /// Parses all of `text` (RFC 8259); throws std::runtime_error if it is not one JSON value.
  static json parse(std::string_view text) {
    json_reader r(text);
    json v = r.value();
    r.space();
    if (r.at_ != text.size()) r.fail("trailing characters");
    return v;
  }

 private:
  explicit json_reader(std::string_view text) : text_(text) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error("bad JSON at " + std::to_string(at_) + ": " + why);
  }
  void space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\r' || text_[at_] == '\t'))
      ++at_;
  }
  char peek() {
    space();
    if (at_ >= text_.size()) fail("unexpected end");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected ") + c);
    ++at_;
  }
  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  json value() {
    const char c = peek();
    if (c == '{') return object();
    if (c == '[') return array();
    json v;
    if (c == '"') {
      v.type = json::kind::string;
      v.text = string();
    } else if (literal("null")) {
      v.type = json::kind::null;
    } else if (literal("true")) {
      v.type = json::kind::boolean;
      v.boolean = true;
    } else if (literal("false")) {
      v.type = json::kind::boolean;
    } else {
      v = number();
    }
    return v;
  }
  json object() {
    expect('{');
    json out;
    out.type = json::kind::object;
    if (peek() == '}') {
      ++at_;
      return out;
    }
    for (;;) {
      if (peek() != '"') fail("expected a member name");
      out.keys.push_back(string());
      expect(':');
      out.children.push_back(value());
      if (peek() == '}') {
        ++at_;
        return out;
      }
      expect(',');
    }
  }
  json array() {
    expect('[');
    json out;
    out.type = json::kind::array;
    if (peek() == ']') {
      ++at_;
      return out;
    }
    for (;;) {
      out.children.push_back(value());
      if (peek() == ']') {
        ++at_;
        return out;
      }
      expect(',');
    }
  }
  json number() {
    const std::size_t start = at_;
    if (at_ < text_.size() && text_[at_] == '-') ++at_;
    while (at_ < text_.size() && std::string_view("0123456789.eE+-").find(text_[at_]) != std::string_view::npos) ++at_;
    if (at_ == start) fail("expected a value");
    json v;
    v.type = json::kind::number;
    v.number = std::strtod(std::string(text_.substr(start, at_ - start)).c_str(), nullptr);
    return v;
  }
  unsigned hex4() {
    if (text_.size() - at_ < 4) fail("short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text_[at_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("bad hex digit");
    }
    return v;
  }
  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_ >= text_.size()) fail("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      switch (const char e = text_[at_++]) {
        case '"': case '\\': case '/': out += e; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!literal("\\u")) fail("lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4() - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Journals to inspect
// ---------------------------------------------------------------------------------------------

template <class Record>
journal_record record(journal_record_type type, const Record& r) {
  return {static_cast<std::uint8_t>(type), durable::encode(r)};
}
journal_record started(std::string id, std::string function, std::size_t argument_bytes = 0) {
  return record(journal_record_type::invocation_started,
                invocation_started_record{std::move(id), std::move(function), std::vector<std::byte>(argument_bytes)});
}
journal_record succeeded(std::string id, call_path path, std::string function, std::uint32_t attempts,
                         std::size_t value_bytes) {
  call_completed_record r{std::move(id), std::move(path), std::move(function), status::ok,
                          failure_reason::fatal_status, attempts, {}, std::vector<std::byte>(value_bytes)};
  return record(journal_record_type::call_completed, r);
}
journal_record gave_up(std::string id, call_path path, std::string function, status code, failure_reason reason,
                       std::uint32_t attempts, std::string message) {
  call_completed_record r{std::move(id), std::move(path), std::move(function), code, reason, attempts,
                          std::move(message), {}};
  return record(journal_record_type::call_completed, r);
}
journal_record retry_wait(std::string id, call_path path, std::uint32_t attempt, status last, std::int64_t wake_ns) {
  return record(journal_record_type::wait_scheduled,
                wait_scheduled_record{std::move(id), std::move(path), wait_kind::retry, attempt, last, wake_ns});
}
journal_record sleep_wait(std::string id, call_path path, std::int64_t wake_ns) {
  return record(journal_record_type::wait_scheduled,
                wait_scheduled_record{std::move(id), std::move(path), wait_kind::sleep, 0, status::ok, wake_ns});
}
journal_record reset(std::string id, std::string reason) {
  return record(journal_record_type::invocation_reset, invocation_reset_record{std::move(id), std::move(reason)});
}

/// 2024-05-01T00:00:00Z, plus `ms` milliseconds, in nanoseconds since the epoch.
constexpr std::int64_t may_first_ns(std::int64_t ms) { return (1714521600000 + ms) * 1000000; }

/// Four invocations: order-1 running with calls done, retried and sleeping; order-2 running,
/// waiting to retry its own call; order-3 failed; order-4 reset once, then succeeded.
std::vector<journal_record> sample_records() {
  return {
      started("order-1", "checkout", 12),
      started("order-2", "refund"),
      succeeded("order-1", {0, 0}, "reserve", 1, 5),
      retry_wait("order-1", {0, 1}, 1, status::timeout, may_first_ns(1000)),
      succeeded("order-1", {0, 1}, "charge", 2, 0),
      sleep_wait("order-1", {0, 2}, may_first_ns(43'200'000 + 3'250)),
      started("order-3", "ship"),
      retry_wait("order-2", {0}, 2, status::temporary_error, may_first_ns(3'723'004)),
      gave_up("order-3", {0}, "ship", status::permanent_error, failure_reason::fatal_status, 1, "no address"),
      started("order-4", "checkout", 3),
      succeeded("order-4", {0, 0}, "reserve", 1, 1),
      reset("order-4", "code changed"),
      succeeded("order-4", {0}, "checkout", 1, 2),
  };
}

/// Writes `records` to a new journal file at `path`.
void make_journal(const std::filesystem::path& path, const std::vector<journal_record>& records) {
  durable::file_journal j(path, {.sync = durable::sync_mode::none});
  for (const auto& r : records) j.append(r.type, r.payload);
}

/// What one run of the inspector did.
struct outcome {
  int code = -1;
  std::string out;
  std::string err;
};

outcome inspect(std::vector<std::string> args) {
  std::ostringstream out, err;
  outcome o;
  o.code = inspector::run(args, out, err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

/// The sample journal, as a file, for the command-line tests.
struct sample_file {
  temp_dir dir;
  std::filesystem::path path = dir.file("journal");
  sample_file() { make_journal(path, sample_records()); }
};

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// list and show
// ---------------------------------------------------------------------------------------------

TEST_CASE("list prints a table of the invocations in start order", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"list", f.path.string()});
  CHECK(o.code == 0);
  CHECK(o.err.empty());
  CHECK(o.out ==
        "ID       FUNCTION  STATE      ATTEMPTS  LAST STATUS      NEXT WAKE-UP              CALLS  RESETS\n"
        "order-1  checkout  running    1         OK               2024-05-01T12:00:03.250Z  2      0\n"
        "order-2  refund    running    3         TEMPORARY_ERROR  2024-05-01T01:02:03.004Z  0      0\n"
        "order-3  ship      failed     1         PERMANENT_ERROR  -                         1      0\n"
        "order-4  checkout  succeeded  1         OK               -                         1      1\n");
}

TEST_CASE("list --json prints an array with one object per invocation", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"list", f.path.string(), "--json"});
  REQUIRE(o.code == 0);
  const json doc = json_reader::parse(o.out);
  REQUIRE(doc.items().size() == 4);
  const json& first = doc[0];
  CHECK(first["id"].str() == "order-1");
  CHECK(first["function"].str() == "checkout");
  CHECK(first["state"].str() == "running");
  CHECK(first["attempts"].num() == 1);
  CHECK(first["last_status"].str() == "OK");
  CHECK(first["next_wake_up"].str() == "2024-05-01T12:00:03.250Z");
  CHECK(first["completed_calls"].num() == 2);
  CHECK(first["resets"].num() == 0);
  CHECK(doc[1]["attempts"].num() == 3);
  CHECK(doc[1]["last_status"].str() == "TEMPORARY_ERROR");
  CHECK(doc[2]["state"].str() == "failed");
  CHECK(doc[2]["next_wake_up"].is_null());
  CHECK(doc[3]["state"].str() == "succeeded");
  CHECK(doc[3]["resets"].num() == 1);
}

TEST_CASE("list of a journal without invocations prints only the header, or an empty JSON array", "[inspector]") {
  temp_dir dir;
  make_journal(dir.file("j"), {});
  CHECK(inspect({"list", dir.file("j").string()}).out.starts_with("ID  FUNCTION"));
  const outcome o = inspect({"list", "--json", dir.file("j").string()});
  CHECK(o.code == 0);
  CHECK(json_reader::parse(o.out).items().empty());
}

TEST_CASE("show prints the invocation and every completed or waiting call, sorted by path", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-1"});
  CHECK(o.code == 0);
  CHECK(o.err.empty());
  CHECK(o.out ==
        "id               order-1\n"
        "function         checkout\n"
        "state            running\n"
        "attempts         1\n"
        "last status      OK\n"
        "next wake-up     2024-05-01T12:00:03.250Z\n"
        "completed calls  2\n"
        "resets           0\n"
        "arguments        12 bytes\n"
        "\n"
        "PATH  FUNCTION  WAIT   ATTEMPT  LAST STATUS  WAKE-UP                   OUTCOME\n"
        "0.0   reserve   -      -        -            -                         OK, 5 value bytes\n"
        "0.1   charge    retry  1        TIMEOUT      2024-05-01T00:00:01.000Z  OK, 0 value bytes\n"
        "0.2   -         sleep  -        -            2024-05-01T12:00:03.250Z  pending\n");
}

TEST_CASE("show prints a failure's status, reason, attempts and message", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-3"});
  CHECK(o.code == 0);
  CHECK(contains(o.out, "\n0     ship      -     -        -            -        "
                        "PERMANENT_ERROR (fatal status) after 1 attempt: no address\n"));
}

TEST_CASE("show names the invocation's own call while it waits to retry", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-2"});
  CHECK(o.code == 0);
  CHECK(contains(o.out, "\n0     refund    retry  2        TEMPORARY_ERROR  2024-05-01T01:02:03.004Z  pending\n"));
}

TEST_CASE("show of a reset invocation shows only the progress since the reset", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-4"});
  CHECK(o.code == 0);
  CHECK(contains(o.out, "resets           1\n"));
  CHECK(contains(o.out, "\n0     checkout"));
  CHECK_FALSE(contains(o.out, "reserve"));
}

TEST_CASE("show --json gives the calls with their outcomes and waits", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", "--json", f.path.string(), "order-1"});
  REQUIRE(o.code == 0);
  const json doc = json_reader::parse(o.out);
  CHECK(doc["id"].str() == "order-1");
  CHECK(doc["next_wake_up"].str() == "2024-05-01T12:00:03.250Z");
  CHECK(doc["argument_bytes"].num() == 12);
  const json& calls = doc["calls"];
  REQUIRE(calls.items().size() == 3);
  CHECK(calls[0]["path"].str() == "0.0");
  CHECK(calls[0]["function"].str() == "reserve");
  CHECK(calls[0]["outcome"]["status"].str() == "OK");
  CHECK(calls[0]["outcome"]["value_bytes"].num() == 5);
  CHECK(calls[0]["wait"].is_null());
  CHECK(calls[1]["outcome"]["attempts"].num() == 2);
  CHECK(calls[1]["wait"]["kind"].str() == "retry");
  CHECK(calls[1]["wait"]["attempt"].num() == 1);
  CHECK(calls[1]["wait"]["last_status"].str() == "TIMEOUT");
  CHECK(calls[1]["wait"]["wake_up"].str() == "2024-05-01T00:00:01.000Z");
  CHECK(calls[2]["path"].str() == "0.2");
  CHECK(calls[2]["function"].is_null());
  CHECK(calls[2]["outcome"].is_null());
  CHECK(calls[2]["wait"]["kind"].str() == "sleep");
  CHECK(calls[2]["wait"]["attempt"].is_null());
  CHECK(calls[2]["wait"]["last_status"].is_null());
}

TEST_CASE("show --json gives a failure's status, reason, attempts and message", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-3", "--json"});
  REQUIRE(o.code == 0);
  const json failure = json_reader::parse(o.out)["calls"][0]["outcome"];
  CHECK(failure["status"].str() == "PERMANENT_ERROR");
  CHECK(failure["reason"].str() == "fatal status");
  CHECK(failure["attempts"].num() == 1);
  CHECK(failure["message"].str() == "no address");
}

TEST_CASE("show of an unknown invocation id names it and exits with 2", "[inspector]") {
  sample_file f;
  const outcome o = inspect({"show", f.path.string(), "order-9", "--json"});
  CHECK(o.code == inspector::exit_usage);
  CHECK(o.out.empty());
  CHECK(contains(o.err, "'order-9'"));
  CHECK(contains(o.err, f.path.string()));
}

TEST_CASE("an id that starts with a dash is given after --", "[inspector]") {
  temp_dir dir;
  make_journal(dir.file("j"), {started("-x", "f")});
  const outcome o = inspect({"show", "--json", "--", dir.file("j").string(), "-x"});
  CHECK(o.code == 0);
  CHECK(json_reader::parse(o.out)["id"].str() == "-x");
}

// ---------------------------------------------------------------------------------------------
// Escaping and formatting
// ---------------------------------------------------------------------------------------------

TEST_CASE("an id with quotes, backslashes and control characters reads back exactly from the JSON", "[inspector]") {
  const std::string id = "say \"hi\"\\there\nnext\tline\x01\x1f end";
  temp_dir dir;
  make_journal(dir.file("j"), {started(id, "f\\n"), retry_wait(id, {0}, 1, status::timeout, 0)});

  const outcome list = inspect({"list", dir.file("j").string(), "--json"});
  REQUIRE(list.code == 0);
  CHECK(contains(list.out, R"("say \"hi\"\\there\nnext\tline\u0001\u001f end")"));
  CHECK(json_reader::parse(list.out)[0]["id"].str() == id);
  CHECK(json_reader::parse(list.out)[0]["function"].str() == "f\\n");

  const outcome show = inspect({"show", dir.file("j").string(), id, "--json"});
  REQUIRE(show.code == 0);
  CHECK(json_reader::parse(show.out)["id"].str() == id);
}

TEST_CASE("JSON keeps valid UTF-8 and replaces bytes that are not UTF-8", "[inspector]") {
  const std::string valid = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // 2, 3 and 4 byte sequences
  CHECK(inspector::json_string(valid) == '"' + valid + '"');
  CHECK(inspector::json_string("a\xff" "b") == R"("a\ufffdb")");
  CHECK(inspector::json_string("\xc3") == R"("\ufffd")");                  // cut short
  CHECK(inspector::json_string("\xc0\xaf") == R"("\ufffd\ufffd")");        // overlong
  CHECK(inspector::json_string("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");  // surrogate
  CHECK(inspector::json_string(std::string_view("\0", 1)) == R"("\u0000")");
  CHECK(json_reader::parse(inspector::json_string("a\xff" "b")).str() == "a\xef\xbf\xbd" "b");
}

TEST_CASE("text output escapes backslashes, control characters and bytes that are not UTF-8", "[inspector]") {
  CHECK(inspector::printable("a\\b\nc\td\re") == "a\\\\b\\nc\\td\\re");
  CHECK(inspector::printable("\x1b[31m") == "\\x1b[31m");
  CHECK(inspector::printable("\x7f\xff\xc2\x9b") == "\\x7f\\xff\\xc2\\x9b");
  CHECK(inspector::printable("caf\xc3\xa9") == "caf\xc3\xa9");

  temp_dir dir;
  make_journal(dir.file("j"), {started("two\nlines", "f")});
  const outcome o = inspect({"list", dir.file("j").string()});
  CHECK(contains(o.out, "\ntwo\\nlines  f "));
}

TEST_CASE("times are ISO-8601 UTC with milliseconds, rounded down", "[inspector]") {
  using durable::time_point;
  using std::chrono::nanoseconds;
  CHECK(inspector::iso8601(time_point(nanoseconds(0))) == "1970-01-01T00:00:00.000Z");
  CHECK(inspector::iso8601(time_point(nanoseconds(may_first_ns(3'723'004) + 999'999))) == "2024-05-01T01:02:03.004Z");
  CHECK(inspector::iso8601(time_point(nanoseconds(-1))) == "1969-12-31T23:59:59.999Z");
  CHECK(inspector::iso8601(time_point(nanoseconds(951'782'400'000'000'000))) == "2000-02-29T00:00:00.000Z");
  CHECK(inspector::iso8601(time_point::max()) == "2262-04-11T23:47:16.854Z");
}

TEST_CASE("a call path is printed as its positions joined by dots", "[inspector]") {
  CHECK(inspector::path_string({0}) == "0");
  CHECK(inspector::path_string({0, 2, 1}) == "0.2.1");
}

TEST_CASE("a status outside the protocol is shown with its number", "[inspector]") {
  CHECK(inspector::status_name(status::not_found) == "NOT_FOUND");
  CHECK(inspector::status_name(static_cast<status>(99)) == "UNKNOWN(99)");
  CHECK(inspector::reason_name(static_cast<failure_reason>(7)) == "unknown(7)");
  CHECK(inspector::wait_kind_name(static_cast<wait_kind>(9)) == "unknown(9)");
}

// ---------------------------------------------------------------------------------------------
// Damaged, foreign and missing files
// ---------------------------------------------------------------------------------------------

TEST_CASE("a torn tail is warned about, the valid records are listed, and the file is left alone", "[inspector]") {
  sample_file f;
  auto bytes = read_file(f.path);
  bytes.resize(bytes.size() - 3);  // the last record (order-4 succeeded) cut short
  write_file(f.path, bytes);

  const outcome o = inspect({"list", f.path.string(), "--json"});
  CHECK(o.code == 0);
  CHECK(contains(o.err, "warning"));
  CHECK(contains(o.err, f.path.string()));
  CHECK(contains(o.err, "incomplete record at byte offset "));
  CHECK(contains(o.err, "opening it with the runtime would drop it"));
  const json doc = json_reader::parse(o.out);
  REQUIRE(doc.items().size() == 4);
  CHECK(doc[3]["state"].str() == "running");  // its completion was in the torn record
  CHECK(read_file(f.path) == bytes);
}

TEST_CASE("the torn-tail warning gives the offset of the dropped record", "[inspector]") {
  temp_dir dir;
  const auto path = dir.file("j");
  make_journal(path, {started("a", "f")});
  const auto valid_size = read_file(path).size();
  make_journal(path, {started("b", "g")});  // appends a second record
  auto bytes = read_file(path);
  bytes.back() ^= std::byte{1};  // its checksum no longer matches
  write_file(path, bytes);

  const outcome o = inspect({"list", path.string()});
  CHECK(o.code == 0);
  CHECK(contains(o.err, "bad record at the tail at byte offset " + std::to_string(valid_size) + " (checksum mismatch"));
  CHECK(contains(o.out, "\na "));
  CHECK_FALSE(contains(o.out, "\nb "));
}

TEST_CASE("an empty file is warned about as a creation cut short and lists nothing", "[inspector]") {
  temp_dir dir;
  write_file(dir.file("j"), {});
  const outcome o = inspect({"list", dir.file("j").string(), "--json"});
  CHECK(o.code == 0);
  CHECK(contains(o.err, "partial header at byte offset 0 (empty file)"));
  CHECK(contains(o.err, "would drop it and write a fresh header"));
  CHECK(json_reader::parse(o.out).items().empty());
  CHECK(std::filesystem::file_size(dir.file("j")) == 0);
}

TEST_CASE("damage in the middle is an error naming the file and offset, exit 1, with no output", "[inspector]") {
  sample_file f;
  auto bytes = read_file(f.path);
  const auto offset = durable::detail::journal_header_size;  // the first record
  bytes[offset + 6] ^= std::byte{0x40};
  write_file(f.path, bytes);

  for (const char* json_flag : {"", "--json"}) {
    std::vector<std::string> args{"list", f.path.string()};
    if (*json_flag != '\0') args.emplace_back(json_flag);
    const outcome o = inspect(args);
    CHECK(o.code == inspector::exit_bad_journal);
    CHECK(o.out.empty());
    CHECK(contains(o.err, f.path.string()));
    CHECK(contains(o.err, "corrupt record (valid records follow) at byte offset " + std::to_string(offset)));
  }
  CHECK(read_file(f.path) == bytes);
}

TEST_CASE("a file that is not a journal is an error, exit 1", "[inspector]") {
  temp_dir dir;
  write_file(dir.file("x"), journal_support::bytes_of("{\"not\": \"a journal, but long enough\"}"));
  const outcome o = inspect({"show", dir.file("x").string(), "a", "--json"});
  CHECK(o.code == inspector::exit_bad_journal);
  CHECK(o.out.empty());
  CHECK(contains(o.err, "not a durable journal"));
}

TEST_CASE("an unknown format version is an error, exit 1", "[inspector]") {
  temp_dir dir;
  const auto bytes = durable::detail::journal_header(2);
  write_file(dir.file("j"), std::vector<std::byte>(bytes.begin(), bytes.end()));
  const outcome o = inspect({"list", dir.file("j").string()});
  CHECK(o.code == inspector::exit_bad_journal);
  CHECK(contains(o.err, "unsupported format version"));
}

TEST_CASE("a record that does not decode is an error naming the record and its offset, exit 1", "[inspector]") {
  temp_dir dir;
  const std::vector<journal_record> records{started("a", "f"), {2, {std::byte{0xff}}}};
  make_journal(dir.file("j"), records);
  const auto offset =
      durable::detail::journal_header_size + durable::detail::record_overhead + records[0].payload.size();
  const outcome o = inspect({"list", dir.file("j").string(), "--json"});
  CHECK(o.code == inspector::exit_bad_journal);
  CHECK(o.out.empty());
  CHECK(contains(o.err, dir.file("j").string()));
  CHECK(contains(o.err, "record 2 (call_completed, at byte offset " + std::to_string(offset) + ") does not decode"));
}

TEST_CASE("records about an invocation that was never started are skipped with a warning naming it", "[inspector]") {
  temp_dir dir;
  make_journal(dir.file("j"), {started("a", "f"), succeeded("ghost", {0}, "f", 1, 0), sleep_wait("ghost", {1}, 5)});
  const outcome o = inspect({"list", dir.file("j").string()});
  CHECK(o.code == 0);
  CHECK(contains(o.err, "skipped 2 records of invocation 'ghost', which the journal never started"));
  CHECK(contains(o.out, "\na "));
  CHECK_FALSE(contains(o.out, "ghost"));
}

TEST_CASE("records of an unknown type are skipped with a warning", "[inspector]") {
  temp_dir dir;
  make_journal(dir.file("j"), {started("a", "f"), {77, {std::byte{1}}}});
  const outcome o = inspect({"list", dir.file("j").string()});
  CHECK(o.code == 0);
  CHECK(contains(o.err, "skipped 1 records of a type this version does not know"));
  CHECK(contains(o.out, "\na "));
}

TEST_CASE("a missing file is an error naming it, exit 1", "[inspector]") {
  temp_dir dir;
  const outcome o = inspect({"list", dir.file("missing").string()});
  CHECK(o.code == inspector::exit_bad_journal);
  CHECK(o.out.empty());
  CHECK(contains(o.err, "cannot read " + dir.file("missing").string()));
  CHECK(contains(o.err, "No such file or directory"));
  CHECK_FALSE(std::filesystem::exists(dir.file("missing")));
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

TEST_CASE("--help prints the usage on stdout and exits 0", "[inspector]") {
  const outcome o = inspect({"--help"});
  CHECK(o.code == 0);
  CHECK(o.out.starts_with("Usage:"));
  CHECK(inspect({"list", "-h"}).code == 0);
}

TEST_CASE("a wrong command line prints the usage on stderr and exits 2", "[inspector]") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"list"}, {"show", "j"}, {"list", "j", "extra"}, {"frobnicate", "j"},
        {"list", "j", "--yaml"}}) {
    const outcome o = inspect(args);
    CHECK(o.code == inspector::exit_usage);
    CHECK(o.out.empty());
    CHECK(contains(o.err, "Usage:"));
  }
}
