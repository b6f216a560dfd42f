#!/usr/bin/env bash
# The ledger example from the outside: seeds of the ledger pass (RAFTKIT_LEDGER_SEEDS of
# them, 300 by default, on every core), its histories round-trip through --history and
# --check-history, and the broken ledger (balances that survive a crash) is caught by a
# sweep twice over: by the replicas' digests, and with the digests off by the model.
set -u
sim="$1"
broken="$2"
seeds="${RAFTKIT_LEDGER_SEEDS:-300}"
fail=0
out=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$out"' EXIT
expect() {  # expect CODE DESCRIPTION -- command...
  local want="$1" what="$2"
  shift 3
  "$@" >"$out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"
    sed 's/^/  | /' "$out" | head -30
    fail=1
  else
    echo "ok: $what"
  fi
}
need() {  # need PATTERN WHAT: the last command's output matches PATTERN
  if grep -qE "$1" "$out"; then echo "ok: $2"; else echo "FAIL: $2 (no /$1/ in the output)"; sed 's/^/  | /' "$out" | head -30; fail=1; fi
}

expect 0 "$seeds seeds of the ledger with every fault kind pass" -- "$sim" --seeds "1-$seeds" --no-progress
need "^$seeds seeds, 0 failed, 0 inconclusive" "the sweep summary counts them"
need "faults injected: .*crash [0-9]+" "the summary counts the faults by kind"
cat "$out" | tail -6
expect 0 "5 nodes, 20% loss, crashes and partitions" -- "$sim" --seeds 100001-100040 --nodes 5 --loss 0.2 --crashes --partitions --no-progress
expect 0 "a seed with its history written" -- "$sim" --seed 3 --history "$tmp/h.jsonl"
need "^seed 3 passed" "one pass line"
grep -q '"input":"transfer ' "$tmp/h.jsonl" || { echo "FAIL: no transfer in the history file"; fail=1; }
expect 0 "the written history is linearizable" -- "$sim" --check-history "$tmp/h.jsonl"
# Money appears from nowhere: an audit that shows 101 in an account of a bank nobody
# touched is no state the model can reach.
printf '{"client":0,"input":"audit bank 9","call":10,"return":20,"output":"101,100,100"}\n' >"$tmp/bad.jsonl"
expect 1 "an audit showing money from nowhere is not linearizable" -- "$sim" --check-history "$tmp/bad.jsonl"
need "There the model answers 100,100,100" "the explanation says what the model answers"
printf '{"client":0,"input":"audit bank 9","call":10,"return":20,"output":"100,100,100"}\n{"client":0,"input":"rob bank 9","call":30}\n' >"$tmp/malformed.jsonl"
expect 2 "a malformed history is refused" -- "$sim" --check-history "$tmp/malformed.jsonl"
need "line 2: input not understood" "it names the bad line and what is wrong"

# The broken ledger: some seed of a sweep fails, first by the digest check.
expect 1 "a sweep catches the broken ledger by its digests" -- "$broken" --seeds 1-200 --crashes --no-progress
need "^FAIL seed [0-9]+: invariant: replica states differ at applied index" "the failure is the digest comparison"
need "\(seed [0-9]+\)" "the message names the seed"
grep -m1 "^FAIL" "$out"
expect 1 "with the digests off, the model catches it" -- "$broken" --seeds 1-200 --crashes --no-digests --no-progress
need "^FAIL seed [0-9]+: history not linearizable on key 'bank [0-9]+'" "the failure is linearizability, on a bank"
need "replay: .* --no-digests" "the replay command keeps --no-digests"
grep -m1 "^FAIL" "$out"
exit $fail
