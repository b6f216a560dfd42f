#!/usr/bin/env bash
# Checks raftkit-sim from the outside: exit codes of --check-history on good, bad,
# malformed and undecidable histories, a passing seed and sweep, and how an inconclusive
# seed is reported (a warning and exit 0, or exit 3 with --strict).
set -u
sim="$1"
dir="$2"
fail=0
expect() {  # expect CODE DESCRIPTION -- command...
  local want="$1" what="$2"
  shift 3
  "$@" >/tmp/raftkit-sim-cli.$$ 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"
    sed 's/^/  | /' /tmp/raftkit-sim-cli.$$ | head -20
    fail=1
  else
    echo "ok: $what"
  fi
}
n=0
for f in "$dir"/good_*.jsonl; do expect 0 "linearizable: $(basename "$f")" -- "$sim" --check-history "$f"; n=$((n+1)); done
for f in "$dir"/bad_*.jsonl; do expect 1 "not linearizable: $(basename "$f")" -- "$sim" --check-history "$f"; n=$((n+1)); done
[ "$n" -ge 4 ] || { echo "FAIL: expected example histories in $dir"; fail=1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp" /tmp/raftkit-sim-cli.$$' EXIT
printf '{"client":0,"op":"put","key":"x","value":"1","call":1,"return":2}\n{"client":0,"op":"put",\n' >"$tmp/malformed.jsonl"
expect 2 "malformed history" -- "$sim" --check-history "$tmp/malformed.jsonl"
grep -q "line 2" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: the malformed-input message does not name line 2"; fail=1; }

expect 0 "seed 1 with the default fault mix passes" -- "$sim" --seed 1 --history "$tmp/h1.jsonl"
grep -q "passed" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: no pass line"; fail=1; }
# The history the simulator wrote is accepted by its own checker.
expect 0 "its written history checks as linearizable" -- "$sim" --check-history "$tmp/h1.jsonl"
expect 0 "a sweep of 20 seeds on 5 nodes with 20% loss" -- "$sim" --seeds 1-20 --nodes 5 --loss 0.2
expect 2 "a bad --delay is refused" -- "$sim" --seed 1 --delay 5parsecs

# Snapshots are on in the default mix; the summary counts them; --no-snapshots keeps whole logs.
expect 0 "a sweep of 10 seeds takes and installs snapshots" -- "$sim" --seeds 1-10
grep -Eq "snapshots: [1-9][0-9]* taken, [1-9][0-9]* installed" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: the summary does not count snapshots taken and installed"; fail=1; }
expect 0 "--no-snapshots" -- "$sim" --seeds 1-3 --no-snapshots
grep -q "snapshots: 0 taken, 0 installed" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: snapshots taken with --no-snapshots"; fail=1; }
expect 0 "the snapshot knobs" -- "$sim" --seed 3 --snapshot-interval 5 --snapshot-trailing 0 --snapshot-chunk 8 --snapshot-write-delay 10ms --isolation 3s
expect 2 "a zero chunk size is refused" -- "$sim" --seed 1 --snapshot-chunk 0

# A history whose values leave the order open ("12" is one append or two), with too few
# search steps to decide it: inconclusive, exit 3, and it says so.
{
  for i in 1 2 3 4 5 6 7; do printf '{"client":0,"op":"append","key":"x","value":"%s","call":0,"return":100}\n' "$i"; done
  printf '{"client":0,"op":"append","key":"x","value":"12","call":0}\n'
  printf '{"client":1,"op":"get","key":"x","call":200,"return":300,"output":"7654312"}\n'
} >"$tmp/open.jsonl"
expect 3 "a history the search cannot decide in 5 steps is inconclusive" -- "$sim" --check-history "$tmp/open.jsonl" --max-steps 5
grep -q "inconclusive" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: no 'inconclusive' in the output"; fail=1; }
expect 0 "with enough steps it is linearizable" -- "$sim" --check-history "$tmp/open.jsonl"

# Seed 1007759 of issue 17: when all clients shared one key all run, the search alone
# gave up on its history and the seed was reported as failed.
issue17="--seed 1007759 --nodes 3 --slow-disk --partitions --delay 50ms --reorder --clients 8 --keys 1"
expect 0 "seed 1007759 (issue 17) passes" -- "$sim" $issue17
expect 0 "seed 1007759 on one key all run passes too" -- "$sim" $issue17 --ops-per-key 0
grep -q "passed" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: no pass line"; fail=1; }
# Searched only, with a budget too small to decide (10 steps place at most 10
# operations): inconclusive, not failed.
expect 0 "an inconclusive seed is a warning" -- "$sim" $issue17 --ops-per-key 0 --checker search --max-steps 10
grep -q "^INCONCLUSIVE seed 1007759" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: no INCONCLUSIVE line for the seed"; fail=1; }
grep -q "^warning: 1 inconclusive seed" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: no warning line"; fail=1; }
grep -q "FAIL" /tmp/raftkit-sim-cli.$$ && { echo "FAIL: an inconclusive seed was reported as failed"; fail=1; }
expect 3 "an inconclusive seed with --strict exits 3" -- "$sim" $issue17 --ops-per-key 0 --checker search --max-steps 10 --strict
expect 0 "a sweep with an inconclusive seed exits 0" -- "$sim" --seeds 1007758-1007760 --nodes 3 --slow-disk --partitions --delay 50ms --reorder --clients 8 --keys 1 --ops-per-key 0 --checker search --max-steps 10
grep -q "3 seeds, 0 failed, [1-3] inconclusive" /tmp/raftkit-sim-cli.$$ || { echo "FAIL: the sweep summary does not count inconclusive seeds"; fail=1; }
exit $fail
