// A seed sweep run against an engine built with one safety rule broken (chosen by a
// RAFTKIT_TEST_BREAK_* define). It passes when the simulator catches the broken rule:
// some seed fails an invariant or the linearizability check. It prints how many seeds
// that took. The shipped engine has no such switch; only these test builds do.

#include <cstdio>
#include <stdexcept>
#include <string>

// An engine assertion becomes a reported failure of that seed, not an abort.
#define RAFTKIT_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : throw std::logic_error(std::string(#cond) + " (" + (msg) + ")"))

#include "raftkit/sim/runner.hpp"

int main() {
  using namespace std::chrono_literals;
  raftkit::sim::run_options o;
  const char* name = "";
  // Each broken rule with a fault mix under which a sweep finds it.
#if defined(RAFTKIT_TEST_BREAK_ELECTION_RESTRICTION)
  name = "election restriction compares only the last index (§5.4.1)";
  o.all_faults();
#elif defined(RAFTKIT_TEST_BREAK_COMMIT_RULE)
  name = "commit by counting replicas of an earlier term's entry (§5.4.2)";
  o.crashes = o.reorder = true;
  o.loss = 0.1;
  o.delay = 100ms;
  o.time = 30s;
#elif defined(RAFTKIT_TEST_BREAK_STALE_TRUNCATE)
  name = "truncate the log after a stale AppendEntries (§5.3)";
  o.all_faults();
#elif defined(RAFTKIT_TEST_BREAK_DURABLE_VOTE)
  name = "the vote is not persisted, so a restarted node votes twice in a term (§5.2)";
  // Pre-vote and stickiness make two candidates in one term rare: without them a sweep
  // finds the double vote in far fewer seeds.
  o.pre_vote = o.check_quorum = o.leader_stickiness = false;
  o.crashes = o.reorder = true;
  o.loss = 0.3;
  o.delay = 50ms;
  o.time = 20s;
#elif defined(RAFTKIT_TEST_BREAK_ACK_ACROSS_TERMS)
  name = "a follower acknowledges what it verified in an earlier term (hardening finding 1)";
  o.slow_disk = o.partitions = o.pauses = o.reorder = o.crashes = true;
  o.loss = 0.05;
  o.time = 20s;
#elif defined(RAFTKIT_TEST_BREAK_READ_INDEX_ROUND)
  name = "ReadIndex answered without a heartbeat round: a deposed leader serves a stale read (thesis §6.4)";
  o.partitions = o.reorder = true;
  o.lease_reads = false;
  o.clients = 6;
#elif defined(RAFTKIT_TEST_BREAK_LEASE_DRIFT)
  name = "lease reads that ignore the clock drift bound, where clocks drift by up to 1.6x (thesis §6.4.1)";
  o.clock_drift = o.partitions = o.pauses = true;
  o.min_clock_rate = 1.0;
  o.max_clock_rate = 1.6;
  o.clock_drift_bound = 1.7;  // the promise holds; the broken lease does not use it
  o.clients = 6;
#elif defined(RAFTKIT_TEST_BREAK_OLD_SNAPSHOT)
  name = "a follower installs a snapshot at or below its commit index, moving its state back (§7)";
  // Duplicated and reordered messages bring a follower the leader's snapshot after it
  // committed past it by the log; one chunk per snapshot installs it at the first copy.
  // The follower then applies entries a second time (found by the applied-entries count).
  o.partitions = o.reorder = true;
  o.dup = 0.2;
  o.clients = 6;
  o.snapshot_chunk_bytes = 1 << 16;
#elif defined(RAFTKIT_TEST_BREAK_COMPACT_BEFORE_SNAPSHOT)
  name = "a node compacts its log before the snapshot that covers it is durable (§7)";
  o.all_faults();  // snapshot writes take time: the checker sees the log compacted past every durable snapshot
#elif defined(RAFTKIT_TEST_BREAK_JOINT_COMMIT)
  name = "commitment during joint consensus by C_new's majority alone (Raft paper §6, thesis §4.3)";
  // Changes of two voters at once (a swap, two added) make C_new majorities that are no
  // majority of C_old; partitions and loss leave C_old's side behind.
  o.membership = o.partitions = o.reorder = true;
  o.loss = 0.05;
#elif defined(RAFTKIT_TEST_BREAK_LEARNER_QUORUM)
  name = "learners counted as voters when committing (thesis §4.2.1)";
  o.membership = o.partitions = o.reorder = true;
  o.loss = 0.05;
#elif defined(RAFTKIT_TEST_BREAK_ONE_CHANGE_AT_A_TIME)
  name = "a second membership change accepted while one is in flight (thesis §4.1)";
  // The operator now and then asks for a second change while one is unanswered; loss
  // and partitions keep the first one's entry uncommitted for a while.
  o.membership = o.partitions = o.reorder = true;
  o.loss = 0.1;
#else
#error "define one RAFTKIT_TEST_BREAK_* rule"
#endif
  constexpr std::uint64_t max_seeds = 3000;
  for (std::uint64_t seed = 1; seed <= max_seeds; ++seed) {
    o.seed = seed;
    const auto r = raftkit::sim::run(o);
    if (r.verdict == raftkit::sim::run_verdict::failed) {
      std::printf("broken rule: %s\ncaught after %llu seeds (seed %llu): %s\n", name,
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                  r.failure.substr(0, 300).c_str());
      return 0;
    }
  }
  std::printf("broken rule: %s\nNOT caught in %llu seeds\n", name, static_cast<unsigned long long>(max_seeds));
  return 1;
}
