#!/usr/bin/env bash
# The Python package's suite: builds the wheel (release), installs it into a
# venv, checks the committed stub against the built module (mypy.stubtest)
# and runs pytest against the in-process mock. Needs only PyPI and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
VENV="${COMFYWIRE_VENV:-/var/tmp/comfywire-venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "maturin>=1.9.4,<2" pytest mypy

dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
(cd python && "$VENV/bin/maturin" build --release -o "$dist" --quiet)
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$dist"/comfywire-*.whl

# Run from outside the source tree so the installed wheel is what is tested.
cd python/tests
echo "-- stubtest"
"$VENV/bin/python" -m mypy.stubtest comfywire --ignore-missing-stub --allowlist stubtest-allowlist.txt
echo "-- pytest"
status=0
"$VENV/bin/python" -m pytest . -q -p no:cacheprovider || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
