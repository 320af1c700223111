#!/usr/bin/env bash
# The Python package's suite: builds the abi3 wheel once (release), then, on
# the oldest and the newest CPython the wheel claims (3.9 and 3.13) and on
# the default python3, installs it into a venv, checks the committed stub
# against the built module (mypy.stubtest) and runs pytest against the
# in-process mock. Needs only PyPI and cargo.
#
# The 3.9 and 3.13 interpreters are pyenv's (COMFYWIRE_PY_OLDEST and
# COMFYWIRE_PY_NEWEST override them). A missing one is skipped with a
# warning on a workstation and is a failure under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"
VENV="${COMFYWIRE_VENV:-/var/tmp/comfywire-venv}"
PYTHON="${PYTHON:-python3}"
OLDEST="${COMFYWIRE_PY_OLDEST:-/root/.pyenv/versions/3.9.18/bin/python3}"
NEWEST="${COMFYWIRE_PY_NEWEST:-/root/.pyenv/versions/3.13.0/bin/python3}"

# A venv per interpreter with the test tools (and any extra package).
venv_for() {
  local python="$1" dir="$2"
  shift 2
  if [ ! -x "$dir/bin/python" ]; then
    "$python" -m venv "$dir"
  fi
  "$dir/bin/python" -m pip install --quiet --upgrade pip
  "$dir/bin/python" -m pip install --quiet pytest mypy "$@"
}

py_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# The interpreters besides the default, checked before anything is built.
others=()
for python in "$OLDEST" "$NEWEST"; do
  if [ -x "$python" ]; then
    others+=("$python")
  elif [ "${CI:-}" = "true" ]; then
    echo "missing interpreter $python: the wheel must be tested on the oldest and newest CPython it claims" >&2
    exit 1
  else
    echo "warning: $python not found; skipped (a failure under CI=true)" >&2
  fi
done

venv_for "$PYTHON" "$VENV" "maturin>=1.9.4,<2"
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
(cd python && "$VENV/bin/maturin" build --release -o "$dist" --quiet)
wheel="$(echo "$dist"/comfywire-*.whl)"

# Installs the one wheel into `venv` and runs the stub check and the suite
# from outside the source tree, so the installed wheel is what is tested.
suite() {
  local venv="$1"
  echo "== $("$venv/bin/python" --version)"
  "$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheel"
  (
    cd python/tests
    echo "-- stubtest"
    allowlists=(--allowlist stubtest-allowlist.txt)
    version="$(py_version "$venv/bin/python")"
    if [ -f "stubtest-allowlist-$version.txt" ]; then
      allowlists+=(--allowlist "stubtest-allowlist-$version.txt")
    fi
    "$venv/bin/python" -m mypy.stubtest comfywire --ignore-missing-stub "${allowlists[@]}"
    echo "-- pytest"
    status=0
    "$venv/bin/python" -m pytest . -q -p no:cacheprovider || status=$?
    if [ "$status" -eq 5 ]; then
      echo "pytest collected no tests: that is a failure" >&2
      exit 1
    fi
    exit "$status"
  )
}

suite "$VENV"
for python in ${others[@]+"${others[@]}"}; do
  version="$(py_version "$python")"
  if [ "$version" = "$(py_version "$VENV/bin/python")" ]; then
    continue  # the default python3 is this version: tested above
  fi
  venv_for "$python" "$VENV-$version"
  suite "$VENV-$version"
done
