#pragma once
/// \file Client histories: what clients asked, what they were told, and when.
///
/// `basic_operation<Input, Output>` is one operation of any service and
/// `basic_history<Operation>` records them as they happen; sim/model.hpp checks them
/// against a sequential model. The rest of this file is the key-value register's own
/// history (`operation`, `history`), which the register checker (linearizability.hpp)
/// and history files use.
///
/// A register history file has one operation per line, times in (virtual or
/// monotonic) nanoseconds:
///
///     {"client":0,"op":"put","key":"x","value":"1","call":100,"return":200}
///     {"client":1,"op":"get","key":"x","call":150,"return":250,"output":"1"}
///     {"client":2,"op":"append","key":"x","value":"2","call":300,"return":400}
///     {"client":3,"op":"put","key":"x","value":"9","call":500}
///
/// A missing `return` (or `"return":-1`) means the outcome is unknown (a timeout or a
/// crash): the operation may or may not have taken effect, at any time after its call.

#include <cstddef>
#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <raftkit/assert.hpp>
#include <raftkit/sim/json_lines.hpp>

namespace raftkit::sim {

/// What a client asked of the register of one key.
enum class op_kind : std::uint8_t {
  put,     ///< Replace the value with `value`.
  get,     ///< Read the value; the result is `output`. A key never written reads "".
  append,  ///< Concatenate `value` to the current value.
};

/// The name of an operation kind as written in history files.
constexpr std::string_view to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::put: return "put";
    case op_kind::get: return "get";
    case op_kind::append: return "append";
  }
  return "?";
}

/// Parses an operation name ("put", "get", "append").
constexpr std::optional<op_kind> parse_op_kind(std::string_view s) noexcept {
  if (s == "put") return op_kind::put;
  if (s == "get") return op_kind::get;
  if (s == "append") return op_kind::append;
  return std::nullopt;
}

/// The `ret` of an operation whose outcome is unknown.
inline constexpr std::int64_t unknown_return = -1;

/// One client operation of a service whose requests are `Input` and answers `Output`:
/// its invocation, and its completion when known.
template <class Input, class Output>
struct basic_operation {
  using input_type = Input;
  using output_type = Output;
  std::uint64_t client = 0;           ///< Which client issued it.
  Input input{};                      ///< What it asked.
  Output output{};                    ///< What it was told (when completed).
  std::int64_t call = 0;              ///< Invocation time (ns).
  std::int64_t ret = unknown_return;  ///< Completion time (ns), or unknown_return.

  /// True when the client saw the outcome (so it took effect between call and ret).
  constexpr bool completed() const noexcept { return ret != unknown_return; }

  friend bool operator==(const basic_operation&, const basic_operation&) = default;
};

/// Records client operations as they happen; the simulator keeps one per run.
/// `Operation` has `call`, `ret`, `output` and `completed()`, as basic_operation does.
template <class Operation>
class basic_history {
 public:
  using operation_type = Operation;
  using output_type = decltype(Operation::output);

  /// Records an invoked operation (its `call` set, its outcome not known yet); returns
  /// the id to complete it with.
  std::size_t invoke(Operation o) {
    RAFTKIT_ASSERT(!o.completed(), "history::invoke: already completed");
    ops_.push_back(std::move(o));
    return ops_.size() - 1;
  }

  /// Records that operation `id` returned at `time` with `output`.
  void complete(std::size_t id, std::int64_t time, output_type output) {
    RAFTKIT_ASSERT(id < ops_.size(), "history::complete: unknown id");
    auto& o = ops_[id];
    RAFTKIT_ASSERT(!o.completed(), "history::complete: completed twice");
    RAFTKIT_ASSERT(time >= o.call, "history::complete: return before call");
    o.ret = time;
    o.output = std::move(output);
  }

  /// Records that the outcome of `id` will never be known (timeout, crash): it stays
  /// open, so the checker may linearize it at any time after its call, or never.
  void complete_unknown(std::size_t id) {
    RAFTKIT_ASSERT(id < ops_.size(), "history::complete_unknown: unknown id");
    RAFTKIT_ASSERT(!ops_[id].completed(), "history::complete_unknown: already completed");
  }

  /// The operations in the order they were recorded; the index is the id.
  const std::vector<Operation>& operations() const noexcept { return ops_; }

  /// The number of recorded operations.
  std::size_t size() const noexcept { return ops_.size(); }

 private:
  std::vector<Operation> ops_;
};

/// One operation on a key-value register: its invocation, and its completion when known.
struct operation {
  std::uint64_t client = 0;        ///< Which client issued it.
  op_kind op = op_kind::get;       ///< What it does.
  std::string key;                 ///< The key (each key is an independent register).
  std::string value;               ///< Argument of put/append; empty for get.
  std::string output;              ///< Result of a completed get; empty otherwise.
  std::int64_t call = 0;           ///< Invocation time (ns).
  std::int64_t ret = unknown_return;  ///< Completion time (ns), or unknown_return.

  /// True when the client saw the outcome (so it took effect between call and ret).
  constexpr bool completed() const noexcept { return ret != unknown_return; }

  friend bool operator==(const operation&, const operation&) = default;
};

/// Says what is wrong with an operation as a member of a history, or nothing.
/// The parser and the checker share it so both accept exactly the same histories.
inline std::optional<std::string> validate(const operation& o) {
  if (o.call < 0) return "call time is negative";
  if (o.ret != unknown_return) {
    if (o.ret < 0) return "return time is negative (use -1 or omit it for unknown)";
    if (o.ret < o.call) return "return time is before call time";
  }
  if (o.op == op_kind::get && !o.value.empty()) return "get takes no value";
  if (o.op != op_kind::get && !o.output.empty()) return "only get has an output";
  if (o.op == op_kind::get && !o.completed() && !o.output.empty())
    return "get with unknown outcome cannot have an output";
  return std::nullopt;
}

/// Writes one operation as a single JSON line (with the trailing newline).
inline void write_jsonl(std::ostream& os, const operation& o) {
  os << "{\"client\":" << o.client << ",\"op\":\"" << to_string(o.op) << "\",\"key\":";
  write_json_string(os, o.key);
  if (o.op != op_kind::get) {
    os << ",\"value\":";
    write_json_string(os, o.value);
  }
  os << ",\"call\":" << o.call;
  if (o.completed()) {
    os << ",\"return\":" << o.ret;
    if (o.op == op_kind::get) {
      os << ",\"output\":";
      write_json_string(os, o.output);
    }
  }
  os << "}\n";
}

/// Writes a history in the JSON-lines format, one operation per line.
inline void write_jsonl(std::ostream& os, std::span<const operation> ops) {
  for (const auto& o : ops) write_jsonl(os, o);
}

/// Why a history file could not be read.
struct parse_error {
  std::size_t line = 0;  ///< 1-based line number.
  std::string message;   ///< What is wrong on that line.

  /// "line N: message".
  std::string what() const { return "line " + std::to_string(line) + ": " + message; }
};

/// The operations of a parsed history, or the first error.
template <class Operation>
struct basic_parse_result {
  std::vector<Operation> ops;        ///< Operations in file order (when no error).
  std::optional<parse_error> error;  ///< Set when the input is not a valid history.

  /// True when the whole input parsed.
  explicit operator bool() const noexcept { return !error.has_value(); }
};

/// A parsed register history.
using parse_result = basic_parse_result<operation>;

namespace detail {

/// Converts one parsed JSON object into an operation, or explains why it is not one.
inline std::optional<std::string> to_operation(const std::vector<json_field>& fields,
                                               operation& o) {
  const std::string* op_name = nullptr;
  const std::string* key = nullptr;
  const std::string* value = nullptr;
  const std::string* output = nullptr;
  const std::int64_t* client = nullptr;
  const std::int64_t* call = nullptr;
  const std::int64_t* ret = nullptr;
  for (const auto& f : fields) {
    const auto* s = std::get_if<std::string>(&f.value);
    const auto* i = std::get_if<std::int64_t>(&f.value);
    auto want_string = [&](const std::string*& slot) -> std::optional<std::string> {
      if (!s) return "field \"" + f.name + "\" must be a string";
      slot = s;
      return std::nullopt;
    };
    auto want_int = [&](const std::int64_t*& slot) -> std::optional<std::string> {
      if (!i) return "field \"" + f.name + "\" must be an integer";
      slot = i;
      return std::nullopt;
    };
    std::optional<std::string> err;
    if (f.name == "op") err = want_string(op_name);
    else if (f.name == "key") err = want_string(key);
    else if (f.name == "value") err = want_string(value);
    else if (f.name == "output") err = want_string(output);
    else if (f.name == "client") err = want_int(client);
    else if (f.name == "call") err = want_int(call);
    else if (f.name == "return") err = want_int(ret);
    else err = "unknown field \"" + f.name + "\"";
    if (err) return err;
  }
  if (!client) return "missing field \"client\"";
  if (!op_name) return "missing field \"op\"";
  if (!key) return "missing field \"key\"";
  if (!call) return "missing field \"call\"";
  auto kind = parse_op_kind(*op_name);
  if (!kind) return "unknown op \"" + *op_name + "\" (expected put, get or append)";
  if (*client < 0) return "client must be non-negative";
  o.client = static_cast<std::uint64_t>(*client);
  o.op = *kind;
  o.key = *key;
  o.call = *call;
  o.ret = ret ? *ret : unknown_return;
  if (o.op == op_kind::get) {
    if (value) return "get takes no \"value\"";
    if (o.completed() && !output) return "get with a return has no \"output\"";
    if (!o.completed() && output) return "get with unknown outcome has an \"output\"";
    if (output) o.output = *output;
  } else {
    if (!value) return std::string(to_string(o.op)) + " without \"value\"";
    if (output) return "only get has an \"output\"";
    o.value = *value;
  }
  return validate(o);
}

}  // namespace detail

/// Reads a JSON-lines history. Blank lines are skipped; any other line must be a valid
/// operation, or the result names its line number and what is wrong.
inline parse_result parse_jsonl(std::istream& is) {
  parse_result out;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(is, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto obj = parse_flat_json_object(line);
    if (!obj) {
      out.ops.clear();
      out.error = parse_error{line_no, "malformed JSON: " + obj.error};
      return out;
    }
    operation o;
    if (auto err = detail::to_operation(obj.fields, o)) {
      out.ops.clear();
      out.error = parse_error{line_no, *err};
      return out;
    }
    out.ops.push_back(std::move(o));
  }
  if (is.bad()) out.error = parse_error{line_no + 1, "read error"};
  return out;
}

/// Records register operations as they happen.
class history : public basic_history<operation> {
 public:
  using basic_history::invoke;

  /// Records that `client` invoked `op` on `key` at `time`; returns the id to complete
  /// it with. `value` is the argument of put/append (ignored for get).
  std::size_t invoke(std::uint64_t client, op_kind op, std::string key, std::string value,
                     std::int64_t time) {
    operation o;
    o.client = client;
    o.op = op;
    o.key = std::move(key);
    if (op != op_kind::get) o.value = std::move(value);
    o.call = time;
    return invoke(std::move(o));
  }

  /// Records that operation `id` returned at `time`; `output` is a get's result (only a
  /// get has one).
  void complete(std::size_t id, std::int64_t time, std::string output = {}) {
    RAFTKIT_ASSERT(id < size(), "history::complete: unknown id");
    if (operations()[id].op != op_kind::get) output.clear();
    basic_history::complete(id, time, std::move(output));
  }

  /// Writes the history as JSON lines, in the order recorded.
  void write_jsonl(std::ostream& os) const { sim::write_jsonl(os, std::span(operations())); }

  /// Reads a JSON-lines history (see the free function parse_jsonl).
  static parse_result parse_jsonl(std::istream& is) { return sim::parse_jsonl(is); }
};

}  // namespace raftkit::sim
