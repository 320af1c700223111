#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS each (default 10; CI uses 60) on
# the nightly toolchain with cargo-fuzz, starting from the corpus seeded
# from tests/data/traces. A finding (crash, panic, failed assertion, an
# input slower than FUZZ_INPUT_TIMEOUT seconds, default 10) fails the script
# and leaves the input in fuzz/artifacts/TARGET/.
#
# Without cargo-fuzz or a nightly toolchain it prints "skipped" and exits 0
# on a workstation, but exits 1 when FUZZ_REQUIRED=1 or CI=true: a skipped
# fuzz run is never a pass in CI (.ci/run installs cargo-fuzz first).
set -uo pipefail
cd "$(dirname "$0")"

required=0
if [ "${FUZZ_REQUIRED:-0}" = "1" ] || [ "${CI:-}" = "true" ]; then
  required=1
fi
skip() {
  if [ "$required" = "1" ]; then
    echo "fuzz: cannot run: $1" >&2
    exit 1
  fi
  echo "skipped: $1"
  exit 0
}
if ! cargo fuzz --version >/dev/null 2>&1; then
  skip "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  skip "no nightly toolchain (rustup toolchain install nightly)"
fi
set -e

# Sanitizer builds on nightly go to their own folder beside the workspace's.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}/fuzz}"
seconds="${FUZZ_SECONDS:-10}"
input_timeout="${FUZZ_INPUT_TIMEOUT:-10}"
# Every [[bin]] of the fuzz package but the corpus builder.
mapfile -t targets < <(cargo fuzz list | grep -vx 'build-corpus')
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: cargo fuzz list found no target" >&2
  exit 1
fi
for target in "${targets[@]}"; do
  [ -d "corpus/$target" ] || { bash seed_corpus.sh; break; }
done
echo "fuzz: ${#targets[@]} targets (${targets[*]}), ${seconds}s each"
for target in "${targets[@]}"; do
  echo "== fuzz $target for ${seconds}s"
  if ! cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout="$input_timeout" -max_len=70000 \
    -print_final_stats=1; then
    echo "fuzz: $target found a failing input; see fuzz/artifacts/$target/" >&2
    ls -l "artifacts/$target" >&2 2>/dev/null || true
    exit 1
  fi
done
echo "fuzz: every target ran ${seconds}s without a finding"
