#pragma once
/// \file A leader's replication progress for one follower (Raft thesis §3.5, and the
/// probe/replicate states of etcd raft).
///
/// Probing: the match point is unknown; one AppendEntries at a time walks `next` back
/// using the follower's conflict hints. Replicating: the match point is known; several
/// AppendEntries are in flight, bounded in messages and bytes.

#include <algorithm>
#include <cstddef>

#include "raftkit/detail/ring.hpp"
#include "raftkit/types.hpp"

namespace raftkit::detail {

struct progress {
  struct flight {
    index_t last = 0;
    std::size_t bytes = 0;
  };

  progress(node_id peer, std::size_t window) : id(peer) { inflight.reserve(window); }

  node_id id;
  index_t match = 0;
  index_t next = 1;
  bool probing = true;
  bool snapshot = false;  // being sent a snapshot: it needs entries we compacted
  bool probe_sent = false;
  index_t probe_prev = 0;  // prev index of the outstanding probe
  /// Highest index the follower said it holds verified against our log in this term,
  /// durable or not (>= match once known). A slow disk shows as received > match.
  index_t received = 0;
  time_point last_reply{};       // when it last answered us (check-quorum, thesis §6.2)
  std::uint64_t read_ack = 0;    // highest heartbeat round it echoed (ReadIndex, thesis §6.4)
  /// Highest commit index sent to it that it could use (capped by what each message let it
  /// verify), and the highest index it waits to learn committed (proposals it forwarded):
  /// while told < min(commit, wanted, match) and nothing is in flight, it gets a notice.
  index_t commit_told = 0;
  index_t commit_wanted = 0;
  ring<flight> inflight;
  std::size_t inflight_bytes = 0;
  unsigned idle_heartbeats = 0;  // heartbeats with unreceived messages in flight and no progress
  index_t received_at_heartbeat = 0;
  std::uint64_t boot = 0;  // the follower's incarnation its last reply came from (0: none yet)

  /// A new leader knows nothing of the follower: probe from the end of its own log.
  void reset(index_t next_index) {
    match = 0;
    received = 0;
    read_ack = 0;
    commit_told = 0;
    commit_wanted = 0;
    snapshot = false;
    boot = 0;
    to_probe(next_index);
  }
  /// A reply from incarnation `b` of the follower. True if that is not the one before:
  /// the follower restarted, and what it had received but not synced may be gone, so
  /// `received` no longer says what arrived.
  bool note_boot(std::uint64_t b) noexcept {
    const bool restarted = boot != 0 && b != boot;
    boot = b;
    return restarted;
  }
  void to_probe(index_t next_index) {
    probing = true;
    probe_sent = false;
    next = next_index;
    inflight.clear();
    inflight_bytes = 0;
    idle_heartbeats = 0;
  }
  /// A message carrying commit index `c` that lets it verify our log up to `last`.
  void told_commit(index_t c, index_t last) noexcept { commit_told = std::max(commit_told, std::min(c, last)); }
  /// Whether it waits for a commit index that only a notice would bring now: it holds the
  /// entries (match), they are committed, it has not been told, and no AppendEntries to it is
  /// in flight (whose reply would bring the next message, carrying the index, anyway).
  bool commit_notice_due(index_t commit) const noexcept {
    return !probing && !snapshot && inflight.empty() && commit_told < std::min({commit, commit_wanted, match});
  }
  bool can_send(std::size_t max_msgs, std::size_t max_bytes) const noexcept {
    if (snapshot) return false;  // entries wait until the snapshot is installed
    if (probing) return !probe_sent;
    return inflight.size() < max_msgs && inflight_bytes < max_bytes;
  }
  /// Records an AppendEntries covering (next-1, last].
  void sent(index_t last, std::size_t bytes) {
    if (probing) {
      probe_sent = true;
      probe_prev = next - 1;
    }
    inflight.push_back({last, bytes});
    inflight_bytes += bytes;
    next = last + 1;
  }
  /// Any reply of this term that says the follower holds our log up to `r` (not
  /// necessarily durably): messages up to there arrived.
  void note_received(index_t r) {
    if (r > received) {
      received = r;
      idle_heartbeats = 0;
    }
  }
  /// A successful reply: the follower holds, durably, a log matching ours up to `m`.
  void acknowledge(index_t m) {
    note_received(m);
    if (m > match) {
      match = m;
      idle_heartbeats = 0;
    }
    // The probe succeeded once the follower holds everything up to the probed prev;
    // an older success (or one limited by the follower's disk) proves less.
    if (probing && probe_sent && m >= probe_prev) {
      probing = false;
      probe_sent = false;
    }
    if (!probing) next = std::max(next, match + 1);
    while (!inflight.empty() && inflight.front().last <= match) {
      inflight_bytes -= inflight.front().bytes;
      inflight.pop_front();
    }
  }
  /// A rejection matters only if it answers what we are waiting for; a reordered
  /// rejection of something since acknowledged must not move `next` back.
  bool is_current_rejection(index_t rejected_prev) const noexcept {
    if (probing) return probe_sent && rejected_prev == probe_prev;
    return rejected_prev >= match && rejected_prev < next;
  }
  /// Some message in flight has not arrived, and two heartbeats passed with nothing new
  /// arriving: it was lost. Entries that arrived but wait for the follower's disk are not
  /// a stall (resending them would only load the slow follower more).
  bool stalled() const noexcept { return !probing && unreceived() && idle_heartbeats >= 2; }
  bool unreceived() const noexcept { return !inflight.empty() && inflight.back().last > received; }
  /// Where to resume after a stall: after what the follower holds.
  index_t resume_point() const noexcept { return std::max(match, received) + 1; }
  void mark_heartbeat() {
    if (received == received_at_heartbeat && unreceived()) ++idle_heartbeats;
    else if (!unreceived()) idle_heartbeats = 0;
    received_at_heartbeat = received;
  }
};

}  // namespace raftkit::detail
