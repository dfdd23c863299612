#!/usr/bin/env bash
# Installs aimc into a scratch DESTDIR and builds tests/embed_example.cpp
# against it with pkg-config alone, as a program embedding aimc would.
#   embed_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"; src="$2"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --quiet --no-rebuild >/dev/null
pcdir=$(dirname "$(find "$dest" -name aimc.pc | head -n 1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs aimc)
libdir=$(dirname "$(find "$dest" -name "libaimc.so*" | head -n 1)")
g++ -std=c++20 -O1 "$src/tests/embed_example.cpp" $flags -o "$dest/embed_example"
LD_LIBRARY_PATH="$libdir" "$dest/embed_example"
