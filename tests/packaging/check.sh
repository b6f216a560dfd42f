#!/usr/bin/env bash
# Installs raftkit into a temporary prefix and builds and runs tests/packaging/consumer.cpp
# three ways: (a) as a meson subproject, (b) with pkg-config and plain g++, (c) with CMake
# find_package(raftkit) -- the last against the prefix after moving it, which also shows the
# CMake package is relocatable. Exits non-zero on the first failure; removes its temp dir.
# Usage: tests/packaging/check.sh <raftkit source root>
set -euo pipefail

src=$(cd "${1:?usage: check.sh <raftkit source root>}" && pwd)
here="$src/tests/packaging"
cxx=${CXX:-g++}
warn=(-Wall -Wextra -Wpedantic -Werror)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftkit-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log="$tmp/step.log"

# Runs a command with its output in a log shown only when it fails.
run() {
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# --- install into a temporary prefix ---
prefix="$tmp/prefix"
run meson setup "$tmp/install-build" "$src" --prefix "$prefix" \
  -Dtests=false -Dbenchmarks=false -Dexamples=false --wrap-mode=nodownload
run meson install -C "$tmp/install-build"
pc=$(find "$prefix" -name raftkit.pc -path '*/pkgconfig/*' | head -n 1)
cmake_dir=$(find "$prefix" -type d -path '*/cmake/raftkit' | head -n 1)
[[ -n "$pc" ]] || fail "meson install wrote no raftkit.pc"
[[ -n "$cmake_dir" ]] || fail "meson install wrote no <libdir>/cmake/raftkit"
[[ -f "$cmake_dir/raftkitConfig.cmake" ]] || fail "no raftkitConfig.cmake in $cmake_dir"
[[ -f "$cmake_dir/raftkitConfigVersion.cmake" ]] || fail "no raftkitConfigVersion.cmake in $cmake_dir"
[[ -f "$prefix/include/raftkit/types.hpp" ]] || fail "headers not installed under $prefix/include"
echo "install: ok (${pc#"$prefix"/}, ${cmake_dir#"$prefix"/})"

# --- (a) meson subproject ---
proj="$tmp/meson-consumer"
mkdir -p "$proj/subprojects"
cp "$here/meson/meson.build" "$here/consumer.cpp" "$proj/"
ln -s "$src" "$proj/subprojects/raftkit"
run meson setup "$proj/build" "$proj" --force-fallback-for=raftkit --wrap-mode=nodownload
run meson compile -C "$proj/build"
"$proj/build/consumer" meson-subproject || fail "consumer built as meson subproject"

# --- (b) pkg-config against the prefix ---
export PKG_CONFIG_PATH="$(dirname "$pc")"
[[ "$(pkg-config --variable=includedir raftkit)" == "$prefix/include" ]] ||
  fail "pkg-config found a raftkit other than the one just installed"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs raftkit)"
run "$cxx" "${warn[@]}" "$here/consumer.cpp" "${pc_flags[@]}" -o "$tmp/consumer-pkgconfig"
"$tmp/consumer-pkgconfig" pkg-config || fail "consumer built with pkg-config"

# --- (c) CMake find_package, after moving the prefix ---
moved="$tmp/moved-prefix"
mv "$prefix" "$moved"
run cmake -S "$here/cmake" -B "$tmp/cmake-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$moved" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  "-DCMAKE_CXX_FLAGS=${warn[*]}"
found_dir=$(sed -n 's/^raftkit_DIR:PATH=//p' "$tmp/cmake-build/CMakeCache.txt")
[[ "$found_dir" == "$moved"/* ]] || fail "CMake found raftkit at '$found_dir', not under $moved"
run cmake --build "$tmp/cmake-build"
"$tmp/cmake-build/consumer" cmake || fail "consumer built with CMake"

echo "packaging: all three consumers built and passed"
