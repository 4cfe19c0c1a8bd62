// tools/journal_inspector.hpp — the logic of the `durable-journal` inspector, as functions that
// write to streams, so that the tests call it directly (tools/durable_journal.cpp is only main).
//
// The inspector never changes a journal: it reads it with `file_journal::inspect` (no lock, no
// repair), so it is safe on the journal of a running process, and on a damaged one the runtime
// would refuse. Usage and exit codes: `usage()` below and docs/DESIGN.md, "Inspecting a journal".
#pragma once

#include <durable/codec.hpp>
#include <durable/error.hpp>
#include <durable/file_journal.hpp>
#include <durable/journal.hpp>
#include <durable/journal_records.hpp>
#include <durable/status.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace durable::inspector {

/// The inspector's exit codes.
enum exit_code : int {
  exit_ok = 0,           ///< done; a torn tail is only warned about (a normal crash leftover)
  exit_bad_journal = 1,  ///< the file is missing, unreadable, refused (damage, foreign, version) or undecodable
  exit_usage = 2,        ///< wrong command line, or an invocation id the journal does not hold
};

/// The usage text.
[[nodiscard]] inline std::string_view usage() noexcept {
  return "Usage:\n"
         "  durable-journal list <journal-file> [--json]\n"
         "      one line per invocation, in start order\n"
         "  durable-journal show <journal-file> <invocation-id> [--json]\n"
         "      one invocation and each of its calls and waits\n"
         "  durable-journal --help\n"
         "\n"
         "The journal is only read, never changed. Times are UTC.\n"
         "Exit codes: 0 done (a torn tail is only warned about on stderr), 1 the journal is\n"
         "missing, unreadable, damaged or does not decode, 2 wrong usage or unknown invocation id.\n";
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// The length of the well-formed UTF-8 sequence starting at `s[i]` (1 for ASCII), or 0 if the
/// bytes there are not one (stray continuation byte, overlong form, surrogate, beyond U+10FFFF,
/// cut short). Ids and messages are arbitrary bytes in the journal, and JSON must be UTF-8.
[[nodiscard]] inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t n = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

/// `s` as a JSON string literal, quotes included: `"` and `\` escaped, control characters as
/// \n, \t, ... or \u00XX, and bytes that are not UTF-8 replaced by U+FFFD (JSON text must be
/// UTF-8; a lossless form of such an id would need a different encoding altogether).
[[nodiscard]] inline std::string json_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else if (const std::size_t n = utf8_sequence_length(s, i); n == 0) {
          out += "\\ufffd";
        } else {
          out.append(s.substr(i, n));
          i += n;
          continue;
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

/// `s` made safe for a terminal and unambiguous in a table: `\` doubled, \n, \r, \t, other
/// control characters and bytes that are not UTF-8 as \xNN; everything else as it is.
[[nodiscard]] inline std::string printable(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  const auto escape_byte = [&out](unsigned char c) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 0xF];
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence_length(s, i);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F || n == 0) {
      escape_byte(c);
    } else if (n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
      // C1 control characters (U+0080..U+009F): terminals act on some of them.
      escape_byte(c);
      escape_byte(static_cast<unsigned char>(s[i + 1]));
      i += 2;
      continue;
    } else {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

/// A time as ISO-8601 UTC with milliseconds, rounded down: "2024-05-01T12:00:03.250Z".
[[nodiscard]] inline std::string iso8601(time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss clock{ms - day};
  char text[128];  // ample for any int: -Wformat-truncation cannot prove less
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

/// A call path as its positions joined by dots: "0.2.1".
[[nodiscard]] inline std::string path_string(const call_path& path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (i != 0) out += '.';
    out += std::to_string(path[i]);
  }
  return out;
}

/// A status's protocol name; an unknown value (from a newer writer or damage that passed the
/// checksum) is shown with its number: "UNKNOWN(99)".
[[nodiscard]] inline std::string status_name(status s) {
  const std::string_view name = to_string(s);
  if (name != "UNKNOWN") return std::string(name);
  return "UNKNOWN(" + std::to_string(static_cast<unsigned>(s)) + ")";
}

/// A failure reason's name; "unknown(N)" for a value outside the enum.
[[nodiscard]] inline std::string reason_name(failure_reason r) {
  const std::string_view name = to_string(r);
  if (name != "unknown") return std::string(name);
  return "unknown(" + std::to_string(static_cast<unsigned>(r)) + ")";
}

/// A wait kind's name ("retry", "sleep"); "unknown(N)" for a value outside the enum.
[[nodiscard]] inline std::string wait_kind_name(wait_kind k) {
  switch (k) {
    case wait_kind::retry: return "retry";
    case wait_kind::sleep: return "sleep";
  }
  return "unknown(" + std::to_string(static_cast<unsigned>(k)) + ")";
}

namespace detail {

/// How many columns `s` takes on a terminal: one per code point (wide characters aside).
[[nodiscard]] inline std::size_t display_width(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

/// Writes rows (the first is the header) as columns two spaces apart; the last column, which
/// holds free text, is not padded.
inline void write_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      out << row[c];
      if (c + 1 < row.size()) out << std::string(widths[c] - display_width(row[c]) + 2, ' ');
    }
    out << '\n';
  }
}

/// The next wake-up of an invocation, or "-".
[[nodiscard]] inline std::string next_wake_up_text(const invocation_summary& s) {
  const auto next = s.next_wake_up();
  return next ? iso8601(*next) : "-";
}

/// The header fields of an invocation as JSON members (without braces).
inline void write_json_members(std::ostream& out, const invocation_summary& s) {
  const auto next = s.next_wake_up();
  out << "\"id\": " << json_string(s.started.id) << ", \"function\": " << json_string(s.started.function)
      << ", \"state\": " << json_string(to_string(s.state)) << ", \"attempts\": " << s.attempts()
      << ", \"last_status\": " << json_string(status_name(s.last_status()))
      << ", \"next_wake_up\": " << (next ? json_string(iso8601(*next)) : "null")
      << ", \"completed_calls\": " << s.completed.size() << ", \"resets\": " << s.resets;
}

/// The outcome of a completed call, for the table: "OK, 5 value bytes" or
/// "PERMANENT_ERROR (fatal status) after 1 attempt: card declined".
[[nodiscard]] inline std::string outcome_text(const call_completed_record& done) {
  if (done.code == status::ok) return "OK, " + std::to_string(done.value.size()) + " value bytes";
  return status_name(done.code) + " (" + reason_name(done.reason) + ") after " + std::to_string(done.attempts) +
         (done.attempts == 1 ? " attempt: " : " attempts: ") + printable(done.message);
}

/// The function of the call at `path`: from its completion, or for the invocation's own call
/// from its start; empty if unknown (a pending call's wait does not name it).
[[nodiscard]] inline std::optional<std::string> call_function(const invocation_summary& s, const call_path& path) {
  if (const auto it = s.completed.find(path); it != s.completed.end()) return it->second.function;
  if (path == call_path{0}) return s.started.function;
  return std::nullopt;
}

/// Every path with a completion or a wait, sorted.
[[nodiscard]] inline std::vector<call_path> call_paths(const invocation_summary& s) {
  std::set<call_path> paths;
  for (const auto& entry : s.completed) paths.insert(entry.first);
  for (const auto& entry : s.waits) paths.insert(entry.first);
  return {paths.begin(), paths.end()};
}

/// Checks that each record decodes as its type says, to name the first one that does not
/// (summarize reports only the decoding problem, not which record had it). Returns its index.
[[nodiscard]] inline std::optional<std::size_t> first_undecodable(std::span<const journal_record> records) {
  for (std::size_t i = 0; i < records.size(); ++i) {
    const journal_record& r = records[i];
    try {
      switch (static_cast<journal_record_type>(r.type)) {
        case journal_record_type::invocation_started:
          static_cast<void>(decode<invocation_started_record>(r.payload));
          break;
        case journal_record_type::call_completed:
          static_cast<void>(decode<call_completed_record>(r.payload));
          break;
        case journal_record_type::wait_scheduled:
          static_cast<void>(decode<wait_scheduled_record>(r.payload));
          break;
        case journal_record_type::invocation_reset:
          static_cast<void>(decode<invocation_reset_record>(r.payload));
          break;
        default:
          break;
      }
    } catch (const decode_error&) {
      return i;
    }
  }
  return std::nullopt;
}

/// The name of a record type, for messages.
[[nodiscard]] inline std::string record_type_name(std::uint8_t type) {
  switch (static_cast<journal_record_type>(type)) {
    case journal_record_type::invocation_started: return "invocation_started";
    case journal_record_type::call_completed: return "call_completed";
    case journal_record_type::wait_scheduled: return "wait_scheduled";
    case journal_record_type::invocation_reset: return "invocation_reset";
  }
  return "type " + std::to_string(type);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// `list`: one line per invocation in start order (a table with a header, or with `json` an
/// array of objects with the members id, function, state, attempts, last_status, next_wake_up
/// (null if none), completed_calls, resets).
inline void write_list(std::ostream& out, const journal_summary& summary, bool json) {
  if (json) {
    out << '[';
    const char* separator = "\n  ";
    for (const std::string& id : summary.order) {
      out << separator << '{';
      detail::write_json_members(out, summary.invocations.at(id));
      out << '}';
      separator = ",\n  ";
    }
    out << (summary.order.empty() ? "]\n" : "\n]\n");
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "FUNCTION", "STATE", "ATTEMPTS", "LAST STATUS", "NEXT WAKE-UP", "CALLS", "RESETS"}};
  for (const std::string& id : summary.order) {
    const invocation_summary& s = summary.invocations.at(id);
    rows.push_back({printable(s.started.id), printable(s.started.function), std::string(to_string(s.state)),
                    std::to_string(s.attempts()), status_name(s.last_status()), detail::next_wake_up_text(s),
                    std::to_string(s.completed.size()), std::to_string(s.resets)});
  }
  detail::write_table(out, rows);
}

/// `show`: an invocation's header fields as in `list`, the size of its encoded arguments, and
/// each call path with a completion or a wait (sorted): function, wait (kind, failed attempt,
/// its status, wake-up) and outcome. With `json`, one object: the members of `list`, plus
/// argument_bytes and calls, an array of {path, function (null if unknown), outcome (null
/// while pending, else {status, attempts, value_bytes} or {status, reason, attempts, message}),
/// wait (null, or {kind, attempt, last_status, wake_up}; attempt and last_status null for a sleep)}.
inline void write_show(std::ostream& out, const invocation_summary& s, bool json) {
  const std::vector<call_path> paths = detail::call_paths(s);
  if (json) {
    out << "{";
    detail::write_json_members(out, s);
    out << ", \"argument_bytes\": " << s.started.arguments.size() << ", \"calls\": [";
    const char* separator = "\n  ";
    for (const call_path& path : paths) {
      out << separator << "{\"path\": " << json_string(path_string(path)) << ", \"function\": ";
      const auto function = detail::call_function(s, path);
      out << (function ? json_string(*function) : "null") << ", \"outcome\": ";
      if (const auto done = s.completed.find(path); done == s.completed.end()) {
        out << "null";
      } else if (const call_completed_record& d = done->second; d.code == status::ok) {
        out << "{\"status\": " << json_string(status_name(d.code)) << ", \"attempts\": " << d.attempts
            << ", \"value_bytes\": " << d.value.size() << '}';
      } else {
        out << "{\"status\": " << json_string(status_name(d.code)) << ", \"reason\": "
            << json_string(reason_name(d.reason)) << ", \"attempts\": " << d.attempts
            << ", \"message\": " << json_string(d.message) << '}';
      }
      out << ", \"wait\": ";
      if (const auto wait = s.waits.find(path); wait == s.waits.end()) {
        out << "null";
      } else {
        const wait_scheduled_record& w = wait->second;
        const bool retry = w.kind == wait_kind::retry;
        out << "{\"kind\": " << json_string(wait_kind_name(w.kind))
            << ", \"attempt\": " << (retry ? std::to_string(w.attempt) : "null")
            << ", \"last_status\": " << (retry ? json_string(status_name(w.last)) : "null")
            << ", \"wake_up\": " << json_string(iso8601(w.wake_at())) << '}';
      }
      out << '}';
      separator = ",\n  ";
    }
    out << (paths.empty() ? "]}\n" : "\n]}\n");
    return;
  }

  detail::write_table(out, {{"id", printable(s.started.id)},
                            {"function", printable(s.started.function)},
                            {"state", std::string(to_string(s.state))},
                            {"attempts", std::to_string(s.attempts())},
                            {"last status", status_name(s.last_status())},
                            {"next wake-up", detail::next_wake_up_text(s)},
                            {"completed calls", std::to_string(s.completed.size())},
                            {"resets", std::to_string(s.resets)},
                            {"arguments", std::to_string(s.started.arguments.size()) + " bytes"}});
  out << '\n';
  if (paths.empty()) {
    out << "no calls recorded\n";
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"PATH", "FUNCTION", "WAIT", "ATTEMPT", "LAST STATUS", "WAKE-UP", "OUTCOME"}};
  for (const call_path& path : paths) {
    const auto function = detail::call_function(s, path);
    std::vector<std::string> row{path_string(path), function ? printable(*function) : "-"};
    if (const auto wait = s.waits.find(path); wait == s.waits.end()) {
      row.insert(row.end(), {"-", "-", "-", "-"});
    } else {
      const wait_scheduled_record& w = wait->second;
      const bool retry = w.kind == wait_kind::retry;
      row.insert(row.end(), {wait_kind_name(w.kind), retry ? std::to_string(w.attempt) : "-",
                             retry ? status_name(w.last) : "-", iso8601(w.wake_at())});
    }
    const auto done = s.completed.find(path);
    row.push_back(done == s.completed.end() ? "pending" : detail::outcome_text(done->second));
    rows.push_back(std::move(row));
  }
  detail::write_table(out, rows);
}

// ---------------------------------------------------------------------------------------------
// Reading a journal file
// ---------------------------------------------------------------------------------------------

/// Reads and summarizes the journal at `path`, without changing it. A torn tail is warned about
/// on `err` and its valid records are used; anything else wrong (missing or unreadable file,
/// other damage, a record that does not decode or is about an unknown invocation) is reported
/// on `err`, naming the file, and gives nothing.
[[nodiscard]] inline std::optional<journal_summary> load(const std::filesystem::path& path, std::ostream& err) {
  const std::string name = path.string();
  journal_inspection seen;
  try {
    seen = file_journal::inspect(path);
  } catch (const std::system_error& e) {
    err << "durable-journal: cannot read " << name << " (" << e.what() << ")\n";
    return std::nullopt;
  }

  const std::string found = std::string(to_string(seen.damage)) + " at byte offset " +
                            std::to_string(seen.damage_offset) + " (" + seen.detail + ")";
  if (is_torn_tail(seen.damage)) {
    // What a crash leaves behind: nothing that was ever made durable is in it.
    err << "durable-journal: warning: " << name << ": torn tail: " << found << "; ";
    if (seen.damage == journal_damage::partial_header) {
      // A creation cut short: there is no header, so no record either.
      err << "opening it with the runtime would drop it and write a fresh header. No records.\n";
    } else {
      err << (seen.file_size - seen.valid_end) << " bytes after the last valid record";
      if (seen.damage == journal_damage::unwritten_block)
        err << " (valid-looking records resume at byte offset " << seen.resumes_at << ")";
      err << "; opening it with the runtime would drop it. Showing the " << seen.records.size()
          << " valid records.\n";
    }
  } else if (seen.damage != journal_damage::none) {
    err << "durable-journal: " << name << ": " << found << "; ";
    if (seen.damage == journal_damage::corrupt_record)
      err << "valid records resume at byte offset " << seen.resumes_at << ", so this is damage in the middle, "
          << "not a crash leftover; ";
    err << "the runtime refuses to open it.\n";
    return std::nullopt;
  }

  try {
    journal_summary summary = summarize(seen.records);
    if (summary.unknown_records != 0)
      err << "durable-journal: warning: " << name << ": skipped " << summary.unknown_records
          << " records of a type this version does not know\n";
    for (const auto& [id, count] : summary.orphan_records)
      err << "durable-journal: warning: " << name << ": skipped " << count << " records of invocation '"
          << printable(id) << "', which the journal never started (the runtime skips them too)\n";
    return summary;
  } catch (const decode_error& e) {
    err << "durable-journal: " << name << ": ";
    if (const auto index = detail::first_undecodable(seen.records)) {
      // Records follow the header back to back, so the offset is the sum of the frames before.
      std::uint64_t offset = durable::detail::journal_header_size;
      for (std::size_t i = 0; i < *index; ++i)
        offset += durable::detail::record_overhead + seen.records[i].payload.size();
      err << "record " << (*index + 1) << " (" << detail::record_type_name(seen.records[*index].type)
          << ", at byte offset " << offset << ") does not decode: ";
    } else {
      err << "a record does not decode: ";
    }
    err << e.what() << " (offset within the record's payload)\n";
  } catch (const journal_error& e) {
    err << "durable-journal: " << name << ": " << printable(e.what()) << '\n';
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

/// Runs the inspector on `args` (the command line without the program name), writing results
/// to `out` and messages to `err`; returns the exit code. Output goes to `out` only once it is
/// complete, so an error never leaves half a table or a partial JSON document.
[[nodiscard]] inline int run(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  const auto wrong_usage = [&err](const std::string& problem) {
    err << "durable-journal: " << problem << "\n\n" << usage();
    return exit_usage;
  };
  try {
    bool json = false;
    bool options_end = false;
    std::vector<std::string> positional;
    for (const std::string& arg : args) {
      if (options_end || arg.size() < 2 || arg[0] != '-') {
        positional.push_back(arg);
      } else if (arg == "--") {
        options_end = true;  // an id that starts with '-' comes after "--"
      } else if (arg == "--help" || arg == "-h") {
        out << usage();
        return exit_ok;
      } else if (arg == "--json") {
        json = true;
      } else {
        return wrong_usage("unknown option " + printable(arg));
      }
    }
    if (positional.empty()) return wrong_usage("no command given");
    const std::string& command = positional[0];
    const std::size_t operands = command == "list" ? 1 : command == "show" ? 2 : 0;
    if (operands == 0) return wrong_usage("unknown command " + printable(command));
    if (positional.size() != 1 + operands)
      return wrong_usage(command + " takes " +
                         (operands == 1 ? "a journal file" : "a journal file and an invocation id"));

    const auto summary = load(positional[1], err);
    if (!summary) return exit_bad_journal;
    std::ostringstream text;
    if (command == "list") {
      write_list(text, *summary, json);
    } else {
      const std::string& id = positional[2];
      const auto it = summary->invocations.find(id);
      if (it == summary->invocations.end()) {
        err << "durable-journal: " << positional[1] << ": no invocation with id '" << printable(id) << "'\n";
        return exit_usage;
      }
      write_show(text, it->second, json);
    }
    out << text.str() << std::flush;
    if (!out) {
      err << "durable-journal: cannot write the output\n";
      return exit_bad_journal;
    }
    return exit_ok;
  } catch (const std::exception& e) {
    // Out of memory, or a bug: still a message and an exit code, never a crash.
    err << "durable-journal: " << e.what() << '\n';
    return exit_bad_journal;
  }
}

}  // namespace durable::inspector
