#pragma once
/// \file Sequential models of a service, and the linearizability check of a history
/// against one.
///
/// A model is the specification of a replicated service as if it were one copy that
/// handles one operation at a time:
///
///     struct counter_model {
///       using input = std::int64_t;   // what a client asks: add this much (0 reads)
///       using output = std::int64_t;  // what it is told: the value after
///       using state = std::int64_t;
///       state init() const { return 0; }
///       output step(state& s, input add) const { return s += add; }
///       bool read_only(input add) const { return add == 0; }  // optional
///     };
///
/// A history is linearizable when its operations can be put in one order in which each
/// takes effect at an instant between its call and its return, and the model, stepped
/// through that order from init(), gives every completed operation the output its client
/// was told. An operation whose outcome is unknown (a timeout, a crash) may take effect at
/// any time after its call, or never.
///
/// Optional members of a model, detected:
///  - `partition(input) -> std::string`: operations of different partitions never affect
///    each other, so each partition is checked alone (P-compositionality, Herlihy & Wing
///    §3.3). Keep partitions small (a key, the accounts of one bank) and the check stays
///    fast however long the run.
///  - `read_only(input) -> bool`: the operation never changes the state. Such a read is
///    placed at once, with no alternative tried, when it could come next and matches the
///    current state (moving a read earlier within its interval changes no other
///    operation's output), and one whose outcome is unknown is dropped: it says nothing.
///  - `hash(const state&) -> std::uint64_t`, where std::hash<state> does not exist.
///  - `input_text(input)`, `output_text(output)`, `state_text(state)`: text for
///    explanations and timelines; with `parse_input(std::string_view)` and
///    `parse_output(std::string_view)` (each returning std::optional) also the text of
///    history files (see write_history_jsonl).
///  - `check(std::span<const operation>, const check_options&) -> check_result`: a
///    checker of the model's own, which check_linearizability then uses (the key-value
///    register's decides most keys from their values; see linearizability.hpp).
///  - `write_jsonl(std::ostream&, std::span<const operation>)` and
///    `parse_jsonl(std::istream&)`: a history file format of the model's own.
///
/// The search (search_linearizability) is Wing & Gong's depth-first search over the order
/// of linearization points, candidates limited to the operations invoked before the
/// earliest pending return, with Lowe's memoization of (set of linearized operations,
/// model state) so no configuration is explored twice. Past a step budget per partition
/// it stops, and the partition is *inconclusive*: never reported as linearizable, nor as
/// a violation.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "raftkit/sim/history.hpp"
#include "raftkit/sim/json_lines.hpp"
#include "raftkit/sim/linearizability.hpp"

namespace raftkit::sim {

/// A sequential model of a service (see the file comment).
template <class M>
concept model = requires(const M& m, typename M::state& s, const typename M::input& in) {
  typename M::input;
  typename M::output;
  typename M::state;
  { m.init() } -> std::convertible_to<typename M::state>;
  { m.step(s, in) } -> std::convertible_to<typename M::output>;
} && std::equality_comparable<typename M::output> && std::equality_comparable<typename M::state> &&
    std::copyable<typename M::state> && std::copyable<typename M::input> &&
    (requires(const M& m, const typename M::state& s) {
      { m.hash(s) } -> std::convertible_to<std::uint64_t>;
    } || requires(const typename M::state& s) {
      { std::hash<typename M::state>{}(s) } -> std::convertible_to<std::size_t>;
    });

/// One operation in a history of model M.
template <class M>
using model_operation = basic_operation<typename M::input, typename M::output>;

/// Whether M splits its operations into independent partitions.
template <class M>
concept model_has_partition = requires(const M& m, const typename M::input& in) {
  { m.partition(in) } -> std::convertible_to<std::string>;
};

/// Whether M says which operations are reads.
template <class M>
concept model_has_read_only = requires(const M& m, const typename M::input& in) {
  { m.read_only(in) } -> std::convertible_to<bool>;
};

/// Whether M can write its operations as text (for explanations and timelines).
template <class M>
concept model_has_text = requires(const M& m, const typename M::input& in, const typename M::output& out) {
  { m.input_text(in) } -> std::convertible_to<std::string>;
  { m.output_text(out) } -> std::convertible_to<std::string>;
};

/// Whether M can also read its operations from text (for history files).
template <class M>
concept model_has_text_io = model_has_text<M> && requires(const M& m, std::string_view t) {
  { m.parse_input(t) } -> std::same_as<std::optional<typename M::input>>;
  { m.parse_output(t) } -> std::same_as<std::optional<typename M::output>>;
};

/// Whether M brings a checker of its own.
template <class M>
concept model_has_own_check =
    requires(const M& m, std::span<const model_operation<M>> ops, const check_options& o) {
      { m.check(ops, o) } -> std::same_as<check_result>;
    };

/// Whether M brings a history file format of its own.
template <class M>
concept model_has_own_jsonl = requires(const M& m, std::ostream& os, std::istream& is,
                                       std::span<const model_operation<M>> ops) {
  m.write_jsonl(os, ops);
  { m.parse_jsonl(is) } -> std::same_as<basic_parse_result<model_operation<M>>>;
};

/// Whether M's histories can be written to and read from files.
template <class M>
concept model_has_history_files = model_has_own_jsonl<M> || model_has_text_io<M>;

/// The partition of `in` ("" for a model without partitions).
template <model M>
std::string partition_of(const M& m, const typename M::input& in) {
  if constexpr (model_has_partition<M>) return std::string(m.partition(in));
  else return {};
}

/// Whether `in` is a read (false for a model that does not say).
template <model M>
bool is_read_only(const M& m, const typename M::input& in) {
  if constexpr (model_has_read_only<M>) return static_cast<bool>(m.read_only(in));
  else return false;
}

/// "transfer ..." for explanations: the model's text, else a placeholder.
template <model M>
std::string describe_input(const M& m, const typename M::input& in) {
  if constexpr (model_has_text<M>) return std::string(m.input_text(in));
  else return "operation";
}
template <model M>
std::string describe_output(const M& m, const typename M::output& out) {
  if constexpr (model_has_text<M>) return std::string(m.output_text(out));
  else return "(output)";
}

/// One line of an explanation: "#12 client 3 transfer ... -> ok [150, 250]".
template <model M>
std::string describe(const M& m, const model_operation<M>& o, std::size_t index) {
  std::string r = "#" + std::to_string(index) + " client " + std::to_string(o.client) + " " +
                  describe_input(m, o.input);
  if (o.completed()) r += " -> " + describe_output(m, o.output);
  r += " [" + std::to_string(o.call) + ", " +
       (o.completed() ? std::to_string(o.ret) : std::string("unknown")) + "]";
  return r;
}

namespace detail {

template <model M>
std::uint64_t state_hash(const M& m, const typename M::state& s) {
  if constexpr (requires { { m.hash(s) } -> std::convertible_to<std::uint64_t>; })
    return static_cast<std::uint64_t>(m.hash(s));
  else
    return mix64(static_cast<std::uint64_t>(std::hash<typename M::state>{}(s)));
}

/// The configurations (linearized set, model state) already explored. The set is a
/// 128-bit Zobrist fingerprint (false matches about as likely as n^2 / 2^128); the state
/// is kept and compared exactly, so two states with one hash are never confused.
template <class State>
class model_memo {
 public:
  model_memo() : slots_(1024, empty) {}

  /// Inserts the configuration; false if it was already present.
  bool insert(std::uint64_t set1, std::uint64_t set2, std::uint64_t state_hash, const State& st) {
    if ((entries_.size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t key = set1 ^ state_hash;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = key & mask;; i = (i + 1) & mask) {
      const std::uint32_t e = slots_[i];
      if (e == empty) {
        slots_[i] = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back({key, set1, set2, st});
        return true;
      }
      const auto& en = entries_[e];
      if (en.key == key && en.set1 == set1 && en.set2 == set2 && en.st == st) return false;
    }
  }

 private:
  static constexpr std::uint32_t empty = 0xFFFFFFFFu;
  struct entry {
    std::uint64_t key, set1, set2;
    State st;
  };
  void grow() {
    std::vector<std::uint32_t> next(slots_.size() * 2, empty);
    const std::size_t mask = next.size() - 1;
    for (std::uint32_t e = 0; e < entries_.size(); ++e) {
      std::size_t i = entries_[e].key & mask;
      while (next[i] != empty) i = (i + 1) & mask;
      next[i] = e;
    }
    slots_ = std::move(next);
  }
  std::vector<std::uint32_t> slots_;
  std::vector<entry> entries_;
};

/// The search for one partition; `idx` are indices into `all` of its operations.
template <model M>
class model_search {
 public:
  using op_type = model_operation<M>;
  using state = typename M::state;

  model_search(const M& m, std::span<const op_type> all, std::vector<std::size_t> idx)
      : m_(m), all_(all), idx_(std::move(idx)) {}

  check_verdict run(std::uint64_t budget) {
    const std::size_t n = idx_.size();
    zobrist_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) zobrist_.push_back({mix64(2 * i + 11), mix64(2 * i + 12)});
    read_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) read_.push_back(is_read_only(m_, op(i).input));
    build_list();
    model_memo<state> memo;
    std::uint64_t set1 = 0, set2 = 0;
    state st = m_.init();
    std::size_t remaining = 0;
    for (std::size_t i = 0; i < n; ++i) remaining += op(i).completed() ? 1 : 0;

    struct frame {
      std::uint32_t node;
      state prev;
      std::uint32_t begin, end, pos;
    };
    std::vector<frame> stack;
    std::uint32_t begin = 0, pos = 0;
    std::uint32_t end = candidates(st);
    for (;;) {
      if (remaining == 0) {
        record_prefix(stack);
        return check_verdict::linearizable;
      }
      if (pos < end - begin) {
        if (steps_ >= budget) return check_verdict::inconclusive;
        ++steps_;
        const std::uint32_t nd = cands_[begin + pos++];
        const std::uint32_t o = nodes_[nd].op;
        state next = st;
        const auto out = m_.step(next, op(o).input);
        if (op(o).completed() && !(out == op(o).output)) continue;
        if (!memo.insert(set1 ^ zobrist_[o].first, set2 ^ zobrist_[o].second, state_hash(m_, next), next))
          continue;
        set1 ^= zobrist_[o].first;
        set2 ^= zobrist_[o].second;
        stack.push_back({nd, std::move(st), begin, end, pos});
        st = std::move(next);
        lift(nd);
        if (op(o).completed()) --remaining;
        if (stack.size() > best_.size()) record_prefix(stack);
        begin = static_cast<std::uint32_t>(cands_.size());
        end = candidates(st);
        pos = 0;
        continue;
      }
      if (stack.empty()) return check_verdict::not_linearizable;
      frame f = std::move(stack.back());
      stack.pop_back();
      cands_.resize(begin);
      const std::uint32_t o = nodes_[f.node].op;
      set1 ^= zobrist_[o].first;
      set2 ^= zobrist_[o].second;
      st = std::move(f.prev);
      unlift(f.node);
      if (op(o).completed()) ++remaining;
      begin = f.begin;
      end = f.end;
      pos = f.pos;
    }
  }

  std::uint64_t steps() const noexcept { return steps_; }

  /// Indices into the whole history of the longest linearizable prefix found.
  std::vector<std::size_t> best_prefix() const {
    std::vector<std::size_t> r;
    for (auto o : best_) r.push_back(idx_[o]);
    return r;
  }

  /// The earliest-returning completed operation not in the best prefix: it, or one
  /// concurrent with it, had to come next and none could.
  std::size_t culprit() const {
    std::vector<bool> in(idx_.size(), false);
    for (auto o : best_) in[o] = true;
    std::size_t best = static_cast<std::size_t>(-1);
    for (std::size_t i = 0; i < idx_.size(); ++i) {
      if (in[i] || !op(i).completed()) continue;
      if (best == static_cast<std::size_t>(-1) || op(i).ret < all_[best].ret) best = idx_[i];
    }
    return best;
  }

  /// The model's state after the best prefix.
  state state_after_prefix() const {
    state s = m_.init();
    for (auto o : best_) m_.step(s, op(o).input);
    return s;
  }

 private:
  static constexpr std::uint32_t head = 0;
  static constexpr std::uint32_t tail = 1;
  static constexpr std::uint32_t none = 0xFFFFFFFFu;

  struct node {
    std::int64_t time = 0;
    std::uint32_t op = 0;
    std::uint32_t match = none;  // a call's return (none for an unknown outcome)
    std::uint32_t prev = 0, next = 0;
    bool is_call = false;
  };

  const op_type& op(std::size_t i) const { return all_[idx_[i]]; }

  // The candidates of this configuration, appended to cands_; returns the new end. Only
  // an operation invoked before the earliest pending return may come next (that return
  // must follow it). A read matching the current state goes alone (see the file comment);
  // otherwise completed operations come first, earliest return first, then those whose
  // outcome is unknown (which may be left out altogether).
  std::uint32_t candidates(const state& st) {
    const auto first = static_cast<std::uint32_t>(cands_.size());
    ranked_.clear();
    unknown_cands_.clear();
    for (std::uint32_t nd = nodes_[head].next; nd != tail && nodes_[nd].is_call; nd = nodes_[nd].next) {
      const std::uint32_t o = nodes_[nd].op;
      const op_type& x = op(o);
      if (read_[o] && x.completed()) {
        state probe = st;
        if (m_.step(probe, x.input) == x.output) {
          cands_.push_back(nd);
          return first + 1;
        }
        continue;  // a read that does not match now cannot come next
      }
      if (!x.completed() && twin_of_earlier_candidate(o)) continue;
      ranked_.push_back({x.completed() ? 0 : 1, x.completed() ? x.ret : x.call, nd});
      if (!x.completed()) unknown_cands_.push_back(o);
    }
    unknown_cands_.clear();
    std::sort(ranked_.begin(), ranked_.end());
    for (const auto& r : ranked_) cands_.push_back(std::get<2>(r));
    return static_cast<std::uint32_t>(cands_.size());
  }

  // Two operations of unknown outcome with equal inputs that may both come next are
  // interchangeable from here on: neither has a return to bound it, so any order that
  // places the later one here places the earlier one here instead, and the later one
  // where the earlier one was. Only the first of such twins is tried (the counter's
  // "add 1" lost in a crash, many times over, would otherwise be tried in every subset).
  bool twin_of_earlier_candidate(std::uint32_t o) const {
    if constexpr (std::equality_comparable<typename M::input>) {
      for (std::uint32_t u : unknown_cands_)
        if (op(u).input == op(o).input) return true;
    }
    return false;
  }

  // Events by time; at equal times calls first, so operations that touch at an instant
  // count as concurrent.
  void build_list() {
    struct event {
      std::int64_t time;
      int rank;  // 0 call, 1 return
      std::uint32_t op;
    };
    std::vector<event> ev;
    for (std::uint32_t i = 0; i < idx_.size(); ++i) {
      ev.push_back({op(i).call, 0, i});
      if (op(i).completed()) ev.push_back({op(i).ret, 1, i});
    }
    std::sort(ev.begin(), ev.end(), [](const event& a, const event& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.rank != b.rank) return a.rank < b.rank;
      return a.op < b.op;
    });
    nodes_.assign(ev.size() + 2, node{});
    std::vector<std::uint32_t> call_node(idx_.size()), ret_node(idx_.size(), none);
    std::uint32_t prev = head;
    for (std::size_t k = 0; k < ev.size(); ++k) {
      const auto id = static_cast<std::uint32_t>(k + 2);
      nodes_[id].time = ev[k].time;
      nodes_[id].op = ev[k].op;
      nodes_[id].is_call = ev[k].rank == 0;
      (ev[k].rank == 0 ? call_node : ret_node)[ev[k].op] = id;
      nodes_[id].prev = prev;
      nodes_[prev].next = id;
      prev = id;
    }
    nodes_[prev].next = tail;
    nodes_[tail].prev = prev;
    nodes_[tail].next = tail;
    for (std::uint32_t i = 0; i < idx_.size(); ++i) nodes_[call_node[i]].match = ret_node[i];
  }

  void unlink(std::uint32_t e) noexcept {
    nodes_[nodes_[e].prev].next = nodes_[e].next;
    nodes_[nodes_[e].next].prev = nodes_[e].prev;
  }
  void relink(std::uint32_t e) noexcept {
    nodes_[nodes_[e].prev].next = e;
    nodes_[nodes_[e].next].prev = e;
  }
  void lift(std::uint32_t call) noexcept {
    unlink(call);
    if (nodes_[call].match != none) unlink(nodes_[call].match);
  }
  void unlift(std::uint32_t call) noexcept {
    if (nodes_[call].match != none) relink(nodes_[call].match);
    relink(call);
  }

  template <class Stack>
  void record_prefix(const Stack& stack) {
    best_.clear();
    for (const auto& f : stack) best_.push_back(nodes_[f.node].op);
  }

  const M& m_;
  std::span<const op_type> all_;
  std::vector<std::size_t> idx_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> zobrist_;
  std::vector<bool> read_;
  std::vector<node> nodes_;
  std::vector<std::uint32_t> cands_;
  std::vector<std::tuple<int, std::int64_t, std::uint32_t>> ranked_;
  std::vector<std::uint32_t> unknown_cands_;  // this configuration's unknown candidates so far
  std::vector<std::uint32_t> best_;
  std::uint64_t steps_ = 0;
};

template <model M>
std::string explain_model_search(const M& m, std::span<const model_operation<M>> all,
                                 const model_search<M>& s, std::size_t show) {
  const std::vector<std::size_t> prefix = s.best_prefix();
  std::string r = "The longest linearizable prefix found has " + std::to_string(prefix.size()) + " operations";
  if (!prefix.empty()) {
    const std::size_t from = prefix.size() > show ? prefix.size() - show : 0;
    r += from > 0 ? "; its last " + std::to_string(prefix.size() - from) + " are:\n" : ":\n";
    for (std::size_t i = from; i < prefix.size(); ++i) r += "  " + sim::describe(m, all[prefix[i]], prefix[i]) + "\n";
  } else {
    r += ".\n";
  }
  auto st = s.state_after_prefix();
  if constexpr (requires { { m.state_text(st) } -> std::convertible_to<std::string>; })
    r += "After it the state is " + std::string(m.state_text(st)) + ".\n";
  const std::size_t c = s.culprit();
  if (c != static_cast<std::size_t>(-1)) {
    r += "The next operation to return cannot be placed after it, nor can any operation concurrent with it: " +
         sim::describe(m, all[c], c) + "\n";
    const auto answer = m.step(st, all[c].input);
    r += "There the model answers " + describe_output(m, answer) + ".\n";
  }
  return r;
}

}  // namespace detail

/// Checks `ops` against model `m` by search alone (see the file comment), whatever
/// checker the model brings. Operation numbers in explanations (#12) are indices into
/// `ops`.
template <model M>
check_result search_linearizability(std::span<const model_operation<M>> ops, const M& m,
                                    const check_options& options = {}) {
  check_result result;
  std::map<std::string, std::vector<std::size_t>> parts;  // ordered: deterministic
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto& o = ops[i];
    std::optional<std::string> err;
    if (o.call < 0) err = "call time is negative";
    else if (o.completed() && o.ret < 0) err = "return time is negative (use -1 for unknown)";
    else if (o.completed() && o.ret < o.call) err = "return time is before call time";
    if (err) {
      result.verdict = check_verdict::invalid_history;
      result.linearizable = false;
      result.culprit = i;
      result.key = partition_of(m, o.input);
      result.explanation = "operation " + sim::describe(m, o, i) + ": " + *err;
      return result;
    }
    if (!o.completed() && is_read_only(m, o.input)) continue;  // an unknown read says nothing
    parts[partition_of(m, o.input)].push_back(i);
  }
  std::optional<check_result> inconclusive;
  for (auto& [key, idx] : parts) {
    ++result.keys;
    ++result.searched_keys;
    const std::size_t n = idx.size();
    detail::model_search<M> s(m, ops, std::move(idx));
    const check_verdict v = s.run(options.max_steps_per_key);
    result.steps += s.steps();
    if (v == check_verdict::linearizable) continue;
    check_result r;
    r.verdict = v;
    r.linearizable = false;
    r.key = key;
    r.longest_prefix = s.best_prefix();
    r.culprit = s.culprit();
    const std::string where = key.empty() ? std::string("the history") : "partition \"" + key + "\"";
    if (v == check_verdict::inconclusive)
      r.explanation = "inconclusive on " + where + ": the search stopped after " + std::to_string(s.steps()) +
                      " steps (budget " + std::to_string(options.max_steps_per_key) +
                      ") with no violation found and none ruled out.\n";
    else
      r.explanation = where + ": no linearization of its " + std::to_string(n) + " operations exists.\n";
    r.explanation += detail::explain_model_search(m, ops, s, options.explain_prefix_ops);
    if (v == check_verdict::not_linearizable) {
      r.steps = result.steps;
      r.keys = result.keys;
      r.searched_keys = result.searched_keys;
      return r;
    }
    if (!inconclusive) inconclusive = std::move(r);
  }
  if (inconclusive) {
    inconclusive->steps = result.steps;
    inconclusive->keys = result.keys;
    inconclusive->searched_keys = result.searched_keys;
    return *inconclusive;
  }
  return result;
}

/// Checks `ops` against model `m`: with the model's own checker if it has one, else by
/// search_linearizability.
template <model M>
check_result check_linearizability(std::span<const model_operation<M>> ops, const M& m,
                                   const check_options& options = {}) {
  if constexpr (model_has_own_check<M>) return m.check(ops, options);
  else return search_linearizability(ops, m, options);
}

// ------------------------------------------------------------------ history files

/// Writes a history of model M as JSON lines: the model's own format if it has one, else
/// one object per operation with the model's text forms,
///
///     {"client":0,"input":"transfer 3 0 1 25","call":100,"return":200,"output":"ok"}
///
/// with no "return" and "output" for an operation whose outcome is unknown.
template <model M>
  requires model_has_history_files<M>
void write_history_jsonl(std::ostream& os, const M& m, std::span<const model_operation<M>> ops) {
  if constexpr (model_has_own_jsonl<M>) {
    m.write_jsonl(os, ops);
  } else {
    for (const auto& o : ops) {
      os << "{\"client\":" << o.client << ",\"input\":";
      write_json_string(os, m.input_text(o.input));
      os << ",\"call\":" << o.call;
      if (o.completed()) {
        os << ",\"return\":" << o.ret << ",\"output\":";
        write_json_string(os, m.output_text(o.output));
      }
      os << "}\n";
    }
  }
}

/// Reads a history of model M written by write_history_jsonl. Blank lines are skipped;
/// any other line must be an operation, or the result names its line and what is wrong.
template <model M>
  requires model_has_history_files<M>
basic_parse_result<model_operation<M>> parse_history_jsonl(std::istream& is, const M& m) {
  if constexpr (model_has_own_jsonl<M>) {
    return m.parse_jsonl(is);
  } else {
    basic_parse_result<model_operation<M>> out;
    std::string line;
    std::size_t line_no = 0;
    auto fail = [&](std::string why) {
      out.ops.clear();
      out.error = parse_error{line_no, std::move(why)};
      return out;
    };
    while (std::getline(is, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto obj = parse_flat_json_object(line);
      if (!obj) return fail("malformed JSON: " + obj.error);
      model_operation<M> o;
      const std::string* input = nullptr;
      const std::string* output = nullptr;
      bool has_client = false, has_call = false, has_return = false;
      for (const auto& f : obj.fields) {
        const auto* s = std::get_if<std::string>(&f.value);
        const auto* i = std::get_if<std::int64_t>(&f.value);
        if (f.name == "input" || f.name == "output") {
          if (!s) return fail("field \"" + f.name + "\" must be a string");
          (f.name == "input" ? input : output) = s;
        } else if (f.name == "client" || f.name == "call" || f.name == "return") {
          if (!i) return fail("field \"" + f.name + "\" must be an integer");
          if (f.name == "client") {
            if (*i < 0) return fail("client must be non-negative");
            o.client = static_cast<std::uint64_t>(*i);
            has_client = true;
          } else if (f.name == "call") {
            o.call = *i;
            has_call = true;
          } else {
            o.ret = *i;
            has_return = true;
          }
        } else {
          return fail("unknown field \"" + f.name + "\"");
        }
      }
      if (!has_client) return fail("missing field \"client\"");
      if (!input) return fail("missing field \"input\"");
      if (!has_call) return fail("missing field \"call\"");
      if (o.call < 0) return fail("call time is negative");
      if (has_return && o.ret != unknown_return && o.ret < o.call) return fail("return time is before call time");
      if (o.completed() != (output != nullptr))
        return fail(o.completed() ? "an operation with a return has no \"output\""
                                  : "an operation with unknown outcome has an \"output\"");
      auto in = m.parse_input(*input);
      if (!in) return fail("input not understood: " + detail::describe_value(*input));
      o.input = std::move(*in);
      if (output) {
        auto res = m.parse_output(*output);
        if (!res) return fail("output not understood: " + detail::describe_value(*output));
        o.output = std::move(*res);
      }
      out.ops.push_back(std::move(o));
    }
    if (is.bad()) out.error = parse_error{line_no + 1, "read error"};
    return out;
  }
}

}  // namespace raftkit::sim
