#pragma once
/// \file Test-only switches that break one safety rule of the engine, so that the
/// simulator's variant sweeps (tests/sim_variant.cpp) can show each rule is checked.
///
/// A normal build has no switch: `RAFTKIT_BROKEN(rule)` is the constant `false` and the
/// broken branch is discarded at compile time. A build that defines `RAFTKIT_TEST_BREAKS`
/// gets one process-wide variable naming the rule broken (none by default), so a single
/// test program runs every variant, chosen on its command line, instead of one build of
/// the whole simulator per rule.

#ifdef RAFTKIT_TEST_BREAKS

namespace raftkit::detail {

enum class broken_rule {
  none,
  election_restriction,     ///< §5.4.1: compare only the last index
  commit_rule,              ///< §5.4.2: commit an earlier term's entry by counting replicas
  stale_truncate,           ///< §5.3: truncate after a stale AppendEntries
  durable_vote,             ///< §5.2: the vote is not persisted
  ack_across_terms,         ///< acknowledge what was verified in an earlier term
  read_index_round,         ///< thesis §6.4: ReadIndex without a heartbeat round
  lease_drift,              ///< thesis §6.4.1: lease without the clock drift bound
  old_snapshot,             ///< §7: install a snapshot at or below the commit index
  compact_before_snapshot,  ///< §7: compact before the covering snapshot is durable
  joint_commit,             ///< thesis §4.3: commit by C_new's majority alone while joint
  learner_quorum,           ///< thesis §4.2.1: learners count toward quorums
  one_change_at_a_time,     ///< thesis §4.1: a second change while one is in flight
};

/// The rule this process breaks; set once, before any node runs.
inline broken_rule test_broken_rule = broken_rule::none;

}  // namespace raftkit::detail

#define RAFTKIT_BROKEN(rule) (::raftkit::detail::test_broken_rule == ::raftkit::detail::broken_rule::rule)

#else

#define RAFTKIT_BROKEN(rule) false

#endif
