#pragma once
/// \file Error codes for expected outcomes, in their own std::error_category, and the one
/// rule that tells a client whether a failed command may still have been applied.
///
/// Every error a proposal (or a read) completes with falls in one of two classes:
///
/// | class                  | codes                                                         | what a client may do            |
/// |------------------------|---------------------------------------------------------------|---------------------------------|
/// | definitely not applied | not_leader, dropped, busy, bad_message, locked, too_large, stopped, transferring, unknown_member, not_supported | retry (elsewhere, later, smaller) |
/// | outcome unknown        | timeout, shutting_down, leadership_lost, corrupt_log, io_error, no_space, apply_failed, and any code of another category | retry only if the command is idempotent, or read first to learn whether it applied |
///
/// A code is in the first class only when the command was refused before it entered any
/// log: no node can apply it later. Anything that fails after the command was appended
/// somewhere (the leader stopped, lost leadership, its disk failed, no answer came in
/// time) is *outcome unknown*: the entry may still commit and apply on every replica.
/// `may_have_applied(ec)` is the one place that encodes this table; clients, the Asio
/// driver, raftkit-kv and the simulator's history recorder all use it.

#include <string>
#include <system_error>

namespace raftkit {

/// Expected outcomes of raftkit operations. Values are stable: they appear on the
/// wire (forwarded proposals) and in logs. See the file comment for which ones mean the
/// command may have applied.
enum class errc {
  not_leader = 1,       ///< not applied: this node is not the leader; see the leader hint
  dropped = 2,          ///< not applied: refused because a queue was full before it entered a log
  timeout = 3,          ///< outcome unknown: no answer in time
  busy = 4,             ///< not applied: too many pending proposals or uncommitted bytes; retry later
  shutting_down = 5,    ///< outcome unknown: the node stopped while the command was pending
  leadership_lost = 6,  ///< outcome unknown: leadership changed before the entry applied
  corrupt_log = 7,      ///< a log record failed verification (outcome unknown for a pending command)
  io_error = 8,         ///< a write or fsync failed; the store is unusable (outcome unknown)
  bad_message = 9,      ///< not applied: a malformed, foreign or undecodable message
  no_space = 10,        ///< the disk is full (outcome unknown for a pending command)
  locked = 11,          ///< not applied: the data directory is in use by another process
  too_large = 12,       ///< not applied: a request or frame exceeds the configured maximum
  stopped = 13,         ///< not applied: the node had already stopped (see its error() for why)
  apply_failed = 14,    ///< outcome unknown: the state machine threw; the node halted
  transferring = 15,    ///< not applied: a leadership transfer is in progress; retry at the new leader
  unknown_member = 16,  ///< not applied: the request names a node that is not a member
  not_supported = 17,   ///< not applied: the node's configuration does not allow this request
  stale_snapshot = 18,  ///< a newer snapshot is already committed (or the one asked for is gone); nothing changed
  corrupt_snapshot = 19,///< a snapshot file failed verification
  snapshot_failed = 20, ///< the state machine failed to write or restore a snapshot
  membership_change_in_progress = 21, ///< not applied: another membership change is not finished yet; retry after it
  invalid_membership_change = 22,     ///< not applied: the change does not fit the configuration (a member added twice, no voter left...)
  catch_up_failed = 23,  ///< the new voter did not catch up in time; it stays a learner (not promoted)
};

namespace detail {
class errc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "raftkit"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_leader: return "not the leader";
      case errc::dropped: return "request dropped";
      case errc::timeout: return "timed out; outcome unknown";
      case errc::busy: return "too many pending proposals";
      case errc::shutting_down: return "node shutting down; outcome unknown";
      case errc::leadership_lost: return "leadership lost; outcome unknown";
      case errc::corrupt_log: return "corrupt log";
      case errc::io_error: return "I/O error";
      case errc::bad_message: return "bad message";
      case errc::no_space: return "no space left on device";
      case errc::locked: return "data directory locked by another process";
      case errc::too_large: return "too large";
      case errc::stopped: return "node stopped; request not accepted";
      case errc::apply_failed: return "the state machine failed to apply a committed entry";
      case errc::transferring: return "leadership transfer in progress";
      case errc::unknown_member: return "not a member of the cluster";
      case errc::not_supported: return "not supported by this node's configuration";
      case errc::stale_snapshot: return "a newer snapshot exists";
      case errc::corrupt_snapshot: return "corrupt snapshot";
      case errc::snapshot_failed: return "the state machine failed to write or restore a snapshot";
      case errc::membership_change_in_progress: return "another membership change is in progress";
      case errc::invalid_membership_change: return "invalid membership change";
      case errc::catch_up_failed: return "the new member did not catch up with the leader's log; it stays a learner";
    }
    return "unknown raftkit error";
  }
};
}  // namespace detail

/// The category of raftkit::errc values.
inline const std::error_category& raftkit_category() noexcept {
  static const detail::errc_category cat;
  return cat;
}

/// Makes an error_code from a raftkit::errc (found by ADL).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), raftkit_category()};
}

/// Whether a command that completed with `ec` may have been (or may still be) applied:
/// true for success and for every *outcome unknown* code (and for codes of other
/// categories, which raftkit cannot vouch for); false only for the *definitely not
/// applied* codes of the file comment's table.
inline bool may_have_applied(std::error_code ec) noexcept {
  if (!ec || ec.category() != raftkit_category()) return true;
  switch (static_cast<errc>(ec.value())) {
    case errc::not_leader:
    case errc::dropped:
    case errc::busy:
    case errc::bad_message:
    case errc::locked:
    case errc::too_large:
    case errc::stopped:
    case errc::transferring:
    case errc::unknown_member:
    case errc::not_supported:
    case errc::membership_change_in_progress:
    case errc::invalid_membership_change:
    case errc::catch_up_failed:
      return false;
    default:
      return true;
  }
}

}  // namespace raftkit

template <>
struct std::is_error_code_enum<raftkit::errc> : std::true_type {};
