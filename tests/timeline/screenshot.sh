#!/usr/bin/env bash
# Saves a picture of a timeline page, for a person to look at:
#   tests/timeline/screenshot.sh PAGE.html OUT.png [FROM-TO ms]
# e.g.  build/examples/ledger/ledger-sim-broken --seed 1 --crashes --no-digests --timeline t.html
#       tests/timeline/screenshot.sh t.html t.png 1100-1500
set -u
page=$(realpath "$1")
out=$(realpath -m "$2")
view=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/timeline/chromium.sh
. "$here/chromium.sh"
raftkit_chromium_find || { echo "no chromium (apt-get install --no-install-recommends chromium)" >&2; exit 1; }
url="file://$page"
[[ -n $view ]] && url="$url#view=$view"
raftkit_chromium --window-size=1560,720 --screenshot="$out" "$url" && echo "$out"
