#pragma once
/// \file A node's configuration.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit {

/// How a node is set up. Times are in the clock policy's nanoseconds.
struct node_config {
  /// This node's id (non-zero).
  node_id id = no_node;
  /// Every voting member of the cluster, this node included.
  std::vector<node_id> members;

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

  /// Seeds the generator of election timeouts; mixed with the id so nodes differ.
  std::uint64_t seed = 0;

  /// Throws std::invalid_argument on a configuration that cannot work (set-up misuse).
  void validate() const {
    if (id == no_node) throw std::invalid_argument("raftkit: node_config.id must be non-zero");
    bool self = false;
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
  }
};

}  // namespace raftkit
