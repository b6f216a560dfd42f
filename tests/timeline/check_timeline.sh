#!/usr/bin/env bash
# The timeline page in a real browser. Writes the timelines of two failing seeds of the
# broken ledger (one the model catches, one the digest check catches), opens each in
# headless Chromium (installed here if missing: Debian's chromium package) as a whole
# run, and again zoomed to its failure with its culprit hovered, and checks the DOM the
# page's script produced: lanes, spans, operations by outcome, the highlighted
# operations or nodes, the zoom and the hover (check_dom.py). Exits 77 (skipped) when
# no Chromium can be had. RAFTKIT_TIMELINE_SCREENSHOT=FILE.png also saves a picture of
# the model's failure.
set -u
sim="$1"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/timeline/chromium.sh
. "$here/chromium.sh"
raftkit_chromium_find || { echo "no chromium: skipped (apt-get install --no-install-recommends chromium)"; exit 77; }
"$CHROMIUM" --version
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# check NAME KIND SIM-ARGS...: one seed's page, checked whole and zoomed.
check() {
  local name=$1 kind=$2
  shift 2
  "$sim" "$@" --timeline "$tmp/$name.html" >"$tmp/$name.txt" 2>&1
  local code=$?
  if [[ $code -ne 1 ]]; then
    echo "FAIL: $name: the seed should fail (exit 1), exit $code"; sed 's/^/  | /' "$tmp/$name.txt" | head; fail=1; return
  fi
  local t target
  t=$(grep -o 'class="failure-line" id="failure" data-t0="[0-9.]*"' "$tmp/$name.html" | grep -o '[0-9.]*"$' | tr -d '"')
  if [[ $kind == model ]]; then
    target=$(grep -o 'class="op [a-z -]*culprit" id="op-[0-9]*"' "$tmp/$name.html" | grep -o 'op-[0-9]*')
  else
    target=failure
  fi
  local a=$(( ${t%.*} > 200 ? ${t%.*} - 200 : 0 )) b=$(( ${t%.*} + 100 ))
  local view="$a.000-$b.000"
  echo "$name: failure at $t ms, target $target, view $view"
  raftkit_chromium --dump-dom "file://$tmp/$name.html" >"$tmp/$name-full.dom" || { echo "FAIL: chromium could not open the page"; fail=1; return; }
  raftkit_chromium --dump-dom "file://$tmp/$name.html#view=$a-$b&hover=$target" >"$tmp/$name-zoomed.dom"
  python3 "$here/check_dom.py" "$tmp/$name.html" "$tmp/$name-full.dom" "$tmp/$name-zoomed.dom" "$view" "$target" "$kind" 3 ||
    fail=1
  if [[ $kind == model && -n ${RAFTKIT_TIMELINE_SCREENSHOT:-} ]]; then
    raftkit_chromium --window-size=1560,720 --screenshot="$RAFTKIT_TIMELINE_SCREENSHOT" "file://$tmp/$name.html#view=$a-$b&hover=$target" &&
      echo "screenshot: $RAFTKIT_TIMELINE_SCREENSHOT"
  fi
}

check model model --seed 1 --crashes --no-digests
check digest invariant --seed 1 --crashes
exit $fail
