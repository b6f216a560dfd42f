#!/usr/bin/env bash
# Checks raftkit-sim from the outside: exit codes of --check-history on good, bad and
# malformed histories, and a passing seed and sweep.
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
exit $fail
