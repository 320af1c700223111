#!/usr/bin/env bash
# Counts the non-test Rust lines of each binding (a `#[cfg(test)]` module
# runs to the end of its file in this code base), the figure the "one job
# API" rule bounds: the bindings map types; the job logic is in the host.
set -euo pipefail
cd "$(dirname "$0")/.."
total=0
for crate in bindings/comfywire-c bindings/comfywire-py bindings/comfywire-uniffi; do
  n=$(for f in "$crate"/src/*.rs; do awk '/^#\[cfg\(test\)\]/{exit} {n++} END{print n+0}' "$f"; done | paste -sd+ | bc)
  printf '%-28s %5d\n' "$crate" "$n"
  total=$((total + n))
done
printf '%-28s %5d\n' total "$total"
