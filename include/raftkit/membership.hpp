#pragma once
/// \file Cluster membership: who votes, who learns, and how a configuration travels in the log.
///
/// A configuration (thesis chapter 4) lists voters and learners, each with an id and an
/// opaque `context` the user fills (raftkit-kv keeps a member's addresses there; the engine
/// never reads it). During joint consensus (Raft paper §6, thesis §4.3) it also lists the
/// outgoing voters C_old: elections and commitment then need a majority of each set.
/// Configurations travel as `entry_type::config` entries; a node uses the latest one in its
/// log, committed or not (thesis §4.1), and the one in force at a snapshot's index is stored
/// in that snapshot.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// One member of a configuration.
struct member_info {
  node_id id = no_node;
  std::string context;  ///< opaque to the engine (addresses, labels...)
  friend bool operator==(const member_info&, const member_info&) = default;
};

/// A cluster configuration.
struct membership {
  std::vector<member_info> voters;    ///< C_new's voters (the only voter set unless joint)
  std::vector<member_info> learners;  ///< receive the log, never vote, never count in a quorum
  std::vector<member_info> outgoing;  ///< C_old's voters while joint; empty otherwise
  /// The log index of the entry that set this configuration (0: the initial one from
  /// node_config, or one restored from a snapshot taken before any config entry).
  index_t index = 0;

  bool joint() const noexcept { return !outgoing.empty(); }
  static const member_info* find_in(const std::vector<member_info>& v, node_id id) noexcept {
    for (const auto& m : v)
      if (m.id == id) return &m;
    return nullptr;
  }
  /// Votes in C_new (or the only set).
  bool is_voter(node_id id) const noexcept { return find_in(voters, id) != nullptr; }
  /// Votes in C_old while joint.
  bool is_outgoing(node_id id) const noexcept { return find_in(outgoing, id) != nullptr; }
  bool is_learner(node_id id) const noexcept { return find_in(learners, id) != nullptr; }
  /// Takes part in elections or commitment, in either set.
  bool votes(node_id id) const noexcept { return is_voter(id) || is_outgoing(id); }
  /// Listed anywhere (voter, learner or outgoing voter).
  bool contains(node_id id) const noexcept { return votes(id) || is_learner(id); }
  /// The member's entry (voters first, then learners, then outgoing), or null.
  const member_info* find(node_id id) const noexcept {
    if (const auto* m = find_in(voters, id)) return m;
    if (const auto* m = find_in(learners, id)) return m;
    return find_in(outgoing, id);
  }
  /// Every id listed, each once, in the order voters, learners, outgoing.
  std::vector<node_id> ids() const {
    std::vector<node_id> out;
    auto add = [&](const std::vector<member_info>& v) {
      for (const auto& m : v)
        if (std::find(out.begin(), out.end(), m.id) == out.end()) out.push_back(m.id);
    };
    add(voters);
    add(learners);
    add(outgoing);
    return out;
  }
  std::vector<node_id> voter_ids() const {
    std::vector<node_id> out;
    for (const auto& m : voters) out.push_back(m.id);
    return out;
  }
  std::vector<node_id> outgoing_ids() const {
    std::vector<node_id> out;
    for (const auto& m : outgoing) out.push_back(m.id);
    return out;
  }
  /// Equal members (order included); the index is not compared.
  bool same_members(const membership& o) const { return voters == o.voters && learners == o.learners && outgoing == o.outgoing; }
};

/// One requested change of membership.
enum class member_change_type : std::uint8_t {
  add_voter = 0,    ///< a new server, which first joins as a learner and is promoted once caught up
  add_learner = 1,  ///< a new server that receives the log and never votes
  promote = 2,      ///< a learner becomes a voter once caught up (thesis §4.2.1)
  remove = 3,       ///< a voter or a learner leaves
};

struct member_change {
  member_change_type type = member_change_type::add_learner;
  node_id id = no_node;
  std::string context;  ///< for add_voter and add_learner (kept as the member's context)

  static member_change add_voter(node_id id, std::string context = {}) { return {member_change_type::add_voter, id, std::move(context)}; }
  static member_change add_learner(node_id id, std::string context = {}) { return {member_change_type::add_learner, id, std::move(context)}; }
  static member_change promote(node_id id) { return {member_change_type::promote, id, {}}; }
  static member_change remove(node_id id) { return {member_change_type::remove, id, {}}; }
};

namespace detail {

/// The encoding of a configuration, in config entries and snapshot metadata:
/// "RKM1", then three lists (voters, learners, outgoing), each a u32 count followed by
/// its members as u64 id, u32 context length, context bytes; all little-endian.
inline constexpr char membership_magic[4] = {'R', 'K', 'M', '1'};

inline void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
  for (int b = 0; b < 4; ++b) out.push_back(static_cast<std::byte>((v >> (8 * b)) & 0xff));
}
inline void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<std::byte>((v >> (8 * b)) & 0xff));
}

inline std::vector<std::byte> encode_membership(const membership& m) {
  std::vector<std::byte> out;
  for (char c : membership_magic) out.push_back(static_cast<std::byte>(c));
  for (const auto* list : {&m.voters, &m.learners, &m.outgoing}) {
    put_u32(out, static_cast<std::uint32_t>(list->size()));
    for (const auto& x : *list) {
      put_u64(out, x.id);
      put_u32(out, static_cast<std::uint32_t>(x.context.size()));
      for (char c : x.context) out.push_back(static_cast<std::byte>(c));
    }
  }
  return out;
}

/// Decodes what encode_membership wrote; nullopt for anything malformed (truncated, extra
/// bytes, id 0, an id listed twice in C_new, no voter at all). The older snapshot
/// encoding, a bare list of u64 voter ids, is read too.
inline std::optional<membership> decode_membership(std::span<const std::byte> in) {
  std::size_t at = 0;
  auto get = [&](std::size_t n, std::uint64_t& v) {
    if (in.size() - at < n) return false;
    v = 0;
    for (std::size_t b = 0; b < n; ++b) v |= std::uint64_t(std::to_integer<unsigned>(in[at + b])) << (8 * b);
    at += n;
    return true;
  };
  membership m;
  const bool tagged = in.size() >= 4 && std::equal(membership_magic, membership_magic + 4, in.begin(),
                                                    [](char c, std::byte b) { return static_cast<std::byte>(c) == b; });
  if (!tagged) {  // the bare voter list snapshots held before configurations had a format
    if (in.empty() || in.size() % 8 != 0) return std::nullopt;
    while (at < in.size()) {
      std::uint64_t id = 0;
      get(8, id);
      if (id == no_node || m.is_voter(id)) return std::nullopt;
      m.voters.push_back(member_info{id, {}});
    }
    return m;
  }
  at = 4;
  for (auto* list : {&m.voters, &m.learners, &m.outgoing}) {
    std::uint64_t n = 0;
    if (!get(4, n) || n > in.size()) return std::nullopt;
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t id = 0, len = 0;
      if (!get(8, id) || !get(4, len) || len > in.size() - at || id == no_node) return std::nullopt;
      if (membership::find_in(*list, id)) return std::nullopt;
      list->push_back(member_info{id, std::string(reinterpret_cast<const char*>(in.data() + at), len)});
      at += len;
    }
  }
  if (at != in.size() || m.voters.empty()) return std::nullopt;
  for (const auto& l : m.learners)
    if (m.is_voter(l.id)) return std::nullopt;
  return m;
}

}  // namespace detail
}  // namespace raftkit
