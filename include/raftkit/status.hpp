#pragma once
/// \file What a node reports about itself: role, status and counters.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// A node's role (§5.1).
enum class role : std::uint8_t {
  follower = 0,
  candidate = 1,
  leader = 2,
  pre_candidate = 3,  ///< asking for pre-votes; its term is unchanged (thesis §9.6)
};

constexpr const char* to_string(role r) noexcept {
  switch (r) {
    case role::follower: return "follower";
    case role::candidate: return "candidate";
    case role::leader: return "leader";
    case role::pre_candidate: return "pre_candidate";
  }
  return "unknown";
}

/// A leader's view of one follower's replication progress.
struct peer_status {
  node_id id = no_node;
  index_t match_index = 0;  ///< highest index known durable on the peer
  index_t next_index = 0;   ///< next index to send
  std::size_t in_flight = 0;  ///< AppendEntries sent and not yet acknowledged
  bool probing = false;     ///< looking for the match point, one message at a time
};

/// A snapshot of a node's state.
struct node_status {
  node_id id = no_node;
  raftkit::role role = role::follower;
  term_t term = 0;
  node_id leader = no_node;
  index_t commit_index = 0;
  index_t applied_index = 0;
  index_t last_log_index = 0;
  index_t durable_index = 0;
  std::size_t pending_proposals = 0;  ///< waiting for apply: own (leader) or forwarded (follower)
  std::uint64_t uncommitted_bytes = 0;  ///< leader: bytes appended in its term, not yet committed
  std::size_t pending_reads = 0;       ///< reads waiting for a round, a commit or to be applied
  bool pre_vote = false;               ///< configured: pre-vote
  bool check_quorum = false;           ///< configured: check-quorum
  bool lease_valid = false;            ///< leader: its read lease holds now
  time_point lease_until{};            ///< leader: when its lease ends (clock policy's time)
  node_id transfer_target = no_node;   ///< leader: the node a leadership transfer is handing over to
  index_t first_log_index = 1;         ///< the first entry the log holds (above it: compacted)
  index_t snapshot_index = 0;          ///< the newest snapshot's index (0: none)
  term_t snapshot_term = 0;
  std::uint64_t snapshot_size = 0;     ///< its content bytes
  std::vector<peer_status> peers;  ///< on the leader only
};

/// Monotonic counters, for metrics.
struct node_counters {
  std::uint64_t elections = 0;          ///< elections this node started (raised its term)
  std::uint64_t elections_won = 0;      ///< elections after which it led
  std::uint64_t pre_votes = 0;          ///< pre-vote rounds it started
  std::uint64_t votes_ignored = 0;      ///< (pre-)vote requests ignored because a leader was current
  std::uint64_t quorum_lost = 0;        ///< times it stepped down by check-quorum
  std::uint64_t transfers = 0;          ///< leadership transfers it started
  std::uint64_t membership_changes = 0; ///< membership changes it started as leader
  std::uint64_t reads = 0;              ///< read_index() calls
  std::uint64_t lease_reads = 0;        ///< reads answered from the lease, without a round
  std::uint64_t read_rounds = 0;        ///< heartbeat rounds confirmed by a majority
  std::uint64_t snapshots_taken = 0;    ///< snapshots of its own state committed
  std::uint64_t snapshot_failures = 0;  ///< snapshots it failed to take
  std::uint64_t snapshots_installed = 0;///< snapshots received from a leader and restored
  std::uint64_t snapshots_sent = 0;     ///< snapshots a follower installed from this leader
  std::uint64_t snapshot_bytes_sent = 0;
  std::uint64_t snapshot_bytes_received = 0;
  std::int64_t last_snapshot_ns = 0;    ///< how long its last snapshot took to write, on its clock
  std::uint64_t proposals = 0;          ///< propose() calls
  std::uint64_t forwarded = 0;          ///< proposals forwarded to a leader
  std::uint64_t proposals_refused = 0;  ///< proposals that failed as definitely not applied
  std::uint64_t applied = 0;            ///< entries applied
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t messages_ignored = 0;
  std::uint64_t appends_sent = 0;       ///< AppendEntries carrying entries or probes
  std::uint64_t rejections = 0;         ///< AppendEntries rejections acted on by a leader
  std::uint64_t log_appends = 0;        ///< append calls on the log store
};

}  // namespace raftkit
