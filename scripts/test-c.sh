#!/usr/bin/env bash
# The C ABI's suite (bindings/comfywire-c): builds libcomfywire and the mock,
# fails when the committed include/comfywire.h drifts from the generated one,
# installs into a temporary prefix with scripts/install-c.sh, then runs the C
# and C++ tests against comfywire-mock plainly (and the pool's test against
# three mocks of one `comfywire-mock --count 3`), statically linked, under
# AddressSanitizer + UBSan and under valgrind, and builds and runs the C and
# C++ examples against the installed copy with CMake's find_package and with
# pkg-config (checking the versioned soname). Run by scripts/test.sh; works
# on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"

# --- tools: install only what is missing, and only where that is expected
missing=()
for tool in valgrind pkg-config cmake; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # As root, or with sudo that needs no password, apt installs them;
  # otherwise the exact command is printed.
  SUDO=""
  [ "$(id -u)" = "0" ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test-c: missing ${missing[*]}; install them first, e.g. sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
for tool in gcc g++ curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test-c: $tool is required" >&2; exit 1; }
done

# --- build; build.rs regenerates the header
cargo build -p comfywire-c -p comfywire-mock
TARGET="$CARGO_TARGET_DIR/debug"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code -- include/comfywire.h; then
    echo "test-c: include/comfywire.h differs from the generated header; commit the regenerated file" >&2
    exit 1
  fi
fi

WORK=$(mktemp -d)
MOCK_PID=""
POOL_PID=""
cleanup() {
  if [ -n "$MOCK_PID" ]; then kill "$MOCK_PID" 2>/dev/null || true; wait "$MOCK_PID" 2>/dev/null || true; fi
  if [ -n "$POOL_PID" ]; then kill "$POOL_PID" 2>/dev/null || true; wait "$POOL_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- install into a temporary prefix, as a user would (scripts/install-c.sh)
PREFIX="$WORK/prefix"
bash scripts/install-c.sh "$PREFIX" --debug
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
pkg-config --exists --print-errors comfywire
CFLAGS_CW=$(pkg-config --cflags comfywire)
LIBS_CW=$(pkg-config --libs comfywire)
PRIVATE_LIBS=$(sed -n 's/^Libs.private: //p' "$PREFIX/lib/pkgconfig/comfywire.pc")
RPATH="-Wl,-rpath,$PREFIX/lib"

# --- compile every variant (flags unquoted on purpose: they are word lists)
C_WARN=(-std=c11 -Wall -Wextra -Werror -g)
CXX_WARN=(-std=c++17 -Wall -Wextra -Werror -g)
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
# shellcheck disable=SC2086
{
  gcc "${C_WARN[@]}" $CFLAGS_CW tests/c/test_capi.c -o "$WORK/test_c" $LIBS_CW $RPATH
  gcc "${C_WARN[@]}" $CFLAGS_CW tests/c/test_capi.c -o "$WORK/test_c_static" \
    "$PREFIX/lib/libcomfywire.a" $PRIVATE_LIBS
  gcc "${C_WARN[@]}" "${SAN[@]}" $CFLAGS_CW tests/c/test_capi.c -o "$WORK/test_c_asan" $LIBS_CW $RPATH
  gcc "${C_WARN[@]}" $CFLAGS_CW tests/c/test_pool.c -o "$WORK/test_pool" $LIBS_CW $RPATH
  gcc "${C_WARN[@]}" "${SAN[@]}" $CFLAGS_CW tests/c/test_pool.c -o "$WORK/test_pool_asan" $LIBS_CW $RPATH
  g++ "${CXX_WARN[@]}" $CFLAGS_CW tests/c/test_capi.cpp -o "$WORK/test_cpp" $LIBS_CW $RPATH -lpthread
  g++ "${CXX_WARN[@]}" "${SAN[@]}" $CFLAGS_CW tests/c/test_capi.cpp -o "$WORK/test_cpp_asan" \
    $LIBS_CW $RPATH -lpthread
}

# --- the mock, on a free port; it prints its URL as its first line
"$TARGET/comfywire-mock" --port 0 --speed 3 > "$WORK/mock.out" 2> "$WORK/mock.err" &
MOCK_PID=$!
URL=""
for _ in $(seq 1 100); do
  URL=$(head -n 1 "$WORK/mock.out" 2>/dev/null || true)
  [ -n "$URL" ] && break
  kill -0 "$MOCK_PID" 2>/dev/null || { cat "$WORK/mock.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "test-c: the mock printed no URL" >&2; exit 1; }
echo "mock at $URL"

# --- three mocks in one process for the pool; one URL per line. The file
# is made first: the background job's redirection may not have run yet
# when the loop below first reads it.
: > "$WORK/pool.out"
"$TARGET/comfywire-mock" --count 3 --port 0 --speed 20 > "$WORK/pool.out" 2> "$WORK/pool.err" &
POOL_PID=$!
POOL_URLS=()
for _ in $(seq 1 100); do
  mapfile -t POOL_URLS < "$WORK/pool.out"
  [ "${#POOL_URLS[@]}" -ge 3 ] && break
  kill -0 "$POOL_PID" 2>/dev/null || { cat "$WORK/pool.err" >&2; exit 1; }
  sleep 0.1
done
[ "${#POOL_URLS[@]}" -ge 3 ] || { echo "test-c: the pool's mocks printed no URLs" >&2; exit 1; }
echo "pool mocks at ${POOL_URLS[*]}"

# --- run: each program's last line is "N passed, N failed"
failures=0
summary=()
run() {
  local name=$1
  shift
  local log="$WORK/$name.log" status=0
  "$@" > "$log" 2>&1 || status=$?
  local last
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  if [ "$status" -ne 0 ] || [ -z "$last" ] || ! [[ "$last" =~ \ 0\ failed$ ]]; then
    failures=$((failures + 1))
    echo "--- $name failed (exit $status); its failed checks, then the log's end:" >&2
    grep -E '^FAIL ' "$log" >&2 || true
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-16s %s (exit %s)' "$name" "${last:-no result line}" "$status")")
}
VALGRIND=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1"
run c "$WORK/test_c" "$URL"
run c-static "$WORK/test_c_static" "$URL"
run c-asan "$WORK/test_c_asan" "$URL"
run c-valgrind "${VALGRIND[@]}" "$WORK/test_c" "$URL"
run cpp "$WORK/test_cpp" "$URL"
run cpp-asan "$WORK/test_cpp_asan" "$URL"
run cpp-valgrind "${VALGRIND[@]}" "$WORK/test_cpp" "$URL"
run pool "$WORK/test_pool" "${POOL_URLS[@]:0:3}"
run pool-asan "$WORK/test_pool_asan" "${POOL_URLS[@]:0:3}"
run pool-valgrind "${VALGRIND[@]}" "$WORK/test_pool" "${POOL_URLS[@]:0:3}"

# --- the examples against the installed copy: with CMake's
# find_package(comfywire) and with pkg-config, C and C++ each
example_status=0
{
  SONAME=$(readelf -d "$PREFIX/lib/libcomfywire.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  echo "soname: $SONAME"
  [ "$SONAME" = "libcomfywire.so.${VERSION%.*}" ] || [ "$SONAME" = "libcomfywire.so.${VERSION%%.*}" ]
  cmake -S bindings/comfywire-c/examples/cmake -B "$WORK/cmake" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_BUILD_RPATH="$PREFIX/lib" &&
    cmake --build "$WORK/cmake" &&
    "$WORK/cmake/comfywire_example" "$URL" &&
    "$WORK/cmake/comfywire_example_cpp" "$URL"
  # shellcheck disable=SC2086
  gcc -std=c11 -Wall -Werror $CFLAGS_CW bindings/comfywire-c/examples/cmake/main.c \
    -o "$WORK/example_pc" $LIBS_CW $RPATH && "$WORK/example_pc" "$URL"
  # shellcheck disable=SC2086
  g++ -std=c++17 -Wall -Werror $CFLAGS_CW bindings/comfywire-c/examples/cmake/main.cpp \
    -o "$WORK/example_pc_cpp" $LIBS_CW $RPATH -lpthread && "$WORK/example_pc_cpp" "$URL"
} > "$WORK/examples.log" 2>&1 || example_status=$?
outcomes=$(grep -c '^outcome: succeeded$' "$WORK/examples.log" || true)
if [ "$example_status" -ne 0 ] || [ "$outcomes" -ne 4 ]; then
  failures=$((failures + 1))
  echo "--- the installed examples failed; log:" >&2
  tail -n 40 "$WORK/examples.log" >&2
fi
summary+=("$(printf '%-16s %s of 4 succeeded, %s (exit %s)' examples "$outcomes" "$(grep '^soname:' "$WORK/examples.log" || echo 'no soname')" "$example_status")")

cd "$ROOT"
printf '%s\n' "${summary[@]}"
if [ "$failures" -ne 0 ]; then
  echo "test-c: $failures suite(s) failed" >&2
  exit 1
fi
echo "test-c: all C ABI suites passed"
