#pragma once
/// \file InstallSnapshot state (Raft §7, thesis chapter 5): a leader's chunked send to one
/// follower, and a follower's install in progress.
///
/// The leader streams the snapshot in chunks, several in flight within the follower's byte
/// window; the follower answers each chunk with the number of bytes it holds in order, so a
/// lost, duplicated or reordered chunk costs a resend from that offset, never a restart.
/// A transfer restarts from 0 when a newer snapshot replaces the one being sent, and is
/// abandoned on a term change (the follower's sink is aborted; the leader's state goes).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "raftkit/snapshot_store.hpp"
#include "raftkit/types.hpp"

namespace raftkit::detail {

/// A leader's transfer of one snapshot to one follower.
template <class Source>
struct snapshot_send {
  explicit snapshot_send(Source s) : source(std::move(s)), meta(source.meta()) {}

  Source source;
  snapshot_meta meta;
  std::uint64_t sent = 0;   ///< next offset to send
  std::uint64_t acked = 0;  ///< bytes the follower said it holds
  bool sent_last = false;   ///< the final chunk went out (resent after a stall)
  unsigned idle_heartbeats = 0;
  std::uint64_t acked_at_heartbeat = 0;
  /// Chunk buffers kept for reuse: a transport that encodes a message when it is sent (as
  /// tcp_transport does) lets go of the chunk at once, so one buffer serves the whole
  /// transfer instead of an allocation (zero-filled, page-faulted, freed) per chunk.
  std::vector<shared_bytes> spare;
  static constexpr std::size_t max_spare = 4;

  /// A buffer of `n` bytes to fill and send: a spare one that nothing else holds any more
  /// (a message still in flight keeps its chunk intact), else a new one.
  shared_bytes chunk_buffer(std::size_t n) {
    if (n == 0) return {};
    for (shared_bytes& b : spare) {
      if (b.size() != n || b.use_count() != 1) continue;
      // Whoever released it did so with acq_rel; this orders its last reads before our writes.
      std::atomic_thread_fence(std::memory_order_acquire);
      return b;
    }
    shared_bytes b = shared_bytes::allocate(n);
    if (spare.size() < max_spare) spare.push_back(b);
    return b;
  }

  /// More may be sent: the window (`window` bytes beyond what is acknowledged) has room.
  bool can_send(std::uint64_t window) const noexcept {
    if (sent_last) return false;
    return sent - acked < std::max<std::uint64_t>(window, 1);
  }
  /// The follower holds `offset` bytes, in order. Chunks beyond it may still be on their
  /// way (a window of them), so a smaller offset is only news when it is below what it
  /// held before: it started again (a new sink after a crash, or it dropped a bad one).
  void acknowledge(std::uint64_t offset) noexcept {
    offset = std::min(offset, meta.size);
    if (offset > acked) {
      acked = offset;
      // A late reply may acknowledge more than was sent since a stall reset `sent` (the
      // chunks were not lost after all): resume after what the follower holds.
      sent = std::max(sent, acked);
      idle_heartbeats = 0;
    } else if (offset < acked) {
      acked = sent = offset;
      sent_last = false;
    }
  }
  /// Called at each heartbeat: two with nothing acknowledged and chunks out means they
  /// were lost; resend from what the follower holds.
  void heartbeat() noexcept {
    if (acked == acked_at_heartbeat && (sent > acked || sent_last)) {
      if (++idle_heartbeats >= 2) {
        sent = acked;
        sent_last = false;
        idle_heartbeats = 0;
      }
    } else {
      idle_heartbeats = 0;
    }
    acked_at_heartbeat = acked;
  }
};

/// A follower's install in progress: the snapshot's meta as the leader announced it, and
/// the sink receiving it.
template <class Sink>
struct snapshot_install {
  snapshot_meta meta;
  Sink sink;
};

}  // namespace raftkit::detail
