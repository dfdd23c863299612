#!/usr/bin/env bash
# Copies the build dependencies a bare GPU machine lacks (Eigen, oneTBB headers
# and library, zlib, nlohmann-json, Random123, Catch2, CLI11) from this Debian
# machine into .deps/ (git-ignored, about 15 MB), with pkg-config files that
# point into it; with the quickstart's results (build/quickstart/, from
# tools/quickstart.sh) also those checkpoints, their CPU drift table and the
# Fashion-MNIST files (30 MB more) into .deps/quickstart/, for device_check's
# drift --device cuda of the quickstart models. Carry .deps to the device and
# run tools/device_check.sh there.
#   tools/device_bundle.sh      # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/install_deps.sh
aimc_install_deps
deps=.deps
rm -rf "$deps"
mkdir -p "$deps/include" "$deps/lib" "$deps/pkgconfig"
lib=/usr/lib/x86_64-linux-gnu
for d in eigen3 tbb oneapi nlohmann Random123 catch2 CLI; do cp -a "/usr/include/$d" "$deps/include/"; done
cp -a /usr/include/zlib.h /usr/include/zconf.h "$deps/include/"
cp -aL "$lib"/libtbb.so.12 "$deps/lib/"
ln -sf libtbb.so.12 "$deps/lib/libtbb.so"
cp -aL /lib/x86_64-linux-gnu/libz.so.1 "$deps/lib/"
ln -sf libz.so.1 "$deps/lib/libz.so"
pc() {  # name version cflags libs
  printf 'prefix=${pcfiledir}/..\nName: %s\nDescription: bundled for aimc\nVersion: %s\nCflags: %s\nLibs: %s\n' \
    "$1" "$2" "$3" "$4" >"$deps/pkgconfig/$1.pc"
}
pc eigen3 3.4.0 '-I${prefix}/include/eigen3' ''
pc tbb 2021.8.0 '-I${prefix}/include' '-L${prefix}/lib -ltbb'
pc zlib 1.2.13 '-I${prefix}/include' '-L${prefix}/lib -lz'
pc nlohmann_json 3.11.2 '-I${prefix}/include' ''
qs="${AIMC_BUILD_DIR:-build}/quickstart"
if [ -f "$qs/lenet5_digital.safetensors" ] && [ -f "$qs/lenet5_hwa.safetensors" ] && [ -f "$qs/drift.csv" ]; then
  mkdir -p "$deps/quickstart/fashion-mnist"
  cp "$qs"/lenet5_digital.safetensors "$qs"/lenet5_hwa.safetensors "$qs"/drift.csv "$deps/quickstart/"
  cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$deps/quickstart/fashion-mnist/"
else
  echo "no $qs results (run tools/quickstart.sh first): device_check.sh will skip the quickstart drift" >&2
fi
du -sh "$deps"
