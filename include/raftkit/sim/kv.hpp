#pragma once
/// \file sim::kv: the key-value state machine the simulator's clients drive (put, get,
/// append on string keys), and the encoding of its commands.

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <vector>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "raftkit/sim/history.hpp"
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
  map_type data;

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
      case op_kind::put: data[cmd->key] = std::move(cmd->value); break;
      case op_kind::append: data[cmd->key] += cmd->value; break;
    }
    return r;
  }
};

}  // namespace raftkit::sim
