// raftkit-sim: seeded simulations of a raftkit cluster running the key-value store
// (sim::kv_scenario) under faults, or a linearizability check of a history file.
//
//   raftkit-sim --seed 1                      one run with every fault kind on
//   raftkit-sim --seeds 1-1000 --nodes 5      a sweep, on every core
//   raftkit-sim --seed 7 --crashes --loss 0.1 only the faults named
//   raftkit-sim --seed 7 --timeline t.html    the run as a page
//   raftkit-sim --check-history h.jsonl       exit 0 linearizable, 1 not, 2 malformed,
//                                             3 inconclusive
//
// Everything is sim::main's (raftkit/sim/main.hpp); --help lists the options. A run or
// sweep exits 1 if any seed failed. A seed whose linearizability check could not decide
// is inconclusive, not failed: it gets its own line and a warning, and the exit code
// stays 0 unless --strict (then 3). Bad usage exits 2.

#include "raftkit/sim/main.hpp"  // first: an engine assertion fails the seed, not the sweep

#include "raftkit/sim/kv.hpp"

int main(int argc, char** argv) {
  return raftkit::sim::main(
      argc, argv, [](const raftkit::sim::run_options& o) { return raftkit::sim::kv_scenario(o); },
      "raftkit-sim: deterministic simulation of a raftkit cluster running a key-value store under faults");
}
