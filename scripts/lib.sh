# shellcheck shell=bash
# Shared by scripts/test and scripts/demo: the Debian 12 packages raftkit builds with,
# and how the main build directory is configured. Source it; it defines functions only.

# Compiler and build tools, then the libraries: Boost.Asio (>= 1.81, for raftkit/asio),
# cereal (wire codec), fmt (formatters), doctest (tests), Google Benchmark, CLI11 (tools);
# clang 14 and its runtimes (libFuzzer, sanitizers) build the fuzz targets (tests/fuzz);
# Chromium, in which the simulator's timeline page is tested (tests/timeline); OpenSSL
# (libssl-dev) for raftkit/asio/tls_transport.hpp and the openssl command that makes the
# TLS tests' certificates.
RAFTKIT_PACKAGES=(
  g++ meson ninja-build pkg-config cmake python3
  libboost1.81-dev libcereal-dev libfmt-dev doctest-dev libbenchmark-dev libcli11-dev libssl-dev openssl
  clang-14 libclang-rt-14-dev chromium prometheus
)

# Options of the main build directory (`build`), the same for the demo and the tests:
# optimised (-O2), without debug information, which takes a third of the compile time
# and is not needed to run the suite (configure your own build for gdb).
# shellcheck disable=SC2034  # used by the scripts that source this file
RAFTKIT_BUILD_OPTIONS=(-Doptimization=2 -Ddebug=false -Dwerror=true -Dtests=true -Dexamples=true -Dbenchmarks=true)

# The sanitizer build (`build-sanitize`): AddressSanitizer and UndefinedBehaviorSanitizer
# at -O0 -g. UBSan at -O1 or above makes g++ 12 compile this code 3 to 7 times slower
# than at -O0 (measured on tests/test_sim.cpp: 75 s at -O0, 228 s at -O1, 614 s at -O2).
# shellcheck disable=SC2034
RAFTKIT_SANITIZE_OPTIONS=(-Db_sanitize=address,undefined -Db_lundef=false -Doptimization=0 -Ddebug=true
  -Dwerror=true -Dtests=true -Dbenchmarks=false -Dexamples=false)

# The repository root, whatever the caller's working directory.
raftkit_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# Installs whichever of RAFTKIT_PACKAGES is missing; does nothing when all are present.
raftkit_install_packages() {
  local missing=() p
  for p in "${RAFTKIT_PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  echo "raftkit: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# raftkit_setup DIR [meson options...]: configures DIR, or reconfigures it with the given
# options if it already exists.
raftkit_setup() {
  local dir=$1
  shift
  if [[ -f "$dir/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}
