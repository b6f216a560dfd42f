#pragma once
/// \file Quorum arithmetic: the one place where every majority decision is made.
///
/// Commit (§5.3, §5.4.2), elections and pre-votes (§5.2, thesis §9.6), check-quorum
/// (thesis §6.2) and ReadIndex confirmation (thesis §6.4) all ask one of three questions
/// of a configuration: what index does a majority hold, has a majority voted yes (or no),
/// is a majority active. During joint consensus (C_old,new, Raft paper §6, thesis §4.3) a
/// configuration has two voter sets and every answer needs a majority of *each*; a
/// configuration with one set leaves `outgoing` empty. Learners never appear here.

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

#include "raftkit/detail/test_breaks.hpp"
#include "raftkit/types.hpp"

namespace raftkit::detail {

/// The voters a decision counts: `incoming` always, and `outgoing` too while joint.
struct quorum_config {
  std::vector<node_id> incoming;
  std::vector<node_id> outgoing;  ///< empty unless in joint consensus

  bool joint() const noexcept { return !outgoing.empty(); }
  /// Whether `id` votes in either set.
  bool is_voter(node_id id) const noexcept {
    return std::find(incoming.begin(), incoming.end(), id) != incoming.end() ||
           std::find(outgoing.begin(), outgoing.end(), id) != outgoing.end();
  }
  /// Calls `f(id)` once for every voter of either set.
  template <class F>
  void for_each_voter(F&& f) const {
    for (node_id id : incoming) f(id);
    for (node_id id : outgoing)
      if (std::find(incoming.begin(), incoming.end(), id) == incoming.end()) f(id);
  }
};

/// Majority size of a set of `n` voters.
constexpr std::size_t majority(std::size_t n) noexcept { return n / 2 + 1; }

/// The highest index that a majority of `voters` holds, where `value_of(id)` is what voter
/// `id` holds; an empty set constrains nothing (returns the maximum index). `scratch` is
/// reused storage, so a caller on a hot path allocates nothing.
template <class F>
index_t majority_index(const std::vector<node_id>& voters, F&& value_of, std::vector<index_t>& scratch) {
  if (voters.empty()) return std::numeric_limits<index_t>::max();
  scratch.clear();
  for (node_id id : voters) scratch.push_back(value_of(id));
  const std::size_t q = majority(voters.size());
  std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(q - 1), scratch.end(),
                   std::greater<>());
  return scratch[q - 1];
}

/// The highest index held by a majority of every voter set of `q` (commit, ReadIndex).
template <class F>
index_t committed_index(const quorum_config& q, F&& value_of, std::vector<index_t>& scratch) {
  const index_t in = majority_index(q.incoming, value_of, scratch);
  if (RAFTKIT_BROKEN(joint_commit)) return in;  // test-only: C_new alone decides while joint
  return std::min(in, majority_index(q.outgoing, value_of, scratch));
}

enum class vote_result { pending, won, lost };

/// Tallies one voter set: `vote_of(id)` is true (granted), false (refused) or nullopt (no
/// answer yet). Won once a majority granted, lost once a majority can no longer grant.
template <class F>
vote_result tally(const std::vector<node_id>& voters, F&& vote_of) {
  if (voters.empty()) return vote_result::won;
  std::size_t yes = 0, no = 0;
  for (node_id id : voters) {
    const std::optional<bool> v = vote_of(id);
    if (!v) continue;
    (*v ? yes : no) += 1;
  }
  const std::size_t q = majority(voters.size());
  if (yes >= q) return vote_result::won;
  if (no > voters.size() - q) return vote_result::lost;
  return vote_result::pending;
}

/// Tallies every voter set of `q`: won when each set is won, lost when any is lost.
template <class F>
vote_result tally(const quorum_config& q, F&& vote_of) {
  const vote_result in = tally(q.incoming, vote_of);
  const vote_result out = tally(q.outgoing, vote_of);
  if (in == vote_result::lost || out == vote_result::lost) return vote_result::lost;
  if (in == vote_result::won && out == vote_result::won) return vote_result::won;
  return vote_result::pending;
}

/// Whether a majority of every voter set of `q` satisfies `active(id)` (check-quorum).
template <class Pred>
bool quorum_active(const quorum_config& q, Pred&& active) {
  return tally(q, [&](node_id id) -> std::optional<bool> { return active(id); }) == vote_result::won;
}

}  // namespace raftkit::detail
