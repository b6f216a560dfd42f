#pragma once
// The replicated key-value map of raftkit-kv and its command encoding.
//
// A command is: one op byte, the key length as a LEB128 varint, the key, then the value
// (everything left). Compact, and decoding needs no framing beyond the log entry itself.
// A get is answered by `query` (raftkit::has_query), without the log: the server reads
// through the node's ReadIndex, which makes the answer linearizable without a log write.
// `apply` still answers a get that reached the log (an older server's, say).
//
// Snapshots (raftkit/snapshot.hpp): the map is written as a key count (u64) then, per key,
// its length (u32), the key, the value's length (u32) and the value, little-endian.
// `snapshot()` copies the map on the engine's thread: a copy of a few thousand small keys
// costs microseconds, and the copy is then written on the driver's worker while `apply`
// goes on. (A store too big to copy would hand out a version of a multi-version map.)

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "raftkit/errc.hpp"
#include "raftkit/snapshot.hpp"
#include "raftkit/types.hpp"

namespace kv {

/// What a command does.
enum class op : std::uint8_t { put = 1, append = 2, erase = 3, get = 4 };

/// A decoded command; views into the entry's bytes.
struct command {
  kv::op op{};
  std::string_view key;
  std::string_view value;
};

/// Bytes of the encoding of a command with a key and a value of these sizes: what a
/// proposal puts in the log, so the server can refuse one too large before encoding it.
constexpr std::size_t encoded_size(std::size_t key_size, std::size_t value_size) noexcept {
  std::size_t varint = 1;
  for (std::uint64_t n = key_size; n >= 0x80; n >>= 7) ++varint;
  return 1 + varint + key_size + value_size;
}

/// Encodes a command.
inline std::vector<std::byte> encode(op o, std::string_view key, std::string_view value = {}) {
  std::vector<std::byte> out;
  out.reserve(encoded_size(key.size(), value.size()));
  out.push_back(static_cast<std::byte>(o));
  std::uint64_t n = key.size();
  do {
    std::uint8_t b = n & 0x7F;
    n >>= 7;
    if (n) b |= 0x80;
    out.push_back(static_cast<std::byte>(b));
  } while (n);
  for (char c : key) out.push_back(static_cast<std::byte>(c));
  for (char c : value) out.push_back(static_cast<std::byte>(c));
  return out;
}

/// Decodes a command; nullopt for bytes that are not one (never trusted to be well-formed).
inline std::optional<command> decode(std::span<const std::byte> in) {
  if (in.empty()) return std::nullopt;
  const auto o = static_cast<std::uint8_t>(in[0]);
  if (o < 1 || o > 4) return std::nullopt;
  std::size_t pos = 1;
  std::uint64_t len = 0;
  for (int shift = 0;; shift += 7) {
    if (pos >= in.size() || shift > 56) return std::nullopt;
    const auto b = static_cast<std::uint8_t>(in[pos++]);
    len |= std::uint64_t{b & 0x7Fu} << shift;
    if (!(b & 0x80)) break;
  }
  if (len > in.size() - pos) return std::nullopt;
  const auto* p = reinterpret_cast<const char*>(in.data());
  command c;
  c.op = static_cast<op>(o);
  c.key = std::string_view(p + pos, static_cast<std::size_t>(len));
  c.value = std::string_view(p + pos + len, in.size() - pos - static_cast<std::size_t>(len));
  return c;
}

/// A command's outcome: whether the key existed (before a write, at a get) and, for a
/// get, the value.
struct result {
  bool found = false;
  bool bad = false;  ///< the entry did not decode (no change was made)
  std::string value;
};

/// The state machine: a map from keys to values.
class machine {
 public:
  result apply(raftkit::index_t, std::span<const std::byte> bytes) {
    result r;
    const auto c = decode(bytes);
    if (!c) {
      r.bad = true;
      return r;
    }
    auto it = map_.find(std::string(c->key));
    r.found = it != map_.end();
    switch (c->op) {
      case op::put: map_.insert_or_assign(std::string(c->key), std::string(c->value)); break;
      case op::append:
        if (r.found) it->second.append(c->value);
        else map_.emplace(std::string(c->key), std::string(c->value));
        break;
      case op::erase:
        if (r.found) map_.erase(it);
        break;
      case op::get:
        if (r.found) r.value = it->second;
        break;
    }
    return r;
  }
  /// Answers a get from the current state (raftkit::has_query); any other command is
  /// `bad` here: only gets are read-only.
  result query(std::span<const std::byte> bytes) const {
    result r;
    const auto c = decode(bytes);
    if (!c || c->op != op::get) {
      r.bad = true;
      return r;
    }
    const auto it = map_.find(std::string(c->key));
    r.found = it != map_.end();
    if (r.found) r.value = it->second;
    return r;
  }
  std::size_t size() const noexcept { return map_.size(); }

  using map_type = std::unordered_map<std::string, std::string>;

  /// A point-in-time copy of the map, written on any thread.
  struct view {
    std::shared_ptr<const map_type> map;
    std::error_code write(raftkit::snapshot_writer& w) const {
      if (auto ec = w.write_value(static_cast<std::uint64_t>(map->size()))) return ec;
      for (const auto& [k, v] : *map) {
        if (auto ec = w.write_value(static_cast<std::uint32_t>(k.size()))) return ec;
        if (auto ec = w.write(k)) return ec;
        if (auto ec = w.write_value(static_cast<std::uint32_t>(v.size()))) return ec;
        if (auto ec = w.write(v)) return ec;
      }
      return {};
    }
  };
  view snapshot() const { return view{std::make_shared<const map_type>(map_)}; }

  /// Replaces the map with the snapshot's; one that is truncated, malformed or longer than
  /// its key count says is corrupt_snapshot, and the map is left as it was.
  std::error_code restore(raftkit::snapshot_reader& r) {
    const auto corrupt = make_error_code(raftkit::errc::corrupt_snapshot);
    std::uint64_t n = 0;
    if (!r.read_value(n)) return corrupt;
    map_type next;
    auto read_string = [&](std::string& out) {
      std::uint32_t len = 0;
      if (!r.read_value(len) || len > r.remaining()) return false;
      out.resize(len);
      return r.read_exact(std::as_writable_bytes(std::span(out.data(), out.size())));
    };
    for (std::uint64_t i = 0; i < n; ++i) {
      std::string k, v;
      if (!read_string(k) || !read_string(v)) return corrupt;
      next.insert_or_assign(std::move(k), std::move(v));
    }
    if (r.remaining() != 0 || next.size() != n) return corrupt;
    map_ = std::move(next);
    return {};
  }

 private:
  map_type map_;
};

static_assert(raftkit::snapshottable<machine>);

}  // namespace kv
