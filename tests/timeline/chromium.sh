# shellcheck shell=bash
# Headless Chromium for the timeline's browser test and screenshots; source it.
# raftkit_chromium_find sets CHROMIUM (installing Debian's chromium when it is missing and
# we are root); raftkit_chromium ARGS... runs it with a fresh profile and the flags that
# keep it off the network (this machine's network is closed: without them Chromium keeps
# trying Google's hosts).

raftkit_chromium_find() {
  CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
  if [[ -z $CHROMIUM && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing chromium (apt-get --no-install-recommends)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; }
    CHROMIUM=$(command -v chromium || true)
  fi
  [[ -n $CHROMIUM ]]
}

raftkit_chromium() {
  local profile status
  profile=$(mktemp -d)
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-extensions --hide-scrollbars \
    --user-data-dir="$profile" "$@" 2>/dev/null
  status=$?
  rm -rf "$profile"
  return $status
}
