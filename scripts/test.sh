#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (core, driver, mock,
# CLI) with the Rust tests of the C and Python bindings, then the bindings'
# suites. This is the README's test command and what .ci/run runs after the
# lint steps.
#
# Each Rust test runs once. The default members and the two binding crates
# go into both cargo invocations as one package set, so features resolve
# the same way and the dependencies are built once (a different set would
# rebuild syn, futures or tracing-subscriber with other features). The
# uniffi crate's own tests run in scripts/test-kotlin.sh, which builds that
# crate anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"

# The workspace's default members, by package name, from cargo itself.
default_members() {
  cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_default_members"])
for package in meta["packages"]:
    if package["id"] in members:
        print(package["name"])
'
}
packages=()
while IFS= read -r name; do
  packages+=(-p "$name")
done < <(default_members)
if [ "${#packages[@]}" -eq 0 ]; then
  echo "test.sh: cargo metadata listed no default members" >&2
  exit 1
fi
packages+=(-p comfywire-c -p comfywire-py)

echo "== Rust: default members, and the unit tests of comfywire-c and comfywire-py"
cargo test --all-targets "${packages[@]}"
cargo test --doc "${packages[@]}"

for suite in scripts/test-*.sh; do
  [ -e "$suite" ] || continue
  echo "== $(basename "$suite" .sh)"
  bash "$suite"
done
