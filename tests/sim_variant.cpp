// One program runs every broken-rule variant: `sim-variants RULE` breaks RULE (a
// raftkit::detail::broken_rule, by name) for this process and sweeps seeds with a fault
// mix under which the simulator finds it. It passes when some seed fails an invariant or
// the linearizability check, and prints how many seeds that took. The engine has these
// switches only when built with RAFTKIT_TEST_BREAKS (see raftkit/detail/test_breaks.hpp);
// the shipped engine has none. One build for all rules keeps the test build small.

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

// An engine assertion becomes a reported failure of that seed, not an abort.
#define RAFTKIT_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : throw std::logic_error(std::string(#cond) + " (" + (msg) + ")"))

#ifndef RAFTKIT_TEST_BREAKS
#error "sim_variant.cpp is built with RAFTKIT_TEST_BREAKS"
#endif
#include "raftkit/sim/runner.hpp"

namespace {

using namespace std::chrono_literals;
using raftkit::detail::broken_rule;

struct variant {
  const char* arg;
  broken_rule rule;
  const char* name;
  void (*mix)(raftkit::sim::run_options&);  // a fault mix under which a sweep finds it
};

void all_faults(raftkit::sim::run_options& o) { o.all_faults(); }

const variant variants[] = {
    {"election_restriction", broken_rule::election_restriction,
     "election restriction compares only the last index (§5.4.1)",
     all_faults},
    {"commit_rule", broken_rule::commit_rule,
     "commit by counting replicas of an earlier term's entry (§5.4.2)",
     [](raftkit::sim::run_options& o) {
      o.crashes = o.reorder = true;
      o.loss = 0.1;
      o.delay = 100ms;
      o.time = 30s;
     }},
    {"stale_truncate", broken_rule::stale_truncate,
     "truncate the log after a stale AppendEntries (§5.3)",
     all_faults},
    {"durable_vote", broken_rule::durable_vote,
     "the vote is not persisted, so a restarted node votes twice in a term (§5.2)",
     [](raftkit::sim::run_options& o) {
      // Pre-vote and stickiness make two candidates in one term rare: without them a sweep
      // finds the double vote in far fewer seeds.
      o.pre_vote = o.check_quorum = o.leader_stickiness = false;
      o.crashes = o.reorder = true;
      o.loss = 0.3;
      o.delay = 50ms;
      o.time = 20s;
     }},
    {"ack_across_terms", broken_rule::ack_across_terms,
     "a follower acknowledges what it verified in an earlier term (hardening finding 1)",
     [](raftkit::sim::run_options& o) {
      o.slow_disk = o.partitions = o.pauses = o.reorder = o.crashes = true;
      o.loss = 0.05;
      o.time = 20s;
     }},
    {"read_index_round", broken_rule::read_index_round,
     "ReadIndex answered without a heartbeat round: a deposed leader serves a stale read (thesis §6.4)",
     [](raftkit::sim::run_options& o) {
      o.partitions = o.reorder = true;
      o.lease_reads = false;
      o.clients = 6;
     }},
    {"lease_drift", broken_rule::lease_drift,
     "lease reads that ignore the clock drift bound, where clocks drift by up to 1.6x (thesis §6.4.1)",
     [](raftkit::sim::run_options& o) {
      o.clock_drift = o.partitions = o.pauses = true;
      o.min_clock_rate = 1.0;
      o.max_clock_rate = 1.6;
      o.clock_drift_bound = 1.7;  // the promise holds; the broken lease does not use it
      o.clients = 6;
     }},
    {"old_snapshot", broken_rule::old_snapshot,
     "a follower installs a snapshot at or below its commit index, moving its state back (§7)",
     [](raftkit::sim::run_options& o) {
      // Duplicated and reordered messages bring a follower the leader's snapshot after it
      // committed past it by the log; one chunk per snapshot installs it at the first copy.
      // The follower then applies entries a second time (found by the applied-entries count).
      o.partitions = o.reorder = true;
      o.dup = 0.2;
      o.clients = 6;
      o.snapshot_chunk_bytes = 1 << 16;
     }},
    {"compact_before_snapshot", broken_rule::compact_before_snapshot,
     "a node compacts its log before the snapshot that covers it is durable (§7)",
     all_faults},  // snapshot writes take time: the checker sees the log compacted past every durable snapshot
    {"joint_commit", broken_rule::joint_commit,
     "commitment during joint consensus by C_new's majority alone (Raft paper §6, thesis §4.3)",
     [](raftkit::sim::run_options& o) {
      // Changes of two voters at once (a swap, two added) make C_new majorities that are no
      // majority of C_old; partitions and loss leave C_old's side behind.
      o.membership = o.partitions = o.reorder = true;
      o.loss = 0.05;
     }},
    {"learner_quorum", broken_rule::learner_quorum,
     "learners counted as voters when committing (thesis §4.2.1)",
     [](raftkit::sim::run_options& o) {
      o.membership = o.partitions = o.reorder = true;
      o.loss = 0.05;
     }},
    {"one_change_at_a_time", broken_rule::one_change_at_a_time,
     "a second membership change accepted while one is in flight (thesis §4.1)",
     [](raftkit::sim::run_options& o) {
      // The operator now and then asks for a second change while one is unanswered; loss
      // and partitions keep the first one's entry uncommitted for a while.
      o.membership = o.partitions = o.reorder = true;
      o.loss = 0.1;
     }},
};

}  // namespace

int main(int argc, char** argv) {
  const variant* v = nullptr;
  for (const auto& c : variants)
    if (argc == 2 && std::strcmp(argv[1], c.arg) == 0) v = &c;
  if (v == nullptr) {
    std::fprintf(stderr, "usage: sim-variants RULE, where RULE is one of:");
    for (const auto& c : variants) std::fprintf(stderr, " %s", c.arg);
    std::fprintf(stderr, "\n");
    return 2;
  }
  raftkit::sim::run_options o;
  v->mix(o);
  raftkit::detail::test_broken_rule = v->rule;
  const char* name = v->name;
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
