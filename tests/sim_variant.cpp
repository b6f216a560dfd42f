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
  o.crashes = o.reorder = true;
  o.loss = 0.3;
  o.delay = 50ms;
  o.time = 20s;
#else
#error "define one RAFTKIT_TEST_BREAK_* rule"
#endif
  constexpr std::uint64_t max_seeds = 3000;
  for (std::uint64_t seed = 1; seed <= max_seeds; ++seed) {
    o.seed = seed;
    const auto r = raftkit::sim::run(o);
    if (!r.passed) {
      std::printf("broken rule: %s\ncaught after %llu seeds (seed %llu): %s\n", name,
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                  r.failure.substr(0, 300).c_str());
      return 0;
    }
  }
  std::printf("broken rule: %s\nNOT caught in %llu seeds\n", name, static_cast<unsigned long long>(max_seeds));
  return 1;
}
