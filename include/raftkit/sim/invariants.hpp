#pragma once
/// \file sim::invariant_checker: Raft's safety properties (Figure 3 of the paper),
/// checked against a sim::cluster after every step.
///
///  - Election safety: at most one leader per term.
///  - Log matching: two logs with an entry of the same index and term are identical up
///    to it (checked with a hash chained over each log's prefix).
///  - Leader completeness: an entry committed before term T is in the log of every
///    leader of T.
///  - State machine safety: no two nodes apply different entries at one index, also
///    across restarts.
///  - Within one incarnation, commit and applied indexes never decrease; applied never
///    passes commit; no entry is applied twice (the node's count of applied entries never
///    exceeds how far its applied index moved: a state machine that went back and applied
///    again, as to a snapshot older than what it had applied, is seen even when it is
///    level again by the end of the step).
///  - No acknowledged proposal is lost: what a client was told is committed at index i
///    is what every node applies at i.
///  - A leader's match index for a follower of its own term never exceeds the prefix on
///    which their logs agree (a wrong match would count a replica that does not exist).
///  - Replica states agree: when the state machine has `digest()` (raftkit::has_digest),
///    replicas seen at the same applied index have the same digest, whichever
///    incarnation. A difference is reported with the first applied index at which it was
///    seen, the last index at which the two were seen equal, and the cluster's seed.
///
/// With membership changes (thesis chapter 4), the checker reads each node's configuration
/// at every index from its log's config entries (a compacted prefix from the committed
/// ones; the initial voters below the first), and:
///  - Commitment by the configuration in force: every index a leader commits is durable on
///    a majority of the voters of a configuration the leader was in since the last check
///    (both majorities, C_old's and C_new's, when joint). A leader uses the latest
///    configuration in its log, committed or not, and may append one and commit under it
///    within a step: any configuration it held between two checks is accepted. Checked
///    while a node leads the same term (incarnation) across two checks, or steps down
///    within it (a removed leader).
///  - One change at a time: a leader's log holds at most one config entry above the
///    highest index seen committed, or a joint one followed by its C_new (the leave entry
///    a leader appends once the joint one commits, which a new leader may hold before it
///    learns that commit).
///  - A snapshot stores the configuration in force at its index.
///
/// With snapshots (a cluster whose storage has a snapshot store), logs start after a
/// compacted prefix, and:
///  - A compacted prefix is never read: what a log no longer holds (below its
///    first_index()) is taken to be the committed entries there, which the checker
///    recorded when some node committed them; a log that starts after an index no node
///    was seen to commit is reported. (So a cluster must not append, commit and compact
///    an entry within one step: sim::run's clusters have writes that take time.) So log matching and leader completeness go on over
///    whole logs, and a log matching check of the entries that follow a compacted prefix
///    compares them with what other nodes hold at the same (index, term).
///  - A log is compacted only below its node's newest durable snapshot.
///  - Every durable snapshot is at a committed (index, term); with digest(), the state it
///    holds (restored into a state machine made by the cluster's factory) has the digest
///    every replica has at that applied index.
///
/// Work per step is proportional to what changed, so it can run after every event.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "raftkit/membership.hpp"
#include "raftkit/sim/cluster.hpp"
#include "raftkit/snapshot.hpp"

namespace raftkit::sim {

namespace detail {
inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}
inline std::uint64_t hash_bytes(std::span<const std::byte> b) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (std::byte c : b) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ull;
  return h;
}
inline std::uint64_t entry_hash(const entry& e) noexcept {
  return mix(mix(e.term, static_cast<std::uint64_t>(e.type)), hash_bytes(e.payload.bytes()));
}
inline std::string id_list(const std::vector<member_info>& v) {
  std::string s = "{";
  for (const auto& m : v) {
    if (s.size() > 1) s += ',';
    s += std::to_string(m.id);
  }
  return s + "}";
}
/// "{1,2,4}" or, while joint, "{1,2,4}/{1,2,3}" (C_new/C_old); learners after a '+'.
inline std::string describe(const membership& m) {
  std::string s = id_list(m.voters);
  if (m.joint()) s += "/" + id_list(m.outgoing);
  if (!m.learners.empty()) s += "+learners" + id_list(m.learners);
  return s + "@" + std::to_string(m.index);
}
/// Whether `holds(id)` is true for a majority of each voter set of `m`.
template <class Pred>
bool majority_of(const membership& m, Pred&& holds) {
  auto enough = [&](const std::vector<member_info>& set) {
    std::size_t n = 0;
    for (const auto& x : set) n += holds(x.id) ? 1 : 0;
    return n >= set.size() / 2 + 1;
  };
  return enough(m.voters) && (!m.joint() || enough(m.outgoing));
}
}  // namespace detail

/// Checks the invariants of one cluster; call `check()` after every step.
template <class StateMachine, class Storage = memory_storage>
class invariant_checker {
 public:
  explicit invariant_checker(cluster<StateMachine, Storage>& c) : c_(c), nodes_(c.ids().size() + 1) {
    if constexpr (has_digest<StateMachine>)
      RAFTKIT_ASSERT(c.ids().size() <= 64, "digest comparison handles up to 64 nodes");
    for (node_id m : c.initial_members()) initial_.voters.push_back(member_info{m, {}});
    for (node_id id : c.ids()) forget(nodes_[id], id);
  }

  /// Checks every invariant; returns a description of the first violation, if any.
  std::optional<std::string> check() {
    for (node_id id : c_.ids()) {
      if (auto v = check_node(id)) return v;
    }
    for (node_id id : c_.ids()) {
      if (auto v = check_matches(id)) return v;
    }
    if constexpr (cluster_type::has_snapshots) {
      for (node_id id : c_.ids()) {
        if (auto v = check_snapshots(id)) return v;
      }
    }
    if constexpr (has_digest<StateMachine>) {
      for (node_id id : c_.ids()) {
        if (!compare_digests_) break;
        if (auto v = check_digest(id)) return v;
      }
    }
    return std::nullopt;
  }

  /// Turns the comparison of replica digests off (or on again); it is on by default for a
  /// state machine with digest().
  void compare_digests(bool on) noexcept { compare_digests_ = on; }

  /// The nodes the last reported violation is about (for a timeline to point at).
  const std::vector<node_id>& culprits() const noexcept { return culprits_; }

  /// Records that a client was told its proposal committed at `index` with `payload`.
  std::optional<std::string> acknowledged(index_t index, std::span<const std::byte> payload) {
    const std::uint64_t h = detail::hash_bytes(payload);
    auto [it, fresh] = acked_.emplace(index, h);
    if (!fresh && it->second != h)
      return bad({}, "two different proposals were acknowledged at index " + std::to_string(index));
    return verify_acked(index);
  }

  /// The terms in which a leader was seen.
  std::size_t terms_with_leader() const noexcept { return leaders_.size(); }

 private:
  using cluster_type = cluster<StateMachine, Storage>;

  struct node_view {
    unsigned incarnation = 0;
    std::vector<term_t> terms;          // terms[i-1] = term of entry i
    std::vector<std::uint64_t> chain;   // chain[i-1] = hash of entries 1..i
    index_t commit = 0;
    index_t applied = 0;
    term_t leader_checked_term = 0;     // leader completeness checked for this term
    index_t first_unchecked = 1;        // log matching checked below this index
    unsigned digest_incarnation = 0;    // the digest was last sampled in this incarnation
    index_t digest_applied = 0;         // at this applied index
    index_t snapshot_checked = 0;       // its durable snapshots up to here were checked
    index_t durable = 0;                // its store's durable index, at the last look
    std::map<index_t, membership> configs;  // the config entries of its log (0: the initial voters)
    std::optional<membership> latest;   // the configuration in force at the last check
    index_t changed_from = 1;           // the lowest index its last refresh re-read
    term_t leading = 0;                 // the term it led at the last check (0: it did not)
  };

  struct digest_seen {
    std::uint64_t digest = 0;  // the first digest seen at this applied index
    std::uint64_t nodes = 0;   // bit id-1: node id was seen with it
    node_id first = no_node;   // who showed it first
  };

  std::optional<std::string> check_node(node_id id) {
    node_view& v = nodes_[id];
    if (!c_.has_store(id)) return std::nullopt;  // a closed file store: checked when reopened
    const std::string who = "node " + std::to_string(id);
    if (auto gap = refresh_chain(v, c_.store(id)))
      return bad({id}, who + "'s log starts after index " + std::to_string(c_.store(id).first_index() - 1) +
                 " (compacted, or replaced by a snapshot), but no node was seen to commit index " +
                 std::to_string(*gap));
    // Log matching, on every log (a crashed node's disk included): the same (index,
    // term) must always carry the same prefix.
    for (index_t i = v.first_unchecked; i <= v.terms.size(); ++i) {
      auto [it, fresh] = prefixes_.emplace(std::make_pair(i, v.terms[i - 1]), v.chain[i - 1]);
      if (!fresh && it->second != v.chain[i - 1])
        return bad({id}, "log matching violated at index " + std::to_string(i) + " term " +
               std::to_string(v.terms[i - 1]) + " on " + who);
    }
    v.first_unchecked = v.terms.size() + 1;
    v.durable = c_.store(id).durable_index();
    // The configurations this node was in since the last check (for the commit check).
    const std::optional<membership> before = std::move(v.latest);
    v.latest.reset();
    if (!v.configs.empty()) v.latest = v.configs.rbegin()->second;
    if (!c_.is_up(id)) {
      v.leading = 0;
      return std::nullopt;
    }
    auto& n = c_.node(id);

    if (c_.incarnation(id) != v.incarnation) {  // a restart: a new incarnation starts at 0
      v.incarnation = c_.incarnation(id);
      v.commit = v.applied = 0;
      v.leader_checked_term = 0;
      v.leading = 0;
    }

    // Election safety.
    if (n.is_leader()) {
      auto [it, fresh] = leaders_.emplace(n.term(), id);
      if (!fresh && it->second != id)
        return bad({it->second, id}, "two leaders in term " + std::to_string(n.term()) + ": node " +
               std::to_string(it->second) + " and " + who);
    }

    // Commit and applied indexes: monotonic within an incarnation, applied <= commit.
    const index_t commit = n.commit_index();
    const index_t applied = n.applied_index();
    if (commit < v.commit)
      return bad({id}, who + " commit index went back from " + std::to_string(v.commit) + " to " +
             std::to_string(commit));
    if (applied < v.applied)
      return bad({id}, who + " applied index went back from " + std::to_string(v.applied) + " to " +
             std::to_string(applied));
    if (applied > commit)
      return bad({id}, who + " applied " + std::to_string(applied) + " beyond commit " + std::to_string(commit));
    // Each index is applied at most once per incarnation: a snapshot install jumps over
    // entries, it never makes the state machine apply one again.
    if (const index_t start = c_.applied_at_start(id); start + n.counters().applied > applied)
      return bad({id}, who + " applied " + std::to_string(n.counters().applied) + " entries since it started at index " +
                 std::to_string(start) + ", but its applied index is " + std::to_string(applied) +
                 ": it applied an entry twice (its state machine went back, as to a snapshot older than what it had applied)");
    if (commit > v.terms.size())
      return bad({id}, who + " commit index " + std::to_string(commit) + " beyond its log");

    // Committed entries: one entry per index, whichever node reports it (this is also
    // what makes committed entries survive crashes and restarts).
    for (index_t i = v.commit + 1; i <= commit; ++i) {
      if (i > committed_.size()) {
        committed_.push_back({v.chain[i - 1], n.term(), v.terms[i - 1]});
        if (auto c = v.configs.find(i); c != v.configs.end()) committed_configs_.emplace(i, c->second);
      } else if (committed_[i - 1].chain != v.chain[i - 1]) {
        return bad({id}, who + " committed a different entry at index " + std::to_string(i) +
               " than another node did");
      }
      if (auto lost = verify_acked(i)) return lost;
    }
    // Commitment by the configuration in force: only for what this node committed as
    // the leader of one term, from the last check to this one.
    if (v.leading != 0 && v.leading == n.term() && commit > v.commit) {
      if (auto e = check_commit_quorum(id, v, before, commit)) return e;
    }
    v.leading = n.is_leader() ? n.term() : 0;
    v.commit = commit;
    if (n.is_leader()) {
      if (auto e = check_one_change(id, v)) return e;
    }
    // State machine safety: what is applied at i is the committed entry at i.
    for (index_t i = v.applied + 1; i <= applied; ++i) {
      if (i > committed_.size() || committed_[i - 1].chain != v.chain[i - 1])
        return bad({id}, who + " applied an entry at index " + std::to_string(i) + " that is not the committed one");
    }
    v.applied = applied;

    // Leader completeness, once per (leader, term): every entry committed in an earlier
    // term is in this leader's log. (Later checks are covered by log matching, since a
    // leader's log only grows.)
    if (n.is_leader() && v.leader_checked_term != n.term()) {
      v.leader_checked_term = n.term();
      for (index_t i = 1; i <= committed_.size(); ++i) {
        if (committed_[i - 1].term >= n.term()) continue;
        if (i > v.chain.size() || v.chain[i - 1] != committed_[i - 1].chain)
          return bad({id}, "leader completeness violated: " + who + ", leader of term " +
                 std::to_string(n.term()) + ", lacks committed index " + std::to_string(i));
      }
    }
    return std::nullopt;
  }

  /// Starts node `id`'s view: the initial voters, unless it is a spare.
  void forget(node_view& v, node_id id) {
    v = node_view{};
    if (!c_.is_joiner(id)) v.configs.emplace(0, initial_);
  }

  /// Whether node `x` holds the committed entry at `i` durably (or in a snapshot).
  bool holds_durably(node_id x, index_t i) const {
    const node_view& w = nodes_[x];
    if (c_.has_store(x) && c_.store(x).first_index() > i) return true;  // compacted into a snapshot
    return w.durable >= i && i <= w.chain.size() && i <= committed_.size() && w.chain[i - 1] == committed_[i - 1].chain;
  }

  /// Leader `id` moved its commit index from v.commit to `commit`: each of those indexes
  /// must be durable on a majority of a configuration it was in since the last check (the
  /// one then, `before`, or one its log held since: from the latest below what changed).
  std::optional<std::string> check_commit_quorum(node_id id, const node_view& v, const std::optional<membership>& before,
                                                 index_t commit) {
    std::vector<const membership*> in_force;
    if (before) in_force.push_back(&*before);
    auto it = v.configs.lower_bound(v.changed_from);
    if (it != v.configs.begin()) --it;
    for (; it != v.configs.end(); ++it)
      if (!before || it->first != before->index || !it->second.same_members(*before)) in_force.push_back(&it->second);
    if (in_force.empty()) return std::nullopt;  // no configuration: it cannot have led
    for (index_t i = v.commit + 1; i <= commit; ++i) {
      auto held = [&](node_id x) { return x < nodes_.size() && holds_durably(x, i); };
      if (std::any_of(in_force.begin(), in_force.end(), [&](const membership* m) { return detail::majority_of(*m, held); }))
        continue;
      std::string holders, configs;
      for (node_id x : c_.ids())
        if (held(x)) holders += (holders.empty() ? "" : ",") + std::to_string(x);
      for (const membership* m : in_force) configs += (configs.empty() ? "" : ", ") + detail::describe(*m);
      return bad({id}, "node " + std::to_string(id) + ", leader of term " + std::to_string(v.leading) +
                 ", committed index " + std::to_string(i) + " held durably only by {" + holders +
                 "}: not a majority of any configuration it was in since the last check (" + configs + ")");
    }
    return std::nullopt;
  }

  /// One change at a time (thesis §4.1): leader `id`'s log holds at most one config entry
  /// above the highest index seen committed, or a joint one followed by its leave entry.
  std::optional<std::string> check_one_change(node_id id, const node_view& v) {
    std::vector<const membership*> above;
    for (auto it = v.configs.upper_bound(committed_.size()); it != v.configs.end(); ++it) above.push_back(&it->second);
    if (above.size() <= 1) return std::nullopt;
    if (above.size() == 2 && above[0]->joint() && !above[1]->joint() && above[0]->voter_ids() == above[1]->voter_ids())
      return std::nullopt;
    std::string configs;
    for (const membership* m : above) configs += (configs.empty() ? "" : ", ") + detail::describe(*m);
    return bad({id}, "node " + std::to_string(id) + ", leader of term " + std::to_string(c_.node(id).term()) +
               ", holds " + std::to_string(above.size()) + " config entries above the committed index " +
               std::to_string(committed_.size()) + ": " + configs + " (one membership change at a time)");
  }

  /// The configuration in force at index `i` by what was committed (none before any).
  const membership* committed_config_at(index_t i) const {
    auto it = committed_configs_.upper_bound(i);
    return it == committed_configs_.begin() ? nullptr : &std::prev(it)->second;
  }

  /// Each follower's match index on leader `id` is a prefix both logs share. Only for a
  /// follower still in the leader's term: one that moved on may since have been repaired
  /// by a newer leader, which the old one cannot know.
  std::optional<std::string> check_matches(node_id id) {
    if (!c_.is_up(id) || !c_.node(id).is_leader() || !c_.has_store(id)) return std::nullopt;
    auto& n = c_.node(id);
    const node_view& lv = nodes_[id];
    for (node_id f : c_.ids()) {
      if (f == id || !c_.has_store(f)) continue;
      const index_t m = n.match_index(f);
      if (m == 0) continue;
      if (c_.store(f).load_hard_state().term != n.term()) continue;
      const node_view& fv = nodes_[f];
      const bool agree = m <= lv.chain.size() && m <= fv.chain.size() && lv.chain[m - 1] == fv.chain[m - 1];
      if (!agree)
        return bad({id, f}, "leader " + std::to_string(id) + " of term " + std::to_string(n.term()) +
               " has match index " + std::to_string(m) + " for node " + std::to_string(f) +
               ", but their logs do not agree up to it");
    }
    return std::nullopt;
  }

  /// An acknowledged proposal must be the committed entry at its index.
  std::optional<std::string> verify_acked(index_t i) {
    auto it = acked_.find(i);
    if (it == acked_.end() || i > committed_.size()) return std::nullopt;
    // The committed chain cannot be compared with a payload hash directly; compare the
    // payload of any node holding the committed entry.
    for (node_id id : c_.ids()) {
      if (!c_.has_store(id)) continue;
      auto& store = c_.store(id);
      const node_view& v = nodes_[id];
      if (i < store.first_index() || i > store.last_index() || i > v.chain.size()) continue;
      if (v.chain[i - 1] != committed_[i - 1].chain) continue;
      if (detail::hash_bytes(store.at(i).payload.bytes()) != it->second)
        return bad({id}, "acknowledged proposal at index " + std::to_string(i) + " was lost: another entry committed there");
      return std::nullopt;
    }
    return std::nullopt;
  }

  std::optional<std::string> bad(std::initializer_list<node_id> nodes, std::string what) {
    culprits_.assign(nodes.begin(), nodes.end());
    return what;
  }

  /// Replicas at the same applied index hold the same state: the first digest seen at an
  /// index is kept with the nodes seen to agree with it, and every later sighting of that
  /// index, by any node or incarnation, must match. A replica is sampled when its applied
  /// index moved since the last step, so digest() runs at most once per node per step.
  std::optional<std::string> check_digest(node_id id) {
    if (!c_.is_up(id)) return std::nullopt;
    node_view& v = nodes_[id];
    auto& n = c_.node(id);
    const index_t applied = n.applied_index();
    if (v.digest_incarnation == c_.incarnation(id) && v.digest_applied == applied) return std::nullopt;
    v.digest_incarnation = c_.incarnation(id);
    v.digest_applied = applied;
    return record_digest(id, applied, static_cast<std::uint64_t>(n.state_machine().digest()), "");
  }

  /// Records that node `id` showed digest `d` at applied index `applied` (its replica, or
  /// what `whose` names: "'s snapshot at index 7"); reports a difference from what was
  /// seen there before.
  std::optional<std::string> record_digest(node_id id, index_t applied, std::uint64_t d, const std::string& whose) {
    const std::uint64_t me = std::uint64_t{1} << (id - 1);
    auto [it, fresh] = digests_.emplace(applied, digest_seen{d, me, id});
    if (fresh) return std::nullopt;
    if (it->second.digest == d) {
      it->second.nodes |= me;
      return std::nullopt;
    }
    const node_id other = it->second.first;
    const std::uint64_t both = me | (std::uint64_t{1} << (other - 1));
    std::optional<index_t> agreed;
    for (auto e = std::make_reverse_iterator(it); e != digests_.rend(); ++e) {
      if ((e->second.nodes & both) == both) {
        agreed = e->first;
        break;
      }
    }
    std::ostringstream m;
    m << "replica states differ at applied index " << applied << ": node " << id << whose << " has digest 0x" << std::hex << d << ", node " << other << " had 0x" << it->second.digest << std::dec;
    if (applied == 0)
      m << "; node " << id << " holds state before applying any entry (kept from before a restart, or not "
        << "made afresh by the state machine factory)";
    else if (agreed)
      m << "; they were last seen equal at index " << *agreed << ", so the first command they applied differently is at index "
        << *agreed + 1 << (*agreed + 1 < applied ? " to " + std::to_string(applied) : std::string());
    else
      m << "; they were never seen equal before";
    m << " (seed " << c_.options().seed << ")";
    return bad({id, other}, m.str());
  }

  /// Recomputes the cached terms and chained hashes from the lowest changed index. An
  /// index below the store's first_index() is never read from it: a prefix compacted since
  /// the last look keeps what was cached (those entries were read while the log held them);
  /// one that changed meanwhile (a log replaced by a snapshot) is the committed entries
  /// there. Returns the first such index no node was seen to commit, if any.
  template <class Store>
  std::optional<index_t> refresh_chain(node_view& v, Store& store) {
    // A store that reports what changed is re-read from there; another from the start.
    index_t from = 1;
    if constexpr (requires { store.take_changed_from(); }) from = store.take_changed_from();
    const index_t first = store.first_index();
    const index_t last = store.last_index();
    index_t start = std::min<index_t>(from, v.terms.size() + 1);
    start = std::max<index_t>(start, 1);
    v.terms.resize(start - 1);
    v.chain.resize(start - 1);
    v.first_unchecked = std::min<index_t>(v.first_unchecked, start);
    v.changed_from = start;
    v.configs.erase(v.configs.lower_bound(start), v.configs.end());
    for (index_t i = start; i < first; ++i) {
      if (i > committed_.size()) return i;
      v.terms.push_back(committed_[i - 1].entry_term);
      v.chain.push_back(committed_[i - 1].chain);
      if (auto c = committed_configs_.find(i); c != committed_configs_.end()) v.configs.emplace(i, c->second);
    }
    for (index_t i = std::max(start, first); i <= last; ++i) {
      const entry& e = store.at(i);
      const std::uint64_t prev = i == 1 ? 0 : v.chain[i - 2];
      v.terms.push_back(e.term);
      v.chain.push_back(detail::mix(prev, detail::entry_hash(e)));
      if (e.type == entry_type::config) {
        if (auto m = raftkit::detail::decode_membership(e.payload.bytes())) {
          m->index = i;
          v.configs.emplace(i, std::move(*m));
        }
      }
    }
    return std::nullopt;
  }

  /// Node `id`'s snapshots: its log is compacted only below its newest durable snapshot;
  /// each durable snapshot is at a committed (index, term) and, with digest(), holds the
  /// state replicas have at that index (see check_digest).
  std::optional<std::string> check_snapshots(node_id id) {
    if constexpr (cluster_type::has_snapshots) {
      if (!c_.has_store(id)) return std::nullopt;
      node_view& v = nodes_[id];
      const std::string who = "node " + std::to_string(id);
      const auto kept = c_.snapshots(id).kept();
      const index_t newest = kept.empty() ? 0 : kept.back().index;
      const index_t compacted = c_.store(id).first_index() - 1;
      if (compacted > newest)
        return bad({id}, who + " compacted its log up to index " + std::to_string(compacted) +
                   ", but its newest durable snapshot is " +
                   (newest ? "at index " + std::to_string(newest) : std::string("none")) + ": entries " +
                   std::to_string(newest + 1) + " to " + std::to_string(compacted) + " are in no durable snapshot");
      for (const snapshot_meta& m : kept) {
        if (m.index <= v.snapshot_checked) continue;
        v.snapshot_checked = m.index;
        const std::string what = who + "'s snapshot at index " + std::to_string(m.index) + " term " + std::to_string(m.term);
        if (m.index > committed_.size() || committed_[m.index - 1].entry_term != m.term)
          return bad({id}, what + " is not of a committed entry" +
                     (m.index <= committed_.size() ? " (the committed entry there has term " +
                                                         std::to_string(committed_[m.index - 1].entry_term) + ")"
                                                   : std::string(" (no node was seen to commit that index)")));
        {
          const membership* want = committed_config_at(m.index);
          if (!want) want = &initial_;
          const auto got = raftkit::detail::decode_membership(m.config);
          if (!got || got->voter_ids() != want->voter_ids() || got->outgoing_ids() != want->outgoing_ids() ||
              detail::id_list(got->learners) != detail::id_list(want->learners))
            return bad({id}, what + " stores the configuration " + (got ? detail::describe(*got) : std::string("(malformed)")) +
                       ", but the one in force at its index is " + detail::describe(*want));
        }
        if constexpr (has_digest<StateMachine> && snapshottable<StateMachine>) {
          if (!compare_digests_) continue;
          StateMachine sm = c_.make_state_machine(id);
          auto src = c_.snapshots(id).open(m);
          std::error_code ec = src.error();
          if (!ec) {
            snapshot_reader r(src);
            ec = raftkit::detail::call_for_error([&] { return sm.restore(r); }, errc::snapshot_failed);
            if (!ec) ec = r.error();
          }
          if (ec) return bad({id}, what + " cannot be restored: " + ec.message());
          if (auto d = record_digest(id, m.index, static_cast<std::uint64_t>(sm.digest()),
                                     "'s snapshot at index " + std::to_string(m.index)))
            return d;
        }
      }
    } else {
      (void)id;
    }
    return std::nullopt;
  }

  struct committed_entry {
    std::uint64_t chain = 0;
    term_t term = 0;        // a term in which it was seen committed
    term_t entry_term = 0;  // the entry's own term
  };

  cluster<StateMachine, Storage>& c_;
  std::vector<node_view> nodes_;
  std::map<term_t, node_id> leaders_;
  std::map<std::pair<index_t, term_t>, std::uint64_t> prefixes_;
  std::vector<committed_entry> committed_;
  std::map<index_t, membership> committed_configs_;  // config entries at committed indexes
  membership initial_;                               // the cluster's initial voters
  std::map<index_t, std::uint64_t> acked_;
  std::map<index_t, digest_seen> digests_;
  std::vector<node_id> culprits_;
  bool compare_digests_ = true;
};

}  // namespace raftkit::sim
