#pragma once
/// \file Forwarded proposals: a follower's table of what it sent to the leader, and the
/// leader's memory of what it answered.
///
/// A follower forwards proposals in batches (one forward_proposal message carries many
/// entries with consecutive request ids). Until the leader answers, a batch waits in
/// `unanswered` (ordered by request id, which is also the order of their deadlines, since
/// every batch gets the same timeout from a monotonic clock: the earliest deadline is
/// always the first one). Once the leader says where the entries went, each proposal
/// waits in `placed` by log index, and applying entry i completes it in O(1) (the
/// smallest index waiting is the first one).

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "raftkit/detail/ring.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/types.hpp"

namespace raftkit::detail {

/// A follower's forwarded proposals (see the file comment). `Completion` is the engine's
/// completion type.
template <class Completion>
class forward_table {
 public:
  struct batch {
    std::vector<Completion> done;   ///< one per proposal, in request id order
    time_point deadline{};
    std::uint64_t leader_boot = 0;  ///< the incarnation of the leader it was sent to
  };
  struct placed_proposal {
    Completion done;
    term_t term = 0;  ///< the term of the leader that placed it at this index
  };

  /// Proposals waiting (unanswered or placed): the follower's bound applies to this.
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  /// Records a batch whose first request id is `first_rid`.
  void add(std::uint64_t first_rid, batch b) {
    size_ += b.done.size();
    unanswered_.emplace(first_rid, std::move(b));
  }

  /// The batch that starts at `first_rid`, still unanswered, or nullptr.
  batch* find(std::uint64_t first_rid) {
    auto it = unanswered_.find(first_rid);
    return it == unanswered_.end() ? nullptr : &it->second;
  }

  /// Removes an unanswered batch and returns it (to fail it).
  batch take(std::uint64_t first_rid) {
    auto it = unanswered_.find(first_rid);
    batch b = std::move(it->second);
    unanswered_.erase(it);
    size_ -= b.done.size();
    return b;
  }

  /// The leader placed batch `first_rid` at indexes `index`, `index + 1`, ... of `term`.
  /// Proposals placed at or below `applied` were applied before the answer came: they are
  /// handed to `too_late` (their result cannot be told from another's).
  template <class TooLate>
  void place(std::uint64_t first_rid, index_t index, term_t term, index_t applied, TooLate&& too_late) {
    batch b = take(first_rid);
    for (std::size_t k = 0; k < b.done.size(); ++k) {
      const index_t at = index + k;
      if (at <= applied) {
        too_late(b.done[k], at);
        continue;
      }
      // A second answer for the same index (from another leader, after a change) replaces
      // nothing: the first placed proposal there is completed when it applies, the other
      // fails as outcome unknown.
      auto [it, fresh] = placed_.emplace(at, placed_proposal{std::move(b.done[k]), term});
      if (!fresh) too_late(b.done[k], at);
      else ++size_;
    }
  }

  /// The earliest deadline of an unanswered batch, or time_point::max().
  time_point next_deadline() const noexcept {
    return unanswered_.empty() ? time_point::max() : unanswered_.begin()->second.deadline;
  }

  /// Hands every unanswered batch whose deadline passed to `expired(batch&)`.
  template <class F>
  void expire(time_point now, F&& expired) {
    while (!unanswered_.empty() && unanswered_.begin()->second.deadline <= now) {
      batch b = take(unanswered_.begin()->first);
      expired(b);
    }
  }

  /// Entry `index` of `term` was applied with `result`: completes the proposal placed
  /// there (if any), and fails as outcome unknown any placed below it that never applied
  /// (which cannot happen while indexes are applied in order, but costs nothing to handle).
  template <class Done, class Lost>
  void applied(index_t index, term_t term, Done&& done, Lost&& lost) {
    while (!placed_.empty() && placed_.begin()->first <= index) {
      auto it = placed_.begin();
      placed_proposal p = std::move(it->second);
      const bool here = it->first == index && p.term == term;
      placed_.erase(it);
      --size_;
      if (here) done(p.done);
      else lost(p.done);
    }
  }

  /// Hands every waiting proposal to `f(completion&, index)` (index 0 when unanswered) and
  /// forgets them.
  template <class F>
  void clear(F&& f) {
    auto u = std::move(unanswered_);
    auto p = std::move(placed_);
    unanswered_.clear();
    placed_.clear();
    size_ = 0;
    for (auto& [rid, b] : u)
      for (auto& c : b.done) f(c, index_t{0});
    for (auto& [i, pp] : p) f(pp.done, i);
  }

 private:
  std::map<std::uint64_t, batch> unanswered_;
  std::map<index_t, placed_proposal> placed_;
  std::size_t size_ = 0;
};

/// A leader's answers to recent forwarded batches, so every copy of one batch (the
/// network may deliver it twice, before and after a change of leader) gets the answer the
/// first copy got: a follower never reports "not applied" for a command that was in fact
/// appended, and nothing is appended twice. Bounded: the oldest answers are forgotten.
class forward_answers {
 public:
  struct answer {
    errc refused{};    ///< errc{} when appended
    index_t index = 0; ///< where the batch's first entry went
    term_t term = 0;
  };

  explicit forward_answers(std::size_t capacity = 1 << 14) : capacity_(capacity) {}

  const answer* find(node_id from, std::uint64_t first_rid) const {
    auto it = answers_.find({from, first_rid});
    return it == answers_.end() ? nullptr : &it->second;
  }

  void remember(node_id from, std::uint64_t first_rid, answer a) {
    if (!answers_.emplace(std::make_pair(from, first_rid), a).second) return;
    order_.push_back({from, first_rid});
    if (order_.size() > capacity_) answers_.erase(order_.pop_front());
  }

 private:
  std::size_t capacity_;
  std::map<std::pair<node_id, std::uint64_t>, answer> answers_;
  ring<std::pair<node_id, std::uint64_t>> order_;
};

}  // namespace raftkit::detail
