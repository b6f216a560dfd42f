#pragma once
/// \file A node's configuration.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// How a read is answered.
enum class read_consistency : std::uint8_t {
  linearizable = 0,  ///< ReadIndex (thesis §6.4): one heartbeat round confirms leadership
  lease = 1,         ///< the leader's lease (§6.4.1) when it holds, else as linearizable
  local = 2,         ///< this node's state as it is: no guarantee, no messages
};

/// How a node is set up. Times are in the clock policy's nanoseconds.
struct node_config {
  /// This node's id (non-zero).
  node_id id = no_node;
  /// Every voting member of the cluster, this node included: the initial configuration.
  /// Once the log or a snapshot holds a configuration (membership.hpp), that one is used.
  std::vector<node_id> members;
  /// A new server joining a running cluster: it starts with no configuration (`members`
  /// empty), never campaigns, and waits for a leader to add it (change_membership) and
  /// send it the log.
  bool join = false;
  /// Promoting a learner (or adding a voter) first catches it up (thesis §4.2.1): in
  /// rounds, each replicating what the leader held when the round began; once a round
  /// takes less than an election timeout the learner is caught up. After this many
  /// rounds, or this much time, the change fails with catch_up_failed.
  unsigned catch_up_rounds = 10;
  duration catch_up_timeout = std::chrono::seconds(30);

  /// Base election timeout T; each wait is drawn from [T, 2T) (§5.2).
  duration election_timeout = std::chrono::milliseconds(150);
  /// How often a leader sends heartbeats; well below T.
  duration heartbeat_interval = std::chrono::milliseconds(30);

  /// Batching: at most this many entries and bytes (`entry::wire_size`) in one
  /// AppendEntries. A proposal whose entry alone exceeds `max_bytes_per_message` could
  /// never be replicated: it fails at once with too_large (not applied). A driver over a
  /// transport with a frame limit keeps this below that limit.
  std::size_t max_entries_per_message = 256;
  std::size_t max_bytes_per_message = 1 << 20;
  /// Pipelining: per follower, at most this many AppendEntries and bytes in flight.
  std::size_t max_inflight_messages = 64;
  std::size_t max_inflight_bytes = 32 << 20;

  /// Proposals accepted but not yet applied on this node (its own on a leader, forwarded
  /// ones on a follower); beyond this, `propose` fails with busy (not applied).
  std::size_t max_pending_proposals = 1 << 16;
  /// A leader appends no new proposal (its own or forwarded) while the entries it appended
  /// in its term and has not yet committed hold this many bytes (`entry::wire_size`):
  /// they fail with busy, so a leader that cannot commit does not grow without bound.
  std::size_t max_uncommitted_bytes = 64 << 20;
  /// A follower forwards proposals to the leader it knows (else: not_leader at once).
  bool forward_proposals = true;
  /// A forwarded proposal with no answer from the leader fails with timeout after this.
  duration forward_timeout = std::chrono::milliseconds(1000);
  /// At most this many committed entries are applied per input handled.
  std::size_t max_apply_batch = 1024;

  /// Pre-vote (thesis §9.6): before raising its term a node asks whether it could win; only
  /// with a majority of pre-votes does it start a real election, so a node that was cut off
  /// or restarted does not depose a healthy leader.
  bool pre_vote = true;
  /// Check-quorum (thesis §6.2): a leader that has not heard from a majority within an
  /// election timeout steps down (its pending proposals fail with leadership_lost).
  bool check_quorum = true;
  /// Leader stickiness (thesis §4.2.3): a node that heard from a current leader within the
  /// election timeout neither grants votes nor pre-votes (except for a leadership
  /// transfer), and a leader under check-quorum ignores requests to depose it.
  bool leader_stickiness = true;
  /// Lease reads (thesis §6.4.1): a leader answers reads at once while a majority has
  /// acknowledged it within `election_timeout / clock_drift_bound`. Requires check_quorum
  /// and leader_stickiness.
  bool lease_reads = false;
  /// The promise the user makes about clocks for lease reads: no node's clock runs more
  /// than this factor faster than another's over an election timeout (e.g. 1.1 = 10%).
  double clock_drift_bound = 1.1;
  /// Reads waiting (for a heartbeat round, a first commit, or to be applied); beyond
  /// this a read fails with busy.
  std::size_t max_pending_reads = 1 << 16;

  /// Snapshots (Raft §7), with a snapshot store policy and a state machine that can take
  /// them (raftkit/snapshot.hpp): one every `snapshot_interval` applied entries (0: only on
  /// request); the log is then compacted up to `snapshot_trailing_entries` before the
  /// snapshot's index, so a slightly slow follower is still served from the log.
  std::uint64_t snapshot_interval = 100'000;
  std::uint64_t snapshot_trailing_entries = 5'000;
  /// InstallSnapshot sends a snapshot in chunks of this many bytes, as many in flight as
  /// `max_inflight_bytes` allows.
  std::size_t max_snapshot_chunk_bytes = 1 << 20;

  /// Seeds the generator of election timeouts; mixed with the id so nodes differ.
  std::uint64_t seed = 0;

  /// Throws std::invalid_argument on a configuration that cannot work (set-up misuse).
  void validate() const {
    if (id == no_node) throw std::invalid_argument("raftkit: node_config.id must be non-zero");
    bool self = join && members.empty();
    if (join && !members.empty())
      throw std::invalid_argument("raftkit: a joining node (join) starts with no members of its own");
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (members[i] == no_node) throw std::invalid_argument("raftkit: member id 0 is reserved");
      for (std::size_t j = 0; j < i; ++j)
        if (members[j] == members[i])
          throw std::invalid_argument("raftkit: node_config.members lists a member twice");
      self = self || members[i] == id;
    }
    if (!self) throw std::invalid_argument("raftkit: node_config.members must include id");
    if (election_timeout.count() <= 0 || heartbeat_interval.count() <= 0)
      throw std::invalid_argument("raftkit: timeouts must be positive");
    if (heartbeat_interval >= election_timeout)
      throw std::invalid_argument("raftkit: heartbeat_interval must be below election_timeout");
    if (max_entries_per_message == 0 || max_bytes_per_message == 0 || max_inflight_messages == 0 ||
        max_inflight_bytes == 0 || max_apply_batch == 0)
      throw std::invalid_argument("raftkit: batch and window sizes must be positive");
    if (max_pending_proposals == 0 || max_uncommitted_bytes == 0)
      throw std::invalid_argument("raftkit: max_pending_proposals and max_uncommitted_bytes must be positive");
    if (max_uncommitted_bytes < max_bytes_per_message)
      throw std::invalid_argument("raftkit: max_uncommitted_bytes must hold at least one message (max_bytes_per_message)");
    if (forward_timeout.count() <= 0) throw std::invalid_argument("raftkit: forward_timeout must be positive");
    if (lease_reads && (!check_quorum || !leader_stickiness))
      throw std::invalid_argument("raftkit: lease_reads requires check_quorum and leader_stickiness");
    if (!(clock_drift_bound >= 1.0)) throw std::invalid_argument("raftkit: clock_drift_bound must be at least 1");
    if (max_pending_reads == 0) throw std::invalid_argument("raftkit: max_pending_reads must be positive");
    if (catch_up_rounds == 0 || catch_up_timeout.count() <= 0)
      throw std::invalid_argument("raftkit: catch_up_rounds and catch_up_timeout must be positive");
    if (max_snapshot_chunk_bytes == 0) throw std::invalid_argument("raftkit: max_snapshot_chunk_bytes must be positive");
  }
};

}  // namespace raftkit
