#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (core, driver, mock,
# CLI) and, as they exist, the bindings' suites. This is the README's test
# command and what .ci/run runs after the lint steps.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"

echo "== Rust workspace (default members; the bindings' suites follow)"
cargo test --all-targets
cargo test --doc

for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  echo "== $(basename "$suite" .sh)"
  bash "$suite"
done
