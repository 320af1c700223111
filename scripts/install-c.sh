#!/usr/bin/env bash
# Builds libcomfywire (the C ABI) and installs it the way a C library is
# installed:
#   PREFIX/lib/libcomfywire.so.X.Y.Z   the shared library (soname libcomfywire.so.0.Y
#                                      before 1.0, libcomfywire.so.X after)
#   PREFIX/lib/libcomfywire.so.SOVER -> libcomfywire.so.X.Y.Z, libcomfywire.so -> that
#   PREFIX/lib/libcomfywire.a          the static library
#   PREFIX/include/comfywire.h, comfywire.hpp
#   PREFIX/lib/pkgconfig/comfywire.pc  (pkg-config --cflags --libs comfywire)
#   PREFIX/lib/cmake/comfywire/        (find_package(comfywire))
# usage: scripts/install-c.sh PREFIX [--debug]   (release build by default)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 PREFIX [--debug]" >&2; exit 2; }
PREFIX=$1
PROFILE=release
[ "${2:-}" = "--debug" ] && PROFILE=debug
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/comfywire-target}"

if [ "$PROFILE" = release ]; then
  cargo build --quiet --release -p comfywire-c
else
  cargo build --quiet -p comfywire-c
fi
BUILT="$CARGO_TARGET_DIR/$PROFILE"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR=${VERSION%%.*}
REST=${VERSION#*.}
MINOR=${REST%%.*}
if [ "$MAJOR" = 0 ]; then SOVERSION="0.$MINOR"; else SOVERSION=$MAJOR; fi
# The soname the linker wrote (build.rs) must be the one laid out here.
if command -v readelf >/dev/null 2>&1; then
  soname=$(readelf -d "$BUILT/libcomfywire.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$soname" = "libcomfywire.so.$SOVERSION" ] ||
    { echo "install-c: the library's soname is '$soname', expected libcomfywire.so.$SOVERSION" >&2; exit 1; }
fi
# What the Rust standard library needs when libcomfywire.a is linked
# statically, as rustc reports it for this platform.
PRIVATE_LIBS=$(cd bindings/comfywire-c && cargo rustc --quiet --profile "$([ "$PROFILE" = release ] && echo release || echo dev)" \
  --crate-type staticlib -- --print native-static-libs 2>&1 |
  sed -n 's/.*native-static-libs: //p' | tail -n 1)
[ -n "$PRIVATE_LIBS" ] || PRIVATE_LIBS="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/comfywire" "$PREFIX/include"
install -m 0755 "$BUILT/libcomfywire.so" "$PREFIX/lib/libcomfywire.so.$VERSION"
ln -sf "libcomfywire.so.$VERSION" "$PREFIX/lib/libcomfywire.so.$SOVERSION"
ln -sf "libcomfywire.so.$SOVERSION" "$PREFIX/lib/libcomfywire.so"
install -m 0644 "$BUILT/libcomfywire.a" "$PREFIX/lib/libcomfywire.a"
install -m 0644 include/comfywire.h include/comfywire.hpp "$PREFIX/include/"

ABS_PREFIX=$(cd "$PREFIX" && pwd)
sed -e "s|@PREFIX@|$ABS_PREFIX|" -e "s|@VERSION@|$VERSION|" -e "s|@PRIVATE_LIBS@|$PRIVATE_LIBS|" \
  bindings/comfywire-c/comfywire.pc.in > "$PREFIX/lib/pkgconfig/comfywire.pc"
# CMake wants the libraries as a list of names, without -l.
PRIVATE_LIBS_CMAKE=$(echo "$PRIVATE_LIBS" | sed -e 's/-l//g' -e 's/ \+/;/g')
for file in comfywireConfig comfywireConfigVersion; do
  sed -e "s|@VERSION@|$VERSION|g" -e "s|@SOVERSION@|$SOVERSION|g" -e "s|@MAJOR@|$MAJOR|g" \
    -e "s|@MINOR@|$MINOR|g" -e "s|@PRIVATE_LIBS_CMAKE@|$PRIVATE_LIBS_CMAKE|g" \
    "bindings/comfywire-c/cmake/$file.cmake.in" > "$PREFIX/lib/cmake/comfywire/$file.cmake"
done
echo "installed libcomfywire $VERSION (soname libcomfywire.so.$SOVERSION) into $ABS_PREFIX"
