#!/usr/bin/env bash
# Builds bindings/comfywire-wasm for wasm32-unknown-unknown (release) and
# generates the JS glue into js/src/core/pkg with wasm-bindgen-cli, whose
# version must equal the `wasm-bindgen` pin in bindings/comfywire-wasm/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
pin="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' bindings/comfywire-wasm/Cargo.toml)"
bindgen="${WASM_BINDGEN:-wasm-bindgen}"
if ! have="$("$bindgen" --version 2>/dev/null)"; then
  echo "wasm-bindgen-cli $pin not found (cargo install wasm-bindgen-cli --version =$pin)" >&2
  exit 1
fi
if [ "$have" != "wasm-bindgen $pin" ]; then
  echo "found $have, need wasm-bindgen $pin" >&2
  exit 1
fi
# Size over build time for this one artefact: no debug info, one codegen
# unit, LTO, optimised for size, abort on panic (the boundary never
# panics; see the crate docs).
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_PANIC=abort \
CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
  cargo build --quiet --release --target wasm32-unknown-unknown -p comfywire-wasm
out=js/src/core/pkg
rm -rf "$out"
"$bindgen" --target web --out-dir "$out" --out-name comfywire_wasm \
  --remove-name-section --remove-producers-section \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/comfywire_wasm.wasm"
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out/comfywire_wasm_bg.wasm" -o "$out/comfywire_wasm_bg.wasm"
fi
echo "built $out ($(wc -c < "$out/comfywire_wasm_bg.wasm") bytes of wasm)"
