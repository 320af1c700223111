#!/usr/bin/env bash
# Counts the non-test Rust lines of each binding (a `#[cfg(test)]` module
# runs to the end of its file in this code base), the figure the "one job
# API" rule bounds: the bindings map types; the job logic is in the host.
# Each line is also split into doc comments, other comments, blank lines and
# code, and the pool's bindings (pool.rs) are given apart.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '%-28s %6s %6s %8s %6s %6s %6s\n' crate lines docs comments blank code pool
for crate in bindings/comfywire-c bindings/comfywire-py bindings/comfywire-uniffi; do
  for f in "$crate"/src/*.rs; do
    awk -v pool="$([ "$(basename "$f")" = pool.rs ] && echo 1 || echo 0)" '
      /^#\[cfg\(test\)\]/ { exit }
      { n++ }
      /^[[:space:]]*\/\/[\/!]/ { d++; next }
      /^[[:space:]]*\/\// { c++; next }
      /^[[:space:]]*$/ { b++ }
      END { print n+0, d+0, c+0, b+0, pool * (n+0) }' "$f"
  done | awk -v name="$crate" '
    { n += $1; d += $2; c += $3; b += $4; p += $5 }
    END { printf "%-28s %6d %6d %8d %6d %6d %6d\n", name, n, d, c, b, n-d-c-b, p }'
done | awk '
  { print; n += $2; d += $3; c += $4; b += $5; k += $6; p += $7 }
  END { printf "%-28s %6d %6d %8d %6d %6d %6d\n", "total", n, d, c, b, k, p }'
