// ledger-sim: the bank ledger of ledger.hpp under seeded faults, with every option of
// raftkit-sim (sim::main): `ledger-sim --seeds 1-10000`, `--seed 7 --timeline t.html`,
// `--check-history h.jsonl`, `--help`. Built twice: as ledger-sim, and with
// LEDGER_BROKEN_RESTART as ledger-sim-broken, whose bug a sweep must find.

#include "raftkit/sim/main.hpp"  // first: an engine assertion fails the seed, not the sweep

#include "ledger.hpp"

int main(int argc, char** argv) {
  return raftkit::sim::main(
      argc, argv, [](const raftkit::sim::run_options& o) { return ledger::scenario(o); },
#ifdef LEDGER_BROKEN_RESTART
      "ledger-sim-broken: the bank ledger whose balances survive a crash, replayed twice"
#else
      "ledger-sim: a replicated bank ledger under seeded faults"
#endif
  );
}
