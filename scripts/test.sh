#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (core, driver, mock,
# CLI) and, as they exist, the bindings' suites. This is the README's test
# command and what .ci/run runs after the lint steps.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"

echo "== Rust workspace"
cargo test --workspace --all-targets
cargo test --workspace --doc

for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  echo "== $(basename "$suite" .sh)"
  bash "$suite"
done
