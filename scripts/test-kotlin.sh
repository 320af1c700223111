#!/usr/bin/env bash
# The Kotlin suite of the uniffi bindings: runs the crate's Rust tests,
# builds the cdylib, generates the Kotlin sources of both uniffi components
# (packages comfywire and comfywire.host) with the workspace's own
# uniffi-bindgen (never committed), compiles bindings/kotlin/Main.kt with
# kotlinc from npm, and runs it on the JVM (JNA from Debian) against a
# comfywire-mock on a free port (COMFYWIRE_MOCK_URL) and, for the pool
# tests, three more (`--count 3`, COMFYWIRE_POOL_URLS, space-separated).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
TOOLS="${COMFYWIRE_TOOLS:-/var/tmp/comfywire-tools}"
KOTLIN_VERSION=2.4.20 # npm kotlin-compiler; its lib/ also ships kotlinx-coroutines
JNA_JAR=/usr/share/java/jna.jar # Debian libjna-java >= 5.12 (uniffi uses its Cleaner)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

if ! dpkg -s libjna-java >/dev/null 2>&1; then
  echo "-- installing libjna-java"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libjna-java >/dev/null
fi

KC="$TOOLS/node_modules/kotlin-compiler"
if [ "$(node -p "try{require('$KC/package.json').version}catch(e){''}")" != "$KOTLIN_VERSION" ]; then
  echo "-- installing kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VERSION"
fi

# The Rust side of the bindings (tests/listeners.rs) against the mock, so
# the README's test command runs it too (the crate is not a default member).
echo "-- cargo test -p comfywire-uniffi"
cargo test --quiet -p comfywire-uniffi

echo "-- building the cdylib, the mock and uniffi-bindgen"
cargo build --quiet -p comfywire-uniffi -p comfywire-mock -p uniffi-bindgen
LIB_DIR="$CARGO_TARGET_DIR/debug"
GEN="$CARGO_TARGET_DIR/uniffi-gen/kotlin"
rm -rf "$GEN"
"$LIB_DIR/uniffi-bindgen" generate "$LIB_DIR/libcomfywire_uniffi.so" \
  --language kotlin --out-dir "$GEN" --no-format

WORK=$(mktemp -d)
MOCK_PID=""
POOL_PID=""
cleanup() {
  [ -z "$MOCK_PID" ] || kill "$MOCK_PID" 2>/dev/null || true
  [ -z "$POOL_PID" ] || kill "$POOL_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "-- compiling the Kotlin suite"
CP="$JNA_JAR:$KC/lib/kotlinx-coroutines-core-jvm.jar"
"$KC/bin/kotlinc" -nowarn -cp "$CP" $(find "$GEN" -name '*.kt') \
  "$REPO/bindings/kotlin/Main.kt" -d "$WORK/suite.jar" 2>&1 | grep -v '^warning' || true
[ -s "$WORK/suite.jar" ] || { echo "kotlinc failed"; exit 1; }

"$LIB_DIR/comfywire-mock" --port 0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$WORK/mock.out" ] && break; sleep 0.1; done
COMFYWIRE_MOCK_URL=$(head -n1 "$WORK/mock.out")
[ -n "$COMFYWIRE_MOCK_URL" ] || { echo "the mock did not start"; cat "$WORK/mock.err"; exit 1; }
export COMFYWIRE_MOCK_URL
# Three more servers in one process for the pool tests, one URL per line;
# at 20x the recorded speed so a batch of prompts takes seconds.
: > "$WORK/pool.out" # read below before the background job may have made it
"$LIB_DIR/comfywire-mock" --port 0 --count 3 --speed 20 >"$WORK/pool.out" 2>"$WORK/pool.err" &
POOL_PID=$!
for _ in $(seq 100); do [ "$(wc -l <"$WORK/pool.out")" -ge 3 ] && break; sleep 0.1; done
COMFYWIRE_POOL_URLS=$(head -n3 "$WORK/pool.out" | tr '\n' ' ' | sed 's/ $//')
[ "$(wc -l <"$WORK/pool.out")" -ge 3 ] || { echo "the pool's mocks did not start"; cat "$WORK/pool.err"; exit 1; }
export COMFYWIRE_POOL_URLS
echo "-- running against $COMFYWIRE_MOCK_URL and the pool $COMFYWIRE_POOL_URLS"
java -cp "$WORK/suite.jar:$CP:$KC/lib/kotlin-stdlib.jar" \
  -Djna.library.path="$LIB_DIR" MainKt
