#!/usr/bin/env bash
# The browser side: comfywire-wasm (clippy for wasm32, the wasm build with
# wasm-bindgen-cli), the `comfywire` npm package in js/ (strict tsc on the
# package and the example, vitest against a real comfywire-mock, React hook
# tests) and end to end in Debian's chromium through playwright-core.
#
# Prerequisites: the wasm32-unknown-unknown target, wasm-bindgen-cli at the
# exact version pinned in bindings/comfywire-wasm/Cargo.toml, Node >= 20.19
# with npm, and chromium. Outside CI a missing one skips this suite with a
# message; under CI=true it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
pin="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' bindings/comfywire-wasm/Cargo.toml)"
export PATH="/var/tmp/wasm-bindgen-cli-$pin/bin:$PATH"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

missing=()
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || missing+=("rust target wasm32-unknown-unknown")
[ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $pin" ] || missing+=("wasm-bindgen-cli $pin")
command -v npm >/dev/null 2>&1 || missing+=("npm")
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null || missing+=("node >= 20.19")
[ -x "$CHROMIUM" ] || missing+=("chromium at $CHROMIUM")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test-js: missing: ${missing[*]}" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "test-js: skipped (outside CI)" >&2
  exit 0
fi

echo "-- comfywire-wasm: fmt, clippy (wasm32), unit tests, docs"
cargo fmt -p comfywire-wasm -- --check
cargo clippy --quiet --target wasm32-unknown-unknown -p comfywire-wasm -- -D warnings
cargo test --quiet -p comfywire-wasm
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p comfywire-wasm
echo "-- wasm build"
bash js/scripts/build-wasm.sh
echo "-- the mock the tests start"
cargo build --quiet -p comfywire-mock
export COMFYWIRE_MOCK="$CARGO_TARGET_DIR/debug/comfywire-mock"

cd js
# `npm install`, not `npm ci`: vite lists a Windows-only optional package
# that this registry does not serve, which `npm ci` refuses as lock drift.
# The committed lock is still the one used: it must come out unchanged.
npm install --no-audit --no-fund --loglevel=error
git diff --exit-code --stat -- package-lock.json
echo "-- tsc (strict): package, tests, example"
npm run --silent typecheck
echo "-- package build (dist/ with the .wasm beside the glue)"
npm run --silent build
echo "-- vitest: core, client and driver against the mock, React hooks"
npx vitest run
echo "-- chromium: the example app end to end, and the figures"
npx vitest run --config vitest.e2e.config.ts
echo "screenshots and figures: js/e2e/artifacts/"
