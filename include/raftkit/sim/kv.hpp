#pragma once
/// \file sim::kv: the key-value state machine raftkit-sim's clients drive (put, get,
/// append on string keys), the encoding of its commands, its sequential model, and the
/// scenario that runs it: one instance of sim::run's scenarios, like any user's.

#include <cstdint>
#include <cstring>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/sim/history.hpp"
#include "raftkit/sim/linearizability.hpp"
#include "raftkit/sim/model.hpp"
#include "raftkit/sim/scenario.hpp"
#include "raftkit/snapshot.hpp"
#include "raftkit/types.hpp"

namespace raftkit::sim {

/// A decoded key-value command.
struct kv_command {
  op_kind op = op_kind::get;
  std::string key;
  std::string value;
};

/// Encodes a command as [op:1][key length:4, little-endian][key][value].
inline shared_bytes encode_kv(op_kind op, std::string_view key, std::string_view value) {
  const std::size_t n = 1 + 4 + key.size() + value.size();
  shared_bytes b = shared_bytes::allocate(n);
  std::byte* p = b.mutable_data();
  p[0] = static_cast<std::byte>(op);
  const auto len = static_cast<std::uint32_t>(key.size());
  for (int i = 0; i < 4; ++i) p[1 + i] = static_cast<std::byte>((len >> (8 * i)) & 0xff);
  std::memcpy(p + 5, key.data(), key.size());
  if (!value.empty()) std::memcpy(p + 5 + key.size(), value.data(), value.size());
  return b;
}

/// Decodes a command; nullopt if the bytes are not one.
inline std::optional<kv_command> decode_kv(std::span<const std::byte> b) {
  if (b.size() < 5) return std::nullopt;
  const auto op = static_cast<std::uint8_t>(b[0]);
  if (op > static_cast<std::uint8_t>(op_kind::append)) return std::nullopt;
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= static_cast<std::uint32_t>(b[1 + i]) << (8 * i);
  if (len > b.size() - 5) return std::nullopt;
  const char* s = reinterpret_cast<const char*>(b.data());
  return kv_command{static_cast<op_kind>(op), std::string(s + 5, len),
                    std::string(s + 5 + len, b.size() - 5 - len)};
}

/// What applying a command returns: where it was applied, and a get's value.
struct kv_result {
  index_t index = 0;
  std::string output;
};

/// The replicated map. `apply` returns a get's value ("" for a missing key) and ""
/// for writes; a malformed command changes nothing.
struct kv_store {
  using map_type = std::map<std::string, std::string, std::less<>>;
  /// The map. digest() follows what apply and restore do to it; change it only through them.
  map_type data;

  /// A fingerprint of the map (raftkit::has_digest): the sum of a hash of every (key,
  /// value) pair, kept up to date by apply and recomputed by restore, so the simulator
  /// can compare replicas after every step, across snapshot installs and restarts alike.
  std::uint64_t digest() const noexcept { return digest_; }

  /// A snapshot's point-in-time view: a copy of the map (simulated states are small; a
  /// large store would hand out a copy-on-write handle instead).
  struct view {
    std::shared_ptr<const map_type> data;
    /// Writes the map as (key length u32, key, value length u32, value) records.
    std::error_code write(snapshot_writer& w) const {
      for (const auto& [k, v] : *data) {
        const auto kl = static_cast<std::uint32_t>(k.size()), vl = static_cast<std::uint32_t>(v.size());
        if (auto ec = w.write_value(kl)) return ec;
        if (auto ec = w.write(k)) return ec;
        if (auto ec = w.write_value(vl)) return ec;
        if (auto ec = w.write(v)) return ec;
      }
      return {};
    }
  };
  view snapshot() const { return view{std::make_shared<const map_type>(data)}; }
  /// Replaces the map with the snapshot's; a truncated or malformed snapshot is an error.
  std::error_code restore(snapshot_reader& r) {
    map_type next;
    auto read_string = [&](std::string& out) {
      std::uint32_t n = 0;
      if (!r.read_value(n) || n > r.remaining()) return false;
      out.resize(n);
      return r.read_exact(std::as_writable_bytes(std::span(out.data(), out.size())));
    };
    while (r.remaining() > 0) {
      std::string k, v;
      if (!read_string(k) || !read_string(v)) return make_error_code(errc::corrupt_snapshot);
      next.emplace(std::move(k), std::move(v));
    }
    data = std::move(next);
    digest_ = 0;
    for (const auto& [k, v] : data) digest_ += pair_hash(k, v);
    return {};
  }

  /// Answers a get without changing anything (the read-only call reads use once the
  /// replica has applied up to their read index); "" for anything else.
  kv_result query(std::span<const std::byte> command) const {
    kv_result r;
    auto cmd = decode_kv(command);
    if (!cmd || cmd->op != op_kind::get) return r;
    if (auto it = data.find(cmd->key); it != data.end()) r.output = it->second;
    return r;
  }

  kv_result apply(index_t i, std::span<const std::byte> command) {
    kv_result r{i, {}};
    auto cmd = decode_kv(command);
    if (!cmd) return r;
    switch (cmd->op) {
      case op_kind::get: {
        auto it = data.find(cmd->key);
        if (it != data.end()) r.output = it->second;
        break;
      }
      case op_kind::put:
      case op_kind::append: {
        auto [it, fresh] = data.try_emplace(cmd->key);
        if (!fresh) digest_ -= pair_hash(it->first, it->second);
        if (cmd->op == op_kind::put) it->second = std::move(cmd->value);
        else it->second += cmd->value;
        digest_ += pair_hash(it->first, it->second);
        break;
      }
    }
    return r;
  }

 private:
  // FNV-1a of the key, then of the value, separated, then mixed: equal pairs hash equal.
  static std::uint64_t pair_hash(std::string_view k, std::string_view v) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : k) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    h = (h ^ 0xffu) * 0x100000001b3ull;
    for (char c : v) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
  }
  std::uint64_t digest_ = 0;
};

/// What a client asks of the key-value store.
struct kv_input {
  op_kind op = op_kind::get;
  std::string key;
  std::string value;  ///< put's or append's argument; empty for get
  friend bool operator==(const kv_input&, const kv_input&) = default;
};

/// One operation in a key-value history as sim::run records it.
using kv_operation = basic_operation<kv_input, std::string>;

/// The register history of key-value operations, as the register checker and history
/// files take it (the same order, so operation numbers agree).
inline std::vector<operation> to_register_history(std::span<const kv_operation> ops) {
  std::vector<operation> r;
  r.reserve(ops.size());
  for (const auto& o : ops)
    r.push_back({o.client, o.input.op, o.input.key, o.input.value, o.completed() && o.input.op == op_kind::get ? o.output : std::string(),
                 o.call, o.ret});
  return r;
}

/// The sequential model of the key-value store: each key an independent register.
struct kv_model {
  using input = kv_input;
  using output = std::string;  ///< a get's value; "" for writes
  using state = std::string;   ///< the value of one key (a partition)

  state init() const { return {}; }
  output step(state& s, const input& in) const {
    switch (in.op) {
      case op_kind::put: s = in.value; return {};
      case op_kind::append: s += in.value; return {};
      case op_kind::get: return s;
    }
    return {};
  }
  std::string partition(const input& in) const { return in.key; }
  bool read_only(const input& in) const { return in.op == op_kind::get; }

  /// "put k3 c0-7", "get k3".
  std::string input_text(const input& in) const {
    std::string r = std::string(to_string(in.op)) + " " + in.key;
    if (in.op != op_kind::get) r += " " + in.value;
    return r;
  }
  std::string output_text(const output& out) const { return detail::describe_value(out); }
  std::string state_text(const state& s) const { return detail::describe_value(s); }

  /// The register checker, which decides most keys from their values and searches only
  /// what they leave open (linearizability.hpp).
  check_result check(std::span<const kv_operation> ops, const check_options& o) const {
    return check_linearizability(to_register_history(ops), o);
  }
  /// History files in the register format (history.hpp).
  void write_jsonl(std::ostream& os, std::span<const kv_operation> ops) const {
    sim::write_jsonl(os, std::span<const operation>(to_register_history(ops)));
  }
  basic_parse_result<kv_operation> parse_jsonl(std::istream& is) const {
    parse_result p = sim::parse_jsonl(is);
    basic_parse_result<kv_operation> r;
    r.error = std::move(p.error);
    for (auto& o : p.ops)
      r.ops.push_back({o.client, {o.op, std::move(o.key), std::move(o.value)}, std::move(o.output), o.call, o.ret});
    return r;
  }
};

/// The scenario raftkit-sim runs: clients put, get and append on `keys` keys at a time
/// through random nodes, moving each to a fresh key after `ops_per_key` operations.
class kv_scenario {
 public:
  using state_machine_type = kv_store;
  using model_type = kv_model;

  explicit kv_scenario(const run_options& o) : keys_(o.keys, o.ops_per_key) {}

  kv_store make_state_machine(node_id) { return {}; }

  request<kv_input> next(workload_context& ctx) {
    const auto roll = ctx.below(10);
    request<kv_input> r;
    r.input.op = roll < 4 ? op_kind::get : roll < 7 ? op_kind::put : op_kind::append;
    r.input.key = "k" + std::to_string(keys_.take(ctx));
    if (r.input.op != op_kind::get)
      r.input.value = "c" + std::to_string(ctx.client()) + "-" + std::to_string(ctx.count());
    r.read = r.input.op == op_kind::get;
    return r;
  }

  shared_bytes encode(const kv_input& in) const { return encode_kv(in.op, in.key, in.value); }
  std::string output(const kv_input&, const kv_result& r) const { return r.output; }
  void finished(const kv_input& in, op_outcome o) {
    if (o != op_outcome::failed) keys_.recorded(std::stoull(in.key.substr(1)));
  }
  shared_bytes liveness_command() const { return encode_kv(op_kind::put, "__liveness__", "1"); }

 private:
  partition_rotation keys_;
};

}  // namespace raftkit::sim
