#!/usr/bin/env bash
# The Swift suite of the uniffi bindings: XCTest through SwiftPM, run with
# Debian 13's swiftlang inside a debootstrap'd trixie root (Swift 6 needs
# glibc >= 2.38, newer than the host's), against a comfywire-mock started on
# the host (a chroot shares the host's network; COMFYWIRE_MOCK_URL) and, for
# the pool tests, three more (`--count 3`, COMFYWIRE_POOL_URLS). The root is
# made once and reused from $COMFYWIRE_SWIFT_ROOT; a half-made one is never
# reused because it is built under another name and renamed when complete.
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
ROOT="${COMFYWIRE_SWIFT_ROOT:-/var/tmp/comfywire-swiftroot}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PKG=bindings/swift
[ "$(id -u)" -eq 0 ] || { echo "test-swift.sh needs root (debootstrap, mount, chroot)"; exit 1; }

MOUNTED=()
MOCK_PID=""
POOL_PID=""
cleanup() {
  # Always unmount, innermost first, whatever failed; a leftover bind mount
  # of /dev would make a later `rm -rf` of the root dangerous.
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
  done
  MOUNTED=()
  [ -z "$MOCK_PID" ] || kill "$MOCK_PID" 2>/dev/null || true
  [ -z "$POOL_PID" ] || kill "$POOL_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in() { # mount_in <root> <mount args...>: mounts and remembers it for cleanup
  local target="${*: -1}"
  mountpoint -q "$target" && umount "$target" # a leftover of a killed run
  mount "${@:2}"
  MOUNTED+=("$target")
}

system_mounts() {
  mount_in "$1" -t proc proc "$1/proc" # swiftc cannot find its runtime without /proc
  mount_in "$1" --bind /dev "$1/dev"
  mount_in "$1" --bind /dev/pts "$1/dev/pts"
}

# A marker, not `-x $ROOT/usr/bin/swift`: that is an absolute symlink,
# which only resolves inside the chroot.
READY="$ROOT/.comfywire-swift-ready"
if [ ! -e "$READY" ]; then
  echo "-- making the Swift root in $ROOT (cold path, a few minutes)"
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  PARTIAL="$ROOT.partial"
  for m in ws dev/pts dev proc; do # leftovers of a killed cold run
    ! mountpoint -q "$PARTIAL/$m" 2>/dev/null || umount -l "$PARTIAL/$m"
  done
  rm -rf --one-file-system "$PARTIAL"
  debootstrap --variant=minbase trixie "$PARTIAL" "$MIRROR" >/dev/null
  cp /etc/resolv.conf "$PARTIAL/etc/resolv.conf"
  system_mounts "$PARTIAL"
  chroot "$PARTIAL" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends swiftlang libc6-dev libstdc++-14-dev >/dev/null'
  chroot "$PARTIAL" swift --version >"$PARTIAL/.comfywire-swift-ready" # needs /proc
  cleanup
  # An unfinished root of an older run (no marker) is replaced, not
  # entered: `mv` onto an existing folder would nest the new root inside it.
  if [ -e "$ROOT" ]; then
    for m in ws dev/pts dev proc; do
      ! mountpoint -q "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m"
    done
    rm -rf --one-file-system "$ROOT"
  fi
  mv "$PARTIAL" "$ROOT"
fi

echo "-- building the cdylib, the mock and uniffi-bindgen"
cargo build --quiet -p comfywire-uniffi -p comfywire-mock -p uniffi-bindgen
LIB_DIR="$CARGO_TARGET_DIR/debug"
GEN="$CARGO_TARGET_DIR/uniffi-gen/swift"
rm -rf "$GEN"
"$LIB_DIR/uniffi-bindgen" generate "$LIB_DIR/libcomfywire_uniffi.so" \
  --language swift --out-dir "$GEN" --no-format

# The package's generated parts (ignored by git): the Swift API of both
# uniffi components (ComfyWire.swift, and ComfyWireHost.swift with the
# host's records) compiled into the one module ComfyWire, their C headers in
# one system-library module ComfyWireFFI (the host's uniffi.toml names it),
# and the cdylib to link. Copied only when changed, so SwiftPM's incremental
# build stays warm; files a generation no longer makes are removed.
put() { cmp -s "$1" "$2" || cp "$1" "$2"; }
SRC="$PKG/Sources/ComfyWire"
FFI="$PKG/Sources/ComfyWireFFI"
mkdir -p "$SRC" "$FFI" "$PKG/lib"
shopt -s nullglob
for f in "$SRC"/*.swift "$FFI"/*.h; do [ -e "$GEN/$(basename "$f")" ] || rm -f "$f"; done
for f in "$GEN"/*.swift; do put "$f" "$SRC/$(basename "$f")"; done
HEADERS=""
for f in "$GEN"/*.h; do
  put "$f" "$FFI/$(basename "$f")"
  HEADERS+="    header \"$(basename "$f")\"\n"
done
shopt -u nullglob
# Our own module map: the generated ones `use` Darwin modules, which do not
# exist on Linux, and name one header each.
printf "module ComfyWireFFI {\n${HEADERS}    export *\n}\n" >"$GEN/module.modulemap"
put "$GEN/module.modulemap" "$FFI/module.modulemap"
put "$LIB_DIR/libcomfywire_uniffi.so" "$PKG/lib/libcomfywire_uniffi.so"

WORK=$(mktemp -d)
"$LIB_DIR/comfywire-mock" --port 0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$WORK/mock.out" ] && break; sleep 0.1; done
MOCK_URL=$(head -n1 "$WORK/mock.out")
[ -n "$MOCK_URL" ] || { echo "the mock did not start"; cat "$WORK/mock.err"; exit 1; }
# Three more servers in one process for the pool tests, one URL per line;
# at 20x the recorded speed so a batch of prompts takes seconds.
: > "$WORK/pool.out" # read below before the background job may have made it
"$LIB_DIR/comfywire-mock" --port 0 --count 3 --speed 20 >"$WORK/pool.out" 2>"$WORK/pool.err" &
POOL_PID=$!
for _ in $(seq 100); do [ "$(wc -l <"$WORK/pool.out")" -ge 3 ] && break; sleep 0.1; done
[ "$(wc -l <"$WORK/pool.out")" -ge 3 ] || { echo "the pool's mocks did not start"; cat "$WORK/pool.err"; exit 1; }
POOL_URLS=$(head -n3 "$WORK/pool.out" | tr '\n' ' ' | sed 's/ $//')

system_mounts "$ROOT"
mkdir -p "$ROOT/ws"
mount_in "$ROOT" --bind "$REPO" "$ROOT/ws"
echo "-- swift test against $MOCK_URL and the pool $POOL_URLS"
set +e
chroot "$ROOT" env -i PATH=/usr/bin:/bin HOME=/root COMFYWIRE_MOCK_URL="$MOCK_URL" COMFYWIRE_POOL_URLS="$POOL_URLS" \
  sh -c "cd /ws/$PKG && swift test 2>&1" | tee "$WORK/swift.log"
STATUS=${PIPESTATUS[0]}
set -e
PASSED=$(grep -cE "^Test Case .* passed" "$WORK/swift.log" || true)
FAILED=$(grep -cE "^Test Case .* failed" "$WORK/swift.log" || true)
rm -rf "$WORK"
echo "$PASSED passed, $FAILED failed"
[ "$STATUS" -eq 0 ] && [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
