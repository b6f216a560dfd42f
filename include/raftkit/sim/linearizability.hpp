#pragma once
/// \file A linearizability checker for key-value register histories.
///
/// Keys are independent registers, so the history is split per key and each key is
/// checked alone (P-compositionality, Herlihy & Wing §3.3). Each key is decided in one of
/// two ways:
///
/// **From the values** (detail::value_checker), the idea behind Elle's list-append
/// checking: a read shows the last put's value followed by every append since, in order,
/// so when the values are distinct the reads themselves name the order of the writes they
/// see, and an append with unknown outcome took effect exactly where the values show it,
/// or never. What is left, ordering whole groups of operations against real time, is a
/// topological sort: near-linear however many outcomes are unknown.
///
/// **By search** (detail::key_checker), for keys whose values leave the order open (an
/// output that splits into written values in two ways, or a value several writes share):
/// Wing & Gong's depth-first search over the order of linearization points, with Lowe's
/// memoization of (set of linearized operations, model state) so that no configuration
/// is explored twice. An operation whose outcome is unknown may take effect at any time
/// after its call, or never: its return is treated as +infinity and the search may finish
/// without it.
///
/// Exact search is exponential in the worst case, so it is steered and pruned by facts
/// of this model (each is argued where it is applied, and a test compares the result
/// with brute force): a read that matches the current value is placed at once; a
/// configuration is dropped as soon as a pending read can no longer be produced from it;
/// writes that no read observes collapse into one state; an unknown-outcome write is
/// dropped once every read that could observe it is placed; and reads that no sequence
/// of writes could produce are reported before any search. On simulator-like histories
/// (thousands of ops per key, 10-100 clients) this makes the search close to linear.
/// Past a step budget the search stops and the key is *inconclusive*: no violation was
/// found, and none was ruled out. That is never reported as linearizable, nor as a
/// violation.
///
/// Operation numbers in explanations (#12) are indices into the checked span, which is
/// the 0-based line number of a history file without blank lines.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <raftkit/assert.hpp>
#include <raftkit/sim/history.hpp>

namespace raftkit::sim {

/// The outcome of a linearizability check.
enum class check_verdict : std::uint8_t {
  linearizable,      ///< Every key has a valid linearization.
  not_linearizable,  ///< Some key has none (proved from its values or by exhausting the search).
  inconclusive,      ///< The search ran out of steps on some key: no violation found, none ruled out.
  invalid_history,   ///< An operation is malformed (see validate()).
};

/// The name of a verdict, for messages.
constexpr std::string_view to_string(check_verdict v) noexcept {
  switch (v) {
    case check_verdict::linearizable: return "linearizable";
    case check_verdict::not_linearizable: return "not linearizable";
    case check_verdict::inconclusive: return "inconclusive";
    case check_verdict::invalid_history: return "invalid history";
  }
  return "?";
}

/// How check_linearizability decides each key.
enum class check_method : std::uint8_t {
  automatic,  ///< From the values where they fix the order; search only the keys they leave open.
  search,     ///< Search every key (the checker before values were used; for comparison).
};

/// Limits for check_linearizability.
struct check_options {
  /// How keys are decided.
  check_method method = check_method::automatic;
  /// Search steps allowed per key before the key is inconclusive (a step tries one
  /// operation at one configuration; about a million per second). Memory grows with the
  /// steps taken, by at most about 50 bytes per step, so the default bounds it near 250 MB.
  std::uint64_t max_steps_per_key = 5'000'000;
  /// When the values prove a key not linearizable, search steps to spend finding the
  /// longest linearizable prefix for the explanation; 0 gives the values' account alone,
  /// which names the operations in conflict. (The simulator spends up to a million: a
  /// failing seed is rare and worth the longer story.)
  std::uint64_t max_explain_steps = 0;
  /// How many operations of the longest linearizable prefix the explanation lists.
  std::size_t explain_prefix_ops = 8;
};

/// What check_linearizability found.
struct check_result {
  check_verdict verdict = check_verdict::linearizable;  ///< The outcome.
  bool linearizable = true;  ///< verdict == linearizable.
  std::string key;           ///< The key that failed or was inconclusive (empty if none).
  std::string explanation;   ///< A readable account of the failure (empty if none).
  std::uint64_t steps = 0;   ///< Search steps taken over all keys.
  std::size_t keys = 0;      ///< Keys checked (up to and including the failing one).
  std::size_t searched_keys = 0;  ///< Of those, keys whose values left the order open.
  /// For not_linearizable / inconclusive: indices (into the checked span) of the longest
  /// linearizable prefix found for `key`, in linearization order.
  std::vector<std::size_t> longest_prefix;
  /// For not_linearizable / inconclusive: the operation the explanation is about (for a
  /// search, the first to return that could not be placed after that prefix); for
  /// invalid_history, the bad operation.
  std::size_t culprit = static_cast<std::size_t>(-1);
};

namespace detail {

// Model states are compared by a 122-bit polynomial hash (two bases modulo the Mersenne
// prime 2^61-1) plus the length, so put, get and append are O(1) however long the
// appended string grows. Two distinct strings collide with probability about
// length / 2^122 per pair: negligible against any history a simulator can produce.
inline constexpr std::uint64_t hash_mod = (std::uint64_t{1} << 61) - 1;
inline constexpr std::uint64_t hash_base1 = 1'000'003;
inline constexpr std::uint64_t hash_base2 = 911'382'323;

inline std::uint64_t mul_mod(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using u128 = unsigned __int128;
  u128 p = static_cast<u128>(a) * b;
  std::uint64_t r = static_cast<std::uint64_t>(p & hash_mod) + static_cast<std::uint64_t>(p >> 61);
  return r >= hash_mod ? r - hash_mod : r;
}

inline std::uint64_t add_mod(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r = a + b;
  return r >= hash_mod ? r - hash_mod : r;
}

/// The value of one register, by hash.
struct reg_state {
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  std::uint64_t len = 0;
  friend bool operator==(const reg_state&, const reg_state&) = default;
};

/// A string's hash and the multipliers that shift a prefix past it.
struct string_hash {
  reg_state h;
  std::uint64_t pow1 = 1;  // base1^len
  std::uint64_t pow2 = 1;  // base2^len
};

inline string_hash hash_string(std::string_view s) noexcept {
  string_hash r;
  for (char c : s) {
    // +1 keeps a NUL byte from hashing like nothing.
    std::uint64_t v = static_cast<unsigned char>(c) + 1u;
    r.h.h1 = add_mod(mul_mod(r.h.h1, hash_base1), v);
    r.h.h2 = add_mod(mul_mod(r.h.h2, hash_base2), v);
    r.pow1 = mul_mod(r.pow1, hash_base1);
    r.pow2 = mul_mod(r.pow2, hash_base2);
  }
  r.h.len = s.size();
  return r;
}

inline reg_state concat(const reg_state& a, const string_hash& b) noexcept {
  return {add_mod(mul_mod(a.h1, b.pow1), b.h.h1), add_mod(mul_mod(a.h2, b.pow2), b.h.h2),
          a.len + b.h.len};
}

inline std::uint64_t mix64(std::uint64_t x) noexcept {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// The set of configurations (linearized set, state) already explored. A set is kept
/// as a 128-bit Zobrist fingerprint (an XOR of random keys, updated in O(1) per step)
/// rather than as a bitset, so an entry costs 40 bytes however many ops the key has;
/// like the state hash, a false match is about as likely as n^2 / 2^128.
class config_memo {
 public:
  config_memo() : slots_(1024, empty) {}

  /// Inserts the configuration; false if it was already present.
  bool insert(std::uint64_t set1, std::uint64_t set2, const reg_state& st) {
    if ((entries_.size() + 1) * 2 > slots_.size()) grow();
    const std::uint64_t hash = set1 ^ mix64(st.h1 ^ (st.h2 << 1) ^ st.len);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const std::uint32_t e = slots_[i];
      if (e == empty) {
        slots_[i] = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back({hash, set2, st});
        return true;
      }
      const auto& en = entries_[e];
      if (en.hash == hash && en.set2 == set2 && en.st == st) return false;
    }
  }

  /// Configurations stored.
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  static constexpr std::uint32_t empty = 0xFFFFFFFFu;
  struct entry {
    std::uint64_t hash;
    std::uint64_t set2;
    reg_state st;
  };

  void grow() {
    std::vector<std::uint32_t> next(slots_.size() * 2, empty);
    const std::size_t mask = next.size() - 1;
    for (std::uint32_t e = 0; e < entries_.size(); ++e) {
      std::size_t i = entries_[e].hash & mask;
      while (next[i] != empty) i = (i + 1) & mask;
      next[i] = e;
    }
    slots_ = std::move(next);
  }

  std::vector<std::uint32_t> slots_;
  std::vector<entry> entries_;
};

/// A value for explanations: quoted, control bytes shown as '?', long ones cut short.
inline std::string describe_value(std::string_view s) {
  constexpr std::size_t limit = 80;
  std::string r = "\"";
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') r += '\\';
    if (c < 0x20) r += '?';
    else r += static_cast<char>(c);
  }
  if (s.size() > limit) r += "...(" + std::to_string(s.size()) + " bytes)";
  return r + "\"";
}

/// One line of an explanation: "#12 client 3 get("x") -> "1" [150, 250]".
inline std::string describe(const operation& o, std::size_t index) {

  std::string r = "#" + std::to_string(index) + " client " + std::to_string(o.client) + " " +
                  std::string(to_string(o.op)) + "(" + describe_value(o.key);
  if (o.op != op_kind::get) r += ", " + describe_value(o.value);
  r += ")";
  if (o.op == op_kind::get && o.completed()) r += " -> " + describe_value(o.output);
  r += " [" + std::to_string(o.call) + ", " +
       (o.completed() ? std::to_string(o.ret) : std::string("unknown")) + "]";
  return r;
}

/// The search for one key. `idx` are indices into `all` of that key's operations.
///
/// Configurations are explored depth first. At each one the candidates are the calls
/// before the earliest pending return (an op returning there must come before anything
/// invoked later). Two reductions keep the search near-linear on real histories:
///  - a get that reads the current value is linearized at once, without trying
///    alternatives: moving a read earlier within its interval never invalidates a
///    linearization, since it changes no state;
///  - a configuration is abandoned as soon as some pending get can no longer be
///    satisfied: its output must start with the current value (appends only extend it)
///    or with the value of a put that may still come before the get returns.
class key_checker {
 public:
  key_checker(std::span<const operation> all, std::vector<std::size_t> idx)
      : all_(all), idx_(std::move(idx)) {}

  check_verdict run(std::uint64_t budget) {
    deadlines_ = classify_writes();
    const std::size_t n = idx_.size();
    hashes_.reserve(n);
    zobrist_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& o = all_[idx_[i]];
      hashes_.push_back(hash_string(o.op == op_kind::get ? o.output : o.value));
      zobrist_.push_back({mix64(2 * i), mix64(2 * i + 1)});
    }
    prefix_slot_.assign(n, no_slot);
    prefix_ring_.reserve(prefix_cache_slots);
    build_list();
    if (auto g = unreachable_get()) {
      culprit_ = idx_[*g];
      return check_verdict::not_linearizable;
    }
    config_memo memo;
    std::uint64_t set1 = 0, set2 = 0;  // fingerprint of the linearized set
    reg_state state;
    std::size_t remaining = 0;
    for (std::size_t i : idx_) remaining += all_[i].completed() ? 1 : 0;

    // A frame is one linearized op; it remembers how to undo it and where its parent
    // configuration was in its own candidate list.
    struct frame {
      std::uint32_t node;
      reg_state prev;
      std::uint32_t begin, end, pos;
    };
    std::vector<frame> stack;
    std::uint32_t begin = 0, end = 0, pos = 0;
    end = compute_candidates(state);
    for (;;) {
      if (remaining == 0) {
        record_prefix(stack);
        return check_verdict::linearizable;
      }
      if (pos < end - begin) {
        if (steps_ >= budget) return check_verdict::inconclusive;
        ++steps_;
        const std::uint32_t nd = cands_[begin + pos++];
        const std::uint32_t op = nodes_[nd].op;
        reg_state next = apply(op, state);
        if (memo.insert(set1 ^ zobrist_[op].first, set2 ^ zobrist_[op].second, next)) {
          set1 ^= zobrist_[op].first;
          set2 ^= zobrist_[op].second;
          stack.push_back({nd, state, begin, end, pos});
          state = next;
          lift(nd);
          if (all_[idx_[op]].completed()) --remaining;
          if (stack.size() > best_depth_) {
            best_depth_ = stack.size();
            record_prefix(stack);
          }
          begin = static_cast<std::uint32_t>(cands_.size());
          end = compute_candidates(state);
          pos = 0;
        }
        continue;
      }
      // Every candidate failed here: undo the latest choice.
      if (stack.empty()) return check_verdict::not_linearizable;
      frame f = stack.back();
      stack.pop_back();
      cands_.resize(begin);
      const std::uint32_t op = nodes_[f.node].op;
      set1 ^= zobrist_[op].first;
      set2 ^= zobrist_[op].second;
      state = f.prev;
      unlift(f.node);
      if (all_[idx_[op]].completed()) ++remaining;
      begin = f.begin;
      end = f.end;
      pos = f.pos;
    }
  }

  std::uint64_t steps() const noexcept { return steps_; }

  /// True when a read was found impossible before any search.
  bool unreachable_read() const noexcept { return culprit_ != static_cast<std::size_t>(-1); }

  /// Indices into the full history of the longest linearizable prefix found.
  std::vector<std::size_t> best_prefix() const {
    std::vector<std::size_t> r;
    r.reserve(best_.size());
    for (auto op : best_) r.push_back(idx_[op]);
    return r;
  }

  /// The earliest-returning completed operation not in the best prefix: it had to be
  /// linearized next (or something concurrent with it) and could not be.
  std::size_t culprit() const {
    if (culprit_ != static_cast<std::size_t>(-1)) return culprit_;
    std::vector<bool> in(idx_.size(), false);
    for (auto op : best_) in[op] = true;
    std::size_t best = static_cast<std::size_t>(-1);
    for (std::size_t i = 0; i < idx_.size(); ++i) {
      const auto& o = all_[idx_[i]];
      if (in[i] || !o.completed()) continue;
      if (best == static_cast<std::size_t>(-1) || o.ret < all_[best].ret) best = idx_[i];
    }
    return best;
  }

 private:
  static constexpr std::uint32_t head = 0;
  static constexpr std::uint32_t tail = 1;
  static constexpr std::uint32_t no_slot = 0xFFFFFFFFu;
  static constexpr std::size_t prefix_cache_slots = 256;

  struct node {
    std::int64_t time = 0;
    std::uint32_t op = 0;
    std::uint32_t match = 0;
    std::uint32_t prev = 0;
    std::uint32_t next = 0;
    bool is_call = false;
  };

  // A write is observed if some get returning after its call may have read its effect:
  // the output starts with the put's value, or contains the appended value.
  //  - A write with unknown outcome that no get observes is removed: leaving it out is
  //    equivalent. One that took effect after the last observing get returned is equally
  //    unseen, so that return is its deadline, past which it is left out.
  //  - A completed write that no get observes leaves a value no pending read can match
  //    until the next put; all such values are one state, `unseen`, so that the order
  //    of unobserved writes, which cannot matter, is not searched.
  // Returns deadlines parallel to the filtered idx_.
  std::vector<std::int64_t> classify_writes() {
    std::vector<std::size_t> gets;
    for (std::size_t i : idx_)
      if (all_[i].op == op_kind::get) gets.push_back(i);
    std::sort(gets.begin(), gets.end(),
              [this](std::size_t a, std::size_t b) { return all_[a].ret > all_[b].ret; });
    // Outputs that are no other output's prefix: a value absent from all of them is
    // absent from every output. Reads of a growing append chain collapse to a few.
    std::vector<std::string_view> maximal;
    for (std::size_t g : gets) maximal.push_back(all_[g].output);
    std::sort(maximal.begin(), maximal.end());
    maximal.erase(std::unique(maximal.begin(), maximal.end()), maximal.end());
    {
      std::size_t keep = 0;
      for (std::size_t i = 0; i < maximal.size(); ++i)
        if (i + 1 == maximal.size() || !maximal[i + 1].starts_with(maximal[i]))
          maximal[keep++] = maximal[i];
      maximal.resize(keep);
    }
    std::vector<std::size_t> kept;
    std::vector<std::int64_t> deadlines;
    unobserved_.clear();
    for (std::size_t i : idx_) {
      const auto& w = all_[i];
      if (w.op == op_kind::get) {
        kept.push_back(i);
        deadlines.push_back(w.ret);
        unobserved_.push_back(false);
        continue;
      }
      auto observes = [&w](std::string_view out) {
        return w.op == op_kind::put ? out.starts_with(w.value)
                                    : out.find(w.value) != std::string_view::npos;
      };
      std::int64_t last_observer = -1;
      if (w.op == op_kind::append && w.value.empty()) {
        last_observer = std::numeric_limits<std::int64_t>::max();  // a no-op: never unseen
      } else if (std::any_of(maximal.begin(), maximal.end(), observes)) {
        for (std::size_t g : gets) {
          if (all_[g].ret < w.call) break;
          if (observes(all_[g].output)) {
            last_observer = all_[g].ret;
            break;
          }
        }
      }
      if (!w.completed() && last_observer < 0) continue;
      kept.push_back(i);
      deadlines.push_back(w.completed() ? w.ret : last_observer);
      unobserved_.push_back(last_observer < 0);
    }
    idx_ = std::move(kept);
    expired_.assign(idx_.size(), 0);
    used_.assign(idx_.size(), 0);
    return deadlines;
  }

  /// The state after an unobserved write (see classify_writes); matches no output.
  static constexpr reg_state unseen{hash_mod, hash_mod, std::numeric_limits<std::uint64_t>::max()};

  // Before searching, a read that no sequence of the writes invoked before it returns
  // could produce (a value never written, an append seen twice, ...) is a violation on
  // its own: its output must be "" or a put's value, then distinct appended values.
  // Appends are indexed by (value length, hash) so that long outputs parse in time
  // linear in their number of values. Returns the index (into idx_) of such a read.
  std::optional<std::uint32_t> unreachable_get() {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> lengths;  // (length, base1^length)
    std::multimap<std::pair<std::uint64_t, std::uint64_t>, std::uint32_t> appends;
    for (std::uint32_t i = 0; i < idx_.size(); ++i) {
      if (all_[idx_[i]].op != op_kind::append || hashes_[i].h.len == 0) continue;
      appends.emplace(std::pair{hashes_[i].h.len, hashes_[i].h.h1}, i);
      lengths.emplace_back(hashes_[i].h.len, hashes_[i].pow1);
    }
    std::sort(lengths.begin(), lengths.end());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
    std::vector<reg_state> tried;
    for (std::uint32_t g = 0; g < idx_.size(); ++g) {
      const auto& o = all_[idx_[g]];
      if (o.op != op_kind::get) continue;
      auto spelled_from = [&](std::uint64_t at) {
        ++parse_epoch_;
        const auto& pre = prefixes(g);
        while (at < o.output.size()) {
          std::uint32_t found = no_slot;
          for (const auto& [len, pw] : lengths) {
            if (at + len > o.output.size()) break;
            // hash(output[at, at+len)) = prefix(at+len) - prefix(at) * base^len
            const std::uint64_t h =
                add_mod(pre[at + len].first, hash_mod - mul_mod(pre[at].first, pw));
            auto [b, e] = appends.equal_range({len, h});
            for (; b != e; ++b) {
              const std::uint32_t cand = b->second;
              if (all_[idx_[cand]].call > o.ret || used_[cand] == parse_epoch_) continue;
              if (!output_has_at(g, at, cand)) continue;
              if (found != no_slot) return true;  // ambiguous: assume it can be spelled
              found = cand;
            }
          }
          if (found == no_slot) return false;
          used_[found] = parse_epoch_;
          at += hashes_[found].h.len;
        }
        return true;
      };
      if (spelled_from(0)) continue;
      bool ok = false;
      tried.clear();
      for (std::uint32_t p = 0; p < idx_.size() && !ok; ++p) {
        const auto& w = all_[idx_[p]];
        if (w.op != op_kind::put || w.call > o.ret) continue;
        const reg_state& v = hashes_[p].h;
        if (std::find(tried.begin(), tried.end(), v) != tried.end()) continue;
        tried.push_back(v);
        ok = is_prefix_of_output(v, g) && spelled_from(v.len);
      }
      if (!ok) return g;
    }
    return std::nullopt;
  }

  reg_state apply(std::uint32_t op, const reg_state& s) const noexcept {
    if (unobserved_[op]) return unseen;
    switch (all_[idx_[op]].op) {
      case op_kind::put: return hashes_[op].h;
      case op_kind::append: return s == unseen ? unseen : concat(s, hashes_[op]);
      case op_kind::get: break;
    }
    return s;
  }

  // Hashes of every prefix of a get's output, so "is v a prefix of it" is O(1). Kept in
  // a small ring rather than for every get: outputs of long append chains are large.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& prefixes(std::uint32_t op) {
    if (prefix_slot_[op] != no_slot) return prefix_ring_[prefix_slot_[op]].second;
    std::uint32_t slot = 0;
    if (prefix_ring_.size() < prefix_cache_slots) {
      slot = static_cast<std::uint32_t>(prefix_ring_.size());
      prefix_ring_.emplace_back(op, std::vector<std::pair<std::uint64_t, std::uint64_t>>{});
    } else {
      slot = static_cast<std::uint32_t>(prefix_next_);
      prefix_next_ = (prefix_next_ + 1) % prefix_cache_slots;
      prefix_slot_[prefix_ring_[slot].first] = no_slot;
      prefix_ring_[slot].first = op;
    }
    prefix_slot_[op] = slot;
    auto& v = prefix_ring_[slot].second;
    const std::string& out = all_[idx_[op]].output;
    v.resize(out.size() + 1);
    v[0] = {0, 0};
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::uint64_t c = static_cast<unsigned char>(out[i]) + 1u;
      v[i + 1] = {add_mod(mul_mod(v[i].first, hash_base1), c),
                  add_mod(mul_mod(v[i].second, hash_base2), c)};
    }
    return v;
  }

  bool is_prefix_of_output(const reg_state& s, std::uint32_t get_op) {
    if (s.len > hashes_[get_op].h.len) return false;
    const auto& p = prefixes(get_op)[s.len];
    return p.first == s.h1 && p.second == s.h2;
  }

  // Whether get_op's output holds append_op's value at byte `at`.
  bool output_has_at(std::uint32_t get_op, std::uint64_t at, std::uint32_t append_op) {
    const string_hash& v = hashes_[append_op];
    if (at + v.h.len > hashes_[get_op].h.len) return false;
    const auto& p = prefixes(get_op);
    const auto& lo = p[at];
    const auto& hi = p[at + v.h.len];
    return add_mod(mul_mod(lo.first, v.pow1), v.h.h1) == hi.first &&
           add_mod(mul_mod(lo.second, v.pow2), v.h.h2) == hi.second;
  }

  // Whether the rest of get_op's output from byte `at` can be spelled by distinct
  // pending appends that may precede it. Parsed greedily; where the parse is ambiguous
  // (two unused appends fit) or long, the answer is "yes", so a false is always proof.
  bool suffix_spelled_by_appends(std::uint32_t get_op, std::uint64_t at,
                                 std::int64_t deadline) {
    constexpr int max_tokens = 8;
    const std::uint64_t len = hashes_[get_op].h.len;
    ++parse_epoch_;
    for (int tokens = 0; at < len; ++tokens) {
      if (tokens == max_tokens) return true;
      std::uint32_t found = no_slot;
      for (std::uint32_t a : pending_appends_) {
        const std::uint32_t op = nodes_[a].op;
        if (nodes_[a].time > deadline || used_[op] == parse_epoch_) continue;
        if (hashes_[op].h.len == 0 || !output_has_at(get_op, at, op)) continue;
        if (found != no_slot) return true;  // ambiguous
        found = op;
      }
      if (found == no_slot) return false;
      used_[found] = parse_epoch_;
      at += hashes_[found].h.len;
    }
    return true;
  }

  // A necessary condition for a pending get to be satisfiable later: its output is the
  // current value, or the value of a put that may still precede the get, followed by
  // values of distinct pending appends. Cheap, and it cuts wrong orders at once.
  bool may_reach(const reg_state& state, std::uint32_t get_node) {
    const std::uint32_t gop = nodes_[get_node].op;
    const std::int64_t deadline = all_[idx_[gop]].ret;
    if (is_prefix_of_output(state, gop) && suffix_spelled_by_appends(gop, state.len, deadline))
      return true;
    for (std::uint32_t p : pending_puts_) {
      if (nodes_[p].time > deadline) continue;
      const reg_state& v = hashes_[nodes_[p].op].h;
      if (is_prefix_of_output(v, gop) && suffix_spelled_by_appends(gop, v.len, deadline))
        return true;
    }
    return false;
  }

  // Whether applying write `op` to `state` moves it towards get_op's output.
  bool advances(const reg_state& state, std::uint32_t op, std::uint32_t get_op) {
    return is_prefix_of_output(apply(op, state), get_op);
  }

  // Appends this configuration's candidates to cands_ and returns the new end; no
  // candidates when the configuration is dead.
  std::uint32_t compute_candidates(const reg_state& state) {
    frontier_gets_.clear();
    frontier_writes_.clear();
    unknown_writes_.clear();
    pending_puts_.clear();
    pending_appends_.clear();
    auto note_write = [this](std::uint32_t nd) {
      (all_[idx_[nodes_[nd].op]].op == op_kind::put ? pending_puts_ : pending_appends_)
          .push_back(nd);
    };
    std::uint32_t nd = nodes_[head].next;
    std::int64_t horizon = -1;
    ++scan_epoch_;
    for (; nd != tail; nd = nodes_[nd].next) {
      const std::uint32_t op = nodes_[nd].op;
      const auto& o = all_[idx_[op]];
      if (!nodes_[nd].is_call) {
        if (o.completed()) break;
        expired_[op] = scan_epoch_;  // past its deadline: leaving it out is equivalent
        continue;
      }
      if (o.op == op_kind::get) {
        frontier_gets_.push_back(nd);
      } else {
        (o.completed() ? frontier_writes_ : unknown_writes_).push_back(nd);
        note_write(nd);
      }
      if (o.completed()) horizon = std::max(horizon, o.ret);
    }
    // Look ahead to the last return of a frontier op: gets that end by then constrain
    // the current value too, and catching a write placed too early here, rather than
    // after many more choices, is what keeps the search from going exponential.
    // Every write that may precede such a get is invoked before the horizon.
    const std::size_t n_frontier_gets = frontier_gets_.size();
    for (; nd != tail && nodes_[nd].time <= horizon; nd = nodes_[nd].next) {
      if (!nodes_[nd].is_call) continue;
      const auto& o = all_[idx_[nodes_[nd].op]];
      if (o.op != op_kind::get) note_write(nd);
      else if (o.ret <= horizon) frontier_gets_.push_back(nd);
    }

    const auto end = static_cast<std::uint32_t>(cands_.size());
    for (std::uint32_t g : frontier_gets_)
      if (!may_reach(state, g)) return end;
    // The most urgent read that could be placed now but that the current value does not
    // satisfy guides the order below. Reads invoked after the earliest pending return
    // do not: that return must be placed first, so writing for them would be premature.
    frontier_gets_.resize(n_frontier_gets);
    std::uint32_t target = no_slot;
    for (std::uint32_t g : frontier_gets_) {
      const std::uint32_t gop = nodes_[g].op;
      if (state == hashes_[gop].h) continue;
      if (target == no_slot || all_[idx_[gop]].ret < all_[idx_[target]].ret) target = gop;
    }
    for (std::uint32_t g : frontier_gets_) {
      if (state == hashes_[nodes_[g].op].h) {
        cands_.push_back(g);
        return end + 1;
      }
    }
    // Likewise, once no read can see the value, an unobserved write changes nothing
    // that matters, and placing it now rather than later never hurts.
    if (state == unseen) {
      for (std::uint32_t w : frontier_writes_) {
        if (unobserved_[nodes_[w].op]) {
          cands_.push_back(w);
          return end + 1;
        }
      }
    }
    // Order only affects speed: writes that bring the value closer to the most urgent
    // read first, then the rest; known outcomes before unknown ones (which may be left
    // out altogether); earliest return first within each group, since the op that
    // returns first has to be placed first.
    ranked_.clear();
    auto rank = [&](std::uint32_t w, int base) {
      const std::uint32_t op = nodes_[w].op;
      int group = base + (target != no_slot && advances(state, op, target) ? 0 : 2);
      std::int64_t due = all_[idx_[op]].completed() ? all_[idx_[op]].ret : deadlines_[op];
      ranked_.push_back({group, due, w});
    };
    for (std::uint32_t w : frontier_writes_) rank(w, 0);
    for (std::uint32_t w : unknown_writes_)
      if (expired_[nodes_[w].op] != scan_epoch_) rank(w, 1);
    std::sort(ranked_.begin(), ranked_.end());
    for (const auto& r : ranked_) cands_.push_back(std::get<2>(r));
    return static_cast<std::uint32_t>(cands_.size());
  }

  // Events sorted by time; at equal times calls come first, so operations that touch
  // at an instant count as concurrent (the permissive reading of a shared timestamp).
  void build_list() {
    const std::size_t n = idx_.size();
    struct event {
      std::int64_t time;
      int rank;  // 0 call, 1 return, 2 deadline of an op with unknown outcome
      std::uint32_t op;
      bool is_return() const noexcept { return rank != 0; }
    };
    std::vector<event> ev;
    ev.reserve(2 * n);
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto& o = all_[idx_[i]];
      ev.push_back({o.call, 0, i});
      if (o.completed()) ev.push_back({o.ret, 1, i});
      else ev.push_back({deadlines_[i], 2, i});
    }
    // A deadline sorts after returns at the same instant, so passing it means every
    // get that could have observed the op is already linearized.
    std::sort(ev.begin(), ev.end(), [](const event& a, const event& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.rank != b.rank) return a.rank < b.rank;
      return a.op < b.op;
    });
    nodes_.assign(2 * n + 2, node{});
    std::vector<std::uint32_t> call_node(n), ret_node(n);
    std::uint32_t prev = head;
    for (std::size_t k = 0; k < ev.size(); ++k) {
      auto id = static_cast<std::uint32_t>(k + 2);
      nodes_[id].time = ev[k].time;
      nodes_[id].op = ev[k].op;
      nodes_[id].is_call = !ev[k].is_return();
      (ev[k].is_return() ? ret_node : call_node)[ev[k].op] = id;
      nodes_[id].prev = prev;
      nodes_[prev].next = id;
      prev = id;
    }
    nodes_[prev].next = tail;
    nodes_[tail].prev = prev;
    nodes_[tail].next = tail;
    for (std::uint32_t i = 0; i < n; ++i) nodes_[call_node[i]].match = ret_node[i];
  }

  void unlink(std::uint32_t e) noexcept {
    nodes_[nodes_[e].prev].next = nodes_[e].next;
    nodes_[nodes_[e].next].prev = nodes_[e].prev;
  }
  void relink(std::uint32_t e) noexcept {
    nodes_[nodes_[e].prev].next = e;
    nodes_[nodes_[e].next].prev = e;
  }
  // Removing a linearized op's call and return keeps the list to what is still open.
  void lift(std::uint32_t call) noexcept {
    unlink(call);
    unlink(nodes_[call].match);
  }
  void unlift(std::uint32_t call) noexcept {
    relink(nodes_[call].match);
    relink(call);
  }

  template <class Stack>
  void record_prefix(const Stack& stack) {
    best_.clear();
    for (const auto& f : stack) best_.push_back(nodes_[f.node].op);
  }

  std::span<const operation> all_;
  std::vector<std::size_t> idx_;
  std::vector<string_hash> hashes_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> zobrist_;
  std::vector<node> nodes_;
  std::vector<std::uint32_t> cands_;
  std::vector<std::uint32_t> frontier_gets_, frontier_writes_, unknown_writes_, pending_puts_,
      pending_appends_;
  std::vector<std::uint32_t> prefix_slot_;
  std::vector<std::tuple<int, std::int64_t, std::uint32_t>> ranked_;
  std::vector<std::int64_t> deadlines_;
  std::vector<bool> unobserved_;
  std::vector<std::uint64_t> expired_;  // == scan_epoch_ when past deadline in this scan
  std::uint64_t scan_epoch_ = 0;
  std::vector<std::uint64_t> used_;  // == parse_epoch_ when consumed by the current parse
  std::uint64_t parse_epoch_ = 0;
  std::vector<std::pair<std::uint32_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>>>
      prefix_ring_;
  std::size_t prefix_next_ = 0;
  std::uint64_t steps_ = 0;
  std::size_t culprit_ = static_cast<std::size_t>(-1);
  std::size_t best_depth_ = 0;
  std::vector<std::uint32_t> best_;
};

/// What the values of one key's operations decide on their own (see value_checker).
enum class value_outcome : std::uint8_t {
  linearizable,      ///< A linearization exists; the values fix it up to harmless choices.
  not_linearizable,  ///< None exists; reason() says why.
  open,              ///< The values do not fix the order (see reason()): search decides.
};

/// Reads the order of writes off the values of one key's reads.
///
/// A read's output is the value of the last put before it (or "", the initial value)
/// followed by the values of the appends since, in order. When every output splits into
/// such a base and append values in exactly one way, and each value a split uses belongs
/// to exactly one write, each read names the put it follows and the exact appends before
/// it. Then a linearization is a sequence of groups:
///  - one per base some read sees: the put (none for the initial value), then its reads
///    and appends in the one order the values allow (a read that sees i appends sits
///    between the i-th and the next). No other write may come inside a group: a put would
///    change what the later reads see, an append would show in them;
///  - one per completed write that no read sees, alone, between the other groups.
/// A write with unknown outcome that no read sees is left out: leaving it out changes no
/// read. The initial value's group comes first. So the history is linearizable exactly
/// when every output splits, no append shows twice or after two puts, the reads after one
/// put see prefixes of one sequence, no operation of a group returns before an earlier one
/// of that group is invoked, and the groups can be ordered so that none has an operation
/// that returned before an operation of an earlier group was invoked. The last is a
/// topological sort (Kahn's algorithm) of "Y precedes X when some op of Y returned before
/// some op of X was invoked", in O(groups log groups).
///
/// Outputs are split by dynamic programming over positions with rolling hashes (checked
/// byte for byte on a match); a read whose output is a prefix, at a value boundary, of
/// another's shares its split, so a growing append sequence is split once. An output
/// that splits in two ways, or that starts with or uses a value several writes share,
/// leaves the key open (the search decides it); an append of "" is a no-op and always
/// fits, so it is ignored here.
class value_checker {
 public:
  /// `idx`: indices into `all` of one key's operations (gets only with known outcome).
  value_checker(std::span<const operation> all, std::span<const std::size_t> idx)
      : all_(all), idx_(idx) {}

  /// Decides the key, or says it is open.
  value_outcome run() {
    index_values();
    if (!shared_base() && split_outputs() && build_groups() && check_groups()) order_groups();
    return outcome_;
  }

  /// Why the key is not linearizable, or why the values leave it open (empty if
  /// linearizable).
  const std::string& reason() const noexcept { return reason_; }

  /// For not_linearizable: the index (into `all`) of the operation the reason is about.
  std::size_t culprit() const noexcept { return culprit_; }

  /// Indices into `all` in linearization order: for linearizable, a linearization (every
  /// completed op, and the unknown ones the values show); for not_linearizable, the
  /// groups ordered before the conflict, a linearizable prefix.
  std::vector<std::size_t> order() const {
    std::vector<std::size_t> r;
    for (std::uint32_t j : placed_) r.push_back(idx_[j]);
    return r;
  }

 private:
  static constexpr std::uint32_t none = 0xFFFFFFFFu;
  static constexpr std::uint32_t initial = 0xFFFFFFFEu;  // the base of reads with no put
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  static constexpr std::int64_t dawn = std::numeric_limits<std::int64_t>::min();

  struct value_info {
    std::string_view text;
    std::uint64_t hash = 0;
    std::uint32_t puts = 0, appends = 0;      // how many writes have this value
    std::uint32_t put = none, append = none;  // the first of each
  };
  struct length {
    std::uint64_t len = 0;
    std::uint64_t pow = 1;  // base1^len
    friend bool operator<(const length& a, const length& b) noexcept { return a.len < b.len; }
  };
  // One split of an output: its base and the appends after it.
  struct split {
    std::uint32_t base = initial;         // local index of the put, or `initial`
    std::vector<std::uint32_t> tokens;    // local indices of the appends, in order
    std::vector<std::uint64_t> ends;      // ends[i]: bytes taken by the base and i tokens
  };
  struct parsed {
    std::uint32_t split = none;  // into splits_
    std::uint32_t k = 0;         // how many of its tokens this output has
  };
  // A group of operations that must run together (see the class comment).
  struct group {
    std::uint32_t base = none;  // put (local), `initial`, or none for a lone write
    std::uint32_t lone = none;  // the write, for a lone write
    std::uint32_t longest = 0;  // for a base: the distinct output with most tokens
    std::int64_t last_call = dawn;   // latest call among its ops...
    std::uint32_t last_call_op = none;
    std::int64_t first_ret = never;  // ...and earliest return
    std::uint32_t first_ret_op = none;
    std::uint32_t chain_begin = 0, chain_end = 0;  // its ops in order, in chain_
  };

  const operation& op(std::uint32_t j) const noexcept { return all_[idx_[j]]; }
  std::size_t global(std::uint32_t j) const noexcept { return idx_[j]; }

  // ---- values

  void index_values() {
    std::size_t writes = 0;
    for (std::size_t i : idx_) writes += all_[i].op == op_kind::get ? 0 : 1;
    std::size_t slots = 16;
    while (slots < 2 * writes + 2) slots *= 2;
    table_.assign(slots, none);
    value_of_.assign(idx_.size(), none);
    for (std::uint32_t j = 0; j < idx_.size(); ++j) {
      const operation& o = op(j);
      if (o.op == op_kind::get) {
        gets_.push_back(j);
        continue;
      }
      if (o.op == op_kind::append && o.value.empty()) continue;  // a no-op: always fits
      const string_hash h = hash_string(o.value);
      std::uint32_t v = find(h.h.h1, o.value);
      if (v == none) {
        v = static_cast<std::uint32_t>(values_.size());
        values_.push_back({o.value, h.h.h1});
        insert(v);
      }
      if (!o.value.empty())
        (o.op == op_kind::put ? put_lengths_ : append_lengths_).push_back({h.h.len, h.pow1});
      value_info& vi = values_[v];
      if (o.op == op_kind::put) {
        if (vi.puts++ == 0) vi.put = j;
      } else if (vi.appends++ == 0) {
        vi.append = j;
      }
      value_of_[j] = v;
    }
    for (auto* lens : {&put_lengths_, &append_lengths_}) {
      std::sort(lens->begin(), lens->end());
      lens->erase(std::unique(lens->begin(), lens->end(),
                              [](const length& a, const length& b) { return a.len == b.len; }),
                  lens->end());
    }
  }

  // Before the costlier splitting: a read that starts with a value several puts wrote
  // may follow any of them, so the key is left open. (That value may not be the read's
  // base after all; leaving the key to the search is then merely slower, never wrong.)
  bool shared_base() {
    const bool any = std::any_of(values_.begin(), values_.end(), [](const value_info& v) {
      return v.puts > 1 && !v.text.empty();
    });
    if (!any) return false;
    for (std::uint32_t g : gets_) {
      const std::string& s = op(g).output;
      std::uint64_t h = 0;
      std::size_t i = 0;
      for (const length& len : put_lengths_) {
        if (len.len > s.size()) break;
        for (; i < len.len; ++i) h = add_mod(mul_mod(h, hash_base1), static_cast<unsigned char>(s[i]) + 1u);
        const std::uint32_t v = find(h, std::string_view(s).substr(0, len.len));
        if (v != none && values_[v].puts > 1) {
          leave_open(std::to_string(values_[v].puts) + " puts write " +
                     describe_value(values_[v].text) + ", which " + describe(op(g), global(g)) +
                     " may read");
          return true;
        }
      }
    }
    return false;
  }

  std::size_t slot_of(std::uint64_t hash, std::size_t len) const noexcept {
    return static_cast<std::size_t>(mix64(hash ^ (static_cast<std::uint64_t>(len) << 56))) &
           (table_.size() - 1);
  }

  void insert(std::uint32_t v) {
    std::size_t i = slot_of(values_[v].hash, values_[v].text.size());
    while (table_[i] != none) i = (i + 1) & (table_.size() - 1);
    table_[i] = v;
  }

  // The value with this text (whose hash is `hash`), or none.
  std::uint32_t find(std::uint64_t hash, std::string_view text) const noexcept {
    for (std::size_t i = slot_of(hash, text.size());; i = (i + 1) & (table_.size() - 1)) {
      const std::uint32_t v = table_[i];
      if (v == none) return none;
      if (values_[v].hash == hash && values_[v].text == text) return v;
    }
  }

  // The value spelled by s[at, at + len.len), given prefix hashes of s in pre_.
  std::uint32_t find_at(std::string_view s, std::size_t at, const length& len) const noexcept {
    const std::uint64_t h =
        add_mod(pre_[at + len.len], hash_mod - mul_mod(pre_[at], len.pow));
    return find(h, s.substr(at, len.len));
  }

  // ---- splitting outputs

  // Splits every distinct output, longest-first within each family of prefixes so a
  // prefix at a value boundary reuses its extension's split. False when done (a read
  // that cannot be produced, or an open key).
  bool split_outputs() {
    std::sort(gets_.begin(), gets_.end(), [this](std::uint32_t a, std::uint32_t b) {
      return op(a).output < op(b).output;
    });
    output_of_.assign(idx_.size(), none);
    for (std::uint32_t g : gets_) {
      if (outputs_.empty() || op(outputs_.back()).output != op(g).output) outputs_.push_back(g);
      output_of_[g] = static_cast<std::uint32_t>(outputs_.size() - 1);
    }
    parsed_.assign(outputs_.size(), parsed{});
    for (std::size_t d = outputs_.size(); d-- > 0;) {
      const std::string& s = op(outputs_[d]).output;
      if (d + 1 < outputs_.size()) {
        const std::string& next = op(outputs_[d + 1]).output;
        // In sorted order a string that is a prefix of another is a prefix of the next.
        if (next.starts_with(s)) {
          const parsed& p = parsed_[d + 1];
          const auto& ends = splits_[p.split].ends;
          const auto end = ends.begin() + p.k + 1;
          const auto at = std::lower_bound(ends.begin(), end, s.size());
          if (at != end && *at == s.size()) {
            parsed_[d] = {p.split, static_cast<std::uint32_t>(at - ends.begin())};
            continue;
          }
        }
      }
      if (!split_output(outputs_[d], d)) return false;
    }
    return true;
  }

  // Splits one output from scratch into splits_.back(); false when done (see above).
  bool split_output(std::uint32_t g, std::size_t d) {
    const std::string& s = op(g).output;
    const std::size_t n = s.size();
    pre_.resize(n + 1);
    pre_[0] = 0;
    for (std::size_t i = 0; i < n; ++i)
      pre_[i + 1] = add_mod(mul_mod(pre_[i], hash_base1), static_cast<unsigned char>(s[i]) + 1u);
    // ways_[i]: splits of s[i, n) into append values; 2 means two or more.
    ways_.assign(n + 1, 0);
    ways_[n] = 1;
    for (std::size_t i = n; i-- > 0;) {
      unsigned w = 0;
      for (const length& len : append_lengths_) {
        if (i + len.len > n) break;
        if (ways_[i + len.len] == 0) continue;
        const std::uint32_t v = find_at(s, i, len);
        if (v != none && values_[v].appends > 0) w += ways_[i + len.len];
        if (w >= 2) break;
      }
      ways_[i] = static_cast<std::uint8_t>(std::min(w, 2u));
    }
    // The base: the initial value (""), or a put's value.
    unsigned total = ways_[0];
    std::uint32_t base_value = none;
    std::size_t base_len = 0;
    for (const length& len : put_lengths_) {
      if (len.len > n) break;
      if (ways_[len.len] == 0) continue;
      const std::uint32_t v = find_at(s, 0, len);
      if (v == none || values_[v].puts == 0) continue;
      total += ways_[len.len];
      base_value = v;
      base_len = len.len;
    }
    if (total == 0) {
      return decide_violation(g,
          "This read's output is not \"\" or a put's value followed by values of distinct "
          "appends:\n  " + describe(op(g), global(g)) + "\n");
    }
    if (total > 1) {
      return leave_open("the output of " + describe(op(g), global(g)) +
                        " splits into written values in more than one way");
    }
    split sp;
    if (base_value == none) {
      const std::uint32_t e = find(0, std::string_view());
      if (e != none && values_[e].puts > 0)
        return leave_open("both the initial value and a put of \"\" may precede " +
                          describe(op(g), global(g)));
      sp.base = initial;
    } else {
      RAFTKIT_ASSERT(values_[base_value].puts == 1, "value_checker: a shared base was not left open");
      sp.base = values_[base_value].put;
    }
    sp.ends.push_back(base_len);
    // Along the one split every position has one way on, so the first fit is it.
    for (std::size_t at = base_len; at < n;) {
      std::uint32_t v = none;
      for (const length& len : append_lengths_) {
        if (at + len.len > n) break;
        if (ways_[at + len.len] == 0) continue;
        v = find_at(s, at, len);
        if (v != none && values_[v].appends > 0) break;
        v = none;
      }
      RAFTKIT_ASSERT(v != none, "value_checker: a split output lost its split");
      if (values_[v].appends > 1)
        return leave_open(std::to_string(values_[v].appends) + " appends write " +
                          describe_value(values_[v].text) + ", which " +
                          describe(op(g), global(g)) + " shows");
      sp.tokens.push_back(values_[v].append);
      at += values_[v].text.size();
      sp.ends.push_back(at);
    }
    parsed_[d] = {static_cast<std::uint32_t>(splits_.size()),
                  static_cast<std::uint32_t>(sp.tokens.size())};
    splits_.push_back(std::move(sp));
    return true;
  }

  // ---- groups

  std::uint32_t& group_of_base(std::uint32_t base) {
    return base == initial ? initial_group_ : group_of_put_[base];
  }

  // One group per base some read sees; checks that its reads see prefixes of one
  // sequence of appends and that no append shows twice or after two bases.
  bool build_groups() {
    group_of_put_.assign(idx_.size(), none);
    for (std::uint32_t d = 0; d < outputs_.size(); ++d) {
      const parsed& p = parsed_[d];
      std::uint32_t& gr = group_of_base(splits_[p.split].base);
      if (gr == none) {
        gr = static_cast<std::uint32_t>(groups_.size());
        groups_.push_back({});
        groups_.back().base = splits_[p.split].base;
        groups_.back().longest = d;
      } else if (p.k > parsed_[groups_[gr].longest].k) {
        groups_[gr].longest = d;
      }
    }
    for (std::uint32_t d = 0; d < outputs_.size(); ++d) {
      const parsed& p = parsed_[d];
      const std::uint32_t gr = group_of_base(splits_[p.split].base);
      const parsed& l = parsed_[groups_[gr].longest];
      if (p.split == l.split) continue;
      const auto& a = splits_[p.split].tokens;
      const auto& b = splits_[l.split].tokens;
      if (!std::equal(a.begin(), a.begin() + p.k, b.begin())) {
        return decide_violation(outputs_[d],
            "Two reads both follow " + base_name(splits_[p.split].base) +
            " but see different appends after it, so neither sees a prefix of the other:\n  " +
            describe(op(outputs_[d]), global(outputs_[d])) + "\n  " +
            describe(op(outputs_[groups_[gr].longest]), global(outputs_[groups_[gr].longest])) +
            "\n");
      }
    }
    position_.assign(idx_.size(), none);
    for (std::uint32_t gr = 0; gr < groups_.size(); ++gr) {
      const parsed& l = parsed_[groups_[gr].longest];
      const auto& tokens = splits_[l.split].tokens;
      for (std::uint32_t i = 0; i < l.k; ++i) {
        const std::uint32_t a = tokens[i];
        if (position_[a] == none) {
          position_[a] = gr;
          continue;
        }
        const std::uint32_t reader = outputs_[groups_[gr].longest];
        if (position_[a] == gr)
          return decide_violation(reader,
              "This read shows one append twice, though an operation takes effect at most "
              "once:\n  " + describe(op(reader), global(reader)) + "\n  " +
              describe(op(a), global(a)) + "\n");
        const std::uint32_t other = outputs_[groups_[position_[a]].longest];
        return decide_violation(reader,
            "One append shows after two different bases (" + base_name(groups_[gr].base) +
            " and " + base_name(groups_[position_[a]].base) +
            "), though it takes effect at most once:\n  " + describe(op(a), global(a)) +
            "\n  " + describe(op(reader), global(reader)) + "\n  " +
            describe(op(other), global(other)) + "\n");
      }
    }
    return true;
  }

  // Lays out each base's group in the order the values give and checks it against real
  // time: no operation may return before one placed earlier in its group is invoked.
  bool check_groups() {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> reads;  // (group << 32 | k, get)
    reads.reserve(gets_.size());
    for (std::uint32_t g : gets_) {
      const parsed& p = parsed_[output_of_[g]];
      const std::uint64_t gr = group_of_base(splits_[p.split].base);
      reads.emplace_back(gr << 32 | p.k, g);
    }
    std::sort(reads.begin(), reads.end());
    std::size_t r = 0;
    for (std::uint32_t gr = 0; gr < groups_.size(); ++gr) {
      group& G = groups_[gr];
      G.chain_begin = static_cast<std::uint32_t>(chain_.size());
      std::int64_t before = dawn;  // latest call in earlier slots
      std::uint32_t before_op = none;
      std::int64_t slot_call = dawn;
      std::uint32_t slot_op = none;
      bool ok = true;
      auto place = [&](std::uint32_t j) {
        const operation& o = op(j);
        if (ok && o.completed() && o.ret < before) {
          ok = false;
          // The read that shows the order (the group's longest), unless it is one of the two.
          const std::uint32_t reader = outputs_[G.longest];
          std::string shown;
          if (reader != j && reader != before_op)
            shown = ", as this read shows:\n  " + describe(op(reader), global(reader));
          else
            shown = ":";
          decide_violation(j,
              "The values order the operations after " + base_name(G.base) + shown +
              "\nThat places " + name(before_op) + " before " + name(j) + ", but " + name(j) +
              " returned before " + name(before_op) + " was invoked:\n  " +
              describe(op(before_op), global(before_op)) + "\n  " + describe(o, global(j)) +
              "\n");
        }
        if (o.call > slot_call) {
          slot_call = o.call;
          slot_op = j;
        }
        note(G, j);
        chain_.push_back(j);
      };
      auto close_slot = [&] {
        if (slot_call > before) {
          before = slot_call;
          before_op = slot_op;
        }
        slot_call = dawn;
      };
      if (G.base != initial) {
        place(G.base);
        close_slot();
      }
      const parsed& l = parsed_[G.longest];
      for (std::uint32_t i = 0;; ++i) {
        for (; r < reads.size() && reads[r].first == (std::uint64_t{gr} << 32 | i); ++r)
          place(reads[r].second);
        close_slot();
        if (i == l.k) break;
        place(splits_[l.split].tokens[i]);
        close_slot();
      }
      G.chain_end = static_cast<std::uint32_t>(chain_.size());
      if (!ok) return false;
    }
    // Completed writes no read sees stand alone; unseen ones of unknown outcome are
    // left out.
    for (std::uint32_t j = 0; j < idx_.size(); ++j) {
      const operation& o = op(j);
      if (o.op == op_kind::get || !o.completed() || value_of_[j] == none) continue;
      const bool seen = o.op == op_kind::put ? group_of_put_[j] != none : position_[j] != none;
      if (seen) continue;
      group G;
      G.lone = j;
      G.chain_begin = static_cast<std::uint32_t>(chain_.size());
      chain_.push_back(j);
      G.chain_end = G.chain_begin + 1;
      note(G, j);
      groups_.push_back(G);
    }
    return true;
  }

  static void note(group& G, std::uint32_t j, const operation& o) {
    if (o.call > G.last_call) {
      G.last_call = o.call;
      G.last_call_op = j;
    }
    if (o.completed() && o.ret < G.first_ret) {
      G.first_ret = o.ret;
      G.first_ret_op = j;
    }
  }
  void note(group& G, std::uint32_t j) const { note(G, j, op(j)); }

  // Orders the groups (the initial value's first) so that each is invoked entirely
  // no later than every later group's earliest return: Kahn's algorithm, where a group
  // may come next when its latest call is no later than every other remaining group's
  // earliest return.
  void order_groups() {
    const std::size_t n = groups_.size();
    std::vector<bool> done(n, false);
    auto place = [&](std::uint32_t gr) {
      done[gr] = true;
      for (std::uint32_t c = groups_[gr].chain_begin; c < groups_[gr].chain_end; ++c)
        placed_.push_back(chain_[c]);
    };
    std::vector<std::uint32_t> by_ret(n), by_call(n);
    for (std::uint32_t i = 0; i < n; ++i) by_ret[i] = by_call[i] = i;
    std::sort(by_ret.begin(), by_ret.end(), [this](std::uint32_t a, std::uint32_t b) {
      return std::pair(groups_[a].first_ret, a) < std::pair(groups_[b].first_ret, b);
    });
    std::sort(by_call.begin(), by_call.end(), [this](std::uint32_t a, std::uint32_t b) {
      return std::pair(groups_[a].last_call, a) < std::pair(groups_[b].last_call, b);
    });
    // Cursors over the remaining groups, each only moving forward.
    std::size_t r1 = 0, c1 = 0;
    auto skip = [&](const std::vector<std::uint32_t>& v, std::size_t i) {
      while (i < v.size() && done[v[i]]) ++i;
      return i;
    };
    // The earliest return among remaining groups other than `gr`.
    auto earliest_other = [&](std::uint32_t gr) {
      r1 = skip(by_ret, r1);
      if (r1 < n && by_ret[r1] != gr) return std::pair(groups_[by_ret[r1]].first_ret, by_ret[r1]);
      const std::size_t r2 = skip(by_ret, r1 + 1);
      if (r2 < n) return std::pair(groups_[by_ret[r2]].first_ret, by_ret[r2]);
      return std::pair(never, none);
    };
    if (initial_group_ != none) {
      const auto [ret, other] = earliest_other(initial_group_);
      if (groups_[initial_group_].last_call > ret)
        return stuck(initial_group_, other, true);
      place(initial_group_);
    }
    for (std::size_t left = n - (initial_group_ != none ? 1 : 0); left > 0; --left) {
      r1 = skip(by_ret, r1);
      c1 = skip(by_call, c1);
      const std::uint32_t first = by_ret[r1];  // the remaining group that returns first
      // Any other group can come next if invoked entirely by `first`'s return; the one
      // invoked earliest is the best such. `first` itself needs the next return.
      std::size_t c = c1;
      if (by_call[c] == first) c = skip(by_call, c + 1);
      if (c < n && groups_[by_call[c]].last_call <= groups_[first].first_ret) {
        place(by_call[c]);
        continue;
      }
      if (groups_[first].last_call <= earliest_other(first).first) {
        place(first);
        continue;
      }
      return stuck(first, earliest_other(first).second, false);
    }
  }

  // Nothing may come next. Then every remaining group other than `first` (the one that
  // returns first) is invoked after `first` returns, and `first` after `second` returns:
  // the two must each precede the other. With `initial_first`, `first` is the initial value's
  // group, which must come first, and `second` a group that must precede it.
  void stuck(std::uint32_t first, std::uint32_t second, bool initial_first) {
    auto edge = [&](std::uint32_t from, std::uint32_t to) {
      const std::uint32_t a = groups_[from].first_ret_op, b = groups_[to].last_call_op;
      return "  " + group_name(from) + " must precede " + group_name(to) + ", since " +
             name(a) + " returned before " + name(b) + " was invoked:\n    " +
             describe(op(a), global(a)) + "\n    " + describe(op(b), global(b)) + "\n";
    };
    outcome_ = value_outcome::not_linearizable;
    if (initial_first) {
      reason_ = "Reads of the initial value come before every write they do not show, yet " +
                group_name(second) + " must precede them:\n" + edge(second, first);
      culprit_ = global(groups_[first].last_call_op);
      return;
    }
    reason_ = "Each read fixes the put before it and the appends since, so these groups of "
              "operations must each run with no other write inside them, and real time "
              "orders them both ways:\n" + edge(first, second) + edge(second, first);
    // Two lone writes cannot conflict (each is invoked before it returns).
    const std::uint32_t g = groups_[first].lone == none ? first : second;
    culprit_ = global(groups_[g].last_call_op);
  }

  // ---- explanations

  bool decide_violation(std::uint32_t about, std::string why) {
    outcome_ = value_outcome::not_linearizable;
    reason_ = std::move(why);
    culprit_ = global(about);
    return false;
  }
  bool leave_open(std::string why) {
    outcome_ = value_outcome::open;
    reason_ = std::move(why);
    return false;
  }
  std::string name(std::uint32_t j) const {
    return std::string(to_string(op(j).op)) + " #" + std::to_string(global(j));
  }
  std::string base_name(std::uint32_t base) const {
    return base == initial ? std::string("the initial value") : name(base);
  }
  std::string group_name(std::uint32_t gr) const {
    const group& G = groups_[gr];
    if (G.lone != none) return name(G.lone) + " (which no read sees)";
    if (G.base == initial) return "the reads of the initial value (with the appends they show)";
    return name(G.base) + " (with the reads and appends after it)";
  }

  std::span<const operation> all_;
  std::span<const std::size_t> idx_;
  value_outcome outcome_ = value_outcome::linearizable;
  std::string reason_;
  std::size_t culprit_ = static_cast<std::size_t>(-1);
  std::vector<value_info> values_;
  std::vector<std::uint32_t> table_;     // open addressing over values_
  std::vector<length> put_lengths_, append_lengths_;
  std::vector<std::uint32_t> value_of_;  // per op: its value, none for gets and no-ops
  std::vector<std::uint32_t> gets_;      // sorted by output
  std::vector<std::uint32_t> outputs_;   // one get per distinct output, sorted
  std::vector<std::uint32_t> output_of_; // per get: into outputs_
  std::vector<parsed> parsed_;           // per distinct output
  std::vector<split> splits_;
  std::vector<std::uint64_t> pre_;       // prefix hashes of the output being split
  std::vector<std::uint8_t> ways_;
  std::vector<group> groups_;
  std::vector<std::uint32_t> group_of_put_;  // per put its group, none if unseen
  std::uint32_t initial_group_ = none;
  std::vector<std::uint32_t> position_;  // per append its group, none if unseen
  std::vector<std::uint32_t> chain_;     // every group's ops, in order
  std::vector<std::uint32_t> placed_;    // ops of the groups ordered so far
};

/// Applies ops to a real string, to show the register's value in explanations.
inline std::string replay(std::span<const operation> all, const std::vector<std::size_t>& order) {
  std::string v;
  for (auto i : order) {
    if (all[i].op == op_kind::put) v = all[i].value;
    else if (all[i].op == op_kind::append) v += all[i].value;
  }
  return v;
}

// The part of an explanation a search gives: the read that can never be satisfied, or
// the longest linearizable prefix found and what could not follow it.
inline std::string explain_search(std::span<const operation> all, const key_checker& kc,
                                  std::size_t show) {
  if (kc.unreachable_read()) {
    const std::size_t c = kc.culprit();
    return "This read can never be satisfied: " + describe(all[c], c) +
           "\nIts output is neither \"\" nor a put's value followed by values of distinct "
           "appends, using only writes invoked before it returned.\n";
  }
  std::vector<std::size_t> prefix = kc.best_prefix();
  std::string r = "The longest linearizable prefix found has " + std::to_string(prefix.size()) +
                  " operations";
  if (!prefix.empty()) {
    std::size_t from = prefix.size() > show ? prefix.size() - show : 0;
    r += from > 0 ? "; its last " + std::to_string(prefix.size() - from) + " are:\n"
                  : ":\n";
    for (std::size_t i = from; i < prefix.size(); ++i)
      r += "  " + describe(all[prefix[i]], prefix[i]) + "\n";
  } else {
    r += ".\n";
  }
  r += "After it the register holds " + describe_value(replay(all, prefix)) + ".\n";
  std::size_t c = kc.culprit();
  if (c != static_cast<std::size_t>(-1)) {
    r += "The next operation to return cannot be placed after it, nor can any operation "
         "concurrent with it: " +
         describe(all[c], c) + "\n";
  }
  return r;
}

inline std::string violation_header(std::string_view key, std::size_t key_ops) {
  return "key \"" + std::string(key) + "\": no linearization of its " +
         std::to_string(key_ops) + " operations exists.\n";
}

// A key the values proved not linearizable. A bounded search adds the longest
// linearizable prefix to the explanation; it must not find a linearization.
inline check_result value_violation(std::span<const operation> all, std::string_view key,
                                    std::span<const std::size_t> idx, const value_checker& vc,
                                    const check_options& options) {
  check_result r;
  r.verdict = check_verdict::not_linearizable;
  r.linearizable = false;
  r.key = std::string(key);
  r.explanation = violation_header(key, idx.size()) + vc.reason();
  r.longest_prefix = vc.order();
  r.culprit = vc.culprit();
  if (options.max_explain_steps == 0) return r;
  key_checker kc(all, std::vector<std::size_t>(idx.begin(), idx.end()));
  const check_verdict v = kc.run(options.max_explain_steps);
  r.steps = kc.steps();
  RAFTKIT_ASSERT(v != check_verdict::linearizable,
                 "linearizability: the search linearized a key its values ruled out");
  if (v == check_verdict::not_linearizable && !kc.unreachable_read()) {
    r.longest_prefix = kc.best_prefix();
    r.culprit = kc.culprit();
    r.explanation += explain_search(all, kc, options.explain_prefix_ops);
  }
  return r;
}

}  // namespace detail

/// Checks that `ops` (a history of put/get/append on string registers, one per key) is
/// linearizable. Gets with an unknown outcome say nothing and are ignored; other ops with
/// an unknown outcome may take effect at any time after their call, or never.
inline check_result check_linearizability(std::span<const operation> ops,
                                          const check_options& options = {}) {
  check_result result;
  std::map<std::string_view, std::vector<std::size_t>> by_key;  // ordered: deterministic
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (auto err = validate(ops[i])) {
      result.verdict = check_verdict::invalid_history;
      result.linearizable = false;
      result.key = ops[i].key;
      result.culprit = i;
      result.explanation = "operation " + detail::describe(ops[i], i) + ": " + *err;
      return result;
    }
    if (ops[i].op == op_kind::get && !ops[i].completed()) continue;
    by_key[ops[i].key].push_back(i);
  }
  std::optional<check_result> inconclusive;
  for (auto& [key, idx] : by_key) {
    ++result.keys;
    std::string open;  // why the values leave this key to the search
    if (options.method == check_method::automatic) {
      detail::value_checker vc(ops, idx);
      const auto outcome = vc.run();
      if (outcome == detail::value_outcome::linearizable) continue;
      if (outcome == detail::value_outcome::not_linearizable) {
        check_result r = detail::value_violation(ops, key, idx, vc, options);
        r.steps += result.steps;
        r.keys = result.keys;
        r.searched_keys = result.searched_keys;
        return r;
      }
      open = vc.reason();
    }
    ++result.searched_keys;
    const std::size_t key_ops = idx.size();
    detail::key_checker kc(ops, std::move(idx));
    check_verdict v = kc.run(options.max_steps_per_key);
    result.steps += kc.steps();
    if (v == check_verdict::linearizable) continue;
    check_result r;
    r.verdict = v;
    r.linearizable = false;
    r.key = std::string(key);
    r.longest_prefix = kc.best_prefix();
    r.culprit = kc.culprit();
    if (v == check_verdict::inconclusive) {
      r.explanation = "inconclusive on key \"" + std::string(key) + "\": the search stopped after " +
                      std::to_string(kc.steps()) + " steps (budget " +
                      std::to_string(options.max_steps_per_key) +
                      ") with no violation found and none ruled out.\n";
      if (!open.empty()) r.explanation += "The values leave the order open: " + open + ".\n";
    } else {
      r.explanation = detail::violation_header(key, key_ops);
    }
    r.explanation += detail::explain_search(ops, kc, options.explain_prefix_ops);
    if (v == check_verdict::not_linearizable) {
      // A proved violation outranks an earlier key's inconclusive search.
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

}  // namespace raftkit::sim
