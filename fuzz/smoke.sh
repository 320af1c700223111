#!/usr/bin/env bash
# Runs each fuzz target for a few seconds (FUZZ_SECONDS, default 10) when
# cargo-fuzz and a nightly toolchain are installed; otherwise says why it
# skipped and exits 0.
set -uo pipefail
cd "$(dirname "$0")"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "skipped: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)"
  exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
set -e
seconds="${FUZZ_SECONDS:-10}"
[ -d corpus/parse_frame ] || bash seed_corpus.sh
for target in parse_frame session_events; do
  echo "== fuzz $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=70000
done
