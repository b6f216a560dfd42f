#pragma once
/// \file Linearizable reads without a log write (Raft thesis §6.4): pending reads, the
/// heartbeat rounds that confirm them, and the lease (§6.4.1).
///
/// A leader answers a read with its commit index once it knows it was still leader when
/// the read arrived. It learns that from a *round*: every message it sends carries the
/// number of the latest round it started, every follower echoes the highest round it has
/// seen from this leader in its replies, and a round is confirmed once a majority (the
/// leader included) has echoed it. A read that arrives while round r is in flight waits
/// for round r + 1, started when r is confirmed, so one round of messages confirms every
/// read that arrived during the previous one: no message per read.
///
/// When a round sent at time t is confirmed, no other leader can be elected before
/// t + election_timeout / drift on the followers' clocks (they refuse votes that long after
/// hearing from a leader, thesis §4.2.3), so the leader holds a lease until then and may
/// answer reads at once.
///
/// A read is complete once this node has applied up to its index: its state machine then
/// answers it linearizably. Followers forward reads to the leader and wait here too.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "raftkit/detail/ring.hpp"
#include "raftkit/types.hpp"

namespace raftkit::detail {

/// `Pending` is what a read waiting for its index holds (the engine's: a completion, or
/// the follower to answer); `Completion` is what waits for apply.
template <class Pending, class Completion>
class read_index_state {
 public:
  /// Reads waiting for a round, for their leader's first commit, or to be applied.
  std::size_t size() const noexcept { return for_round_.size() + for_commit_.size() + for_apply_.size(); }

  // ------------------------------------------------------------ rounds (leader)

  /// Starts a new round sent at `now`; returns its number.
  std::uint64_t begin_round(time_point now) {
    ++latest_;
    sent_.push_back({latest_, now});
    if (sent_.size() > max_tracked_rounds) sent_.pop_front();
    return latest_;
  }
  std::uint64_t latest_round() const noexcept { return latest_; }
  std::uint64_t confirmed_round() const noexcept { return confirmed_; }
  bool round_in_flight() const noexcept { return latest_ > confirmed_; }

  /// A majority has echoed round `r`: returns when the newest round it confirms was sent
  /// (for the lease), or nullopt if it confirms nothing new.
  std::optional<time_point> confirm(std::uint64_t r) {
    if (r <= confirmed_) return std::nullopt;
    confirmed_ = r;
    std::optional<time_point> sent;
    while (!sent_.empty() && sent_.front().first <= r) sent = sent_.pop_front().second;
    return sent;
  }

  /// Forgets rounds and the lease (a new term, or leadership lost).
  void reset_rounds() {
    latest_ = confirmed_ = 0;
    sent_.clear();
    lease_until_ = time_point::min();
  }

  // ------------------------------------------------------------ lease (leader)

  void extend_lease(time_point until) noexcept { lease_until_ = std::max(lease_until_, until); }
  void drop_lease() noexcept { lease_until_ = time_point::min(); }
  bool lease_valid(time_point now) const noexcept { return now < lease_until_; }
  time_point lease_until() const noexcept { return lease_until_; }

  // ------------------------------------------------------------ waiting reads

  /// A read answered with `index` once round `r` is confirmed.
  void wait_for_round(std::uint64_t r, index_t index, Pending p) {
    for_round_.push_back({r, index, std::move(p)});
  }
  /// A read that arrived before the leader committed an entry of its term.
  void wait_for_commit(Pending p) { for_commit_.push_back(std::move(p)); }
  bool waiting_for_commit() const noexcept { return !for_commit_.empty(); }
  /// Whether a read waits for a round after `r`.
  bool waiting_after(std::uint64_t r) const noexcept { return !for_round_.empty() && for_round_.back().round > r; }

  /// Hands every read confirmed by round `confirmed_round()` to `answered(pending&, index)`.
  template <class F>
  void take_confirmed(F&& answered) {
    while (!for_round_.empty() && for_round_.front().round <= confirmed_) {
      waiting w = for_round_.pop_front();
      answered(w.done, w.index);
    }
  }
  /// Hands every read waiting for the term's first commit to `f(pending&)`.
  template <class F>
  void take_waiting_commit(F&& f) {
    auto w = std::move(for_commit_);
    for_commit_.clear();
    for (auto& c : w) f(c);
  }

  /// A read is answered: complete it once this node has applied `index`.
  void wait_for_apply(index_t index, Completion c) { for_apply_.emplace(index, std::move(c)); }
  /// The lowest index a read waits to be applied, if any.
  std::optional<index_t> next_apply() const {
    if (for_apply_.empty()) return std::nullopt;
    return for_apply_.begin()->first;
  }
  /// Completes, through `done(completion&, index)`, every read whose index is applied.
  template <class F>
  void applied(index_t applied, F&& done) {
    while (!for_apply_.empty() && for_apply_.begin()->first <= applied) {
      auto node = for_apply_.extract(for_apply_.begin());
      done(node.mapped(), node.key());
    }
  }

  /// Hands every read not yet answered to `f(pending&)` and forgets it (leadership lost:
  /// reads already answered keep waiting to be applied, their index was confirmed).
  template <class F>
  void clear_unanswered(F&& f) {
    while (!for_round_.empty()) {
      waiting w = for_round_.pop_front();
      f(w.done);
    }
    take_waiting_commit(f);
  }
  /// Hands every read waiting to be applied to `f(completion&)` and forgets it.
  template <class F>
  void clear_answered(F&& f) {
    auto a = std::move(for_apply_);
    for_apply_.clear();
    for (auto& [i, c] : a) f(c);
  }

 private:
  struct waiting {
    std::uint64_t round = 0;
    index_t index = 0;
    Pending done;
  };
  static constexpr std::size_t max_tracked_rounds = 1024;

  std::uint64_t latest_ = 0;
  std::uint64_t confirmed_ = 0;
  ring<std::pair<std::uint64_t, time_point>> sent_;  // send times of unconfirmed rounds
  time_point lease_until_ = time_point::min();
  ring<waiting> for_round_;
  std::vector<Pending> for_commit_;
  std::multimap<index_t, Completion> for_apply_;
};

}  // namespace raftkit::detail
