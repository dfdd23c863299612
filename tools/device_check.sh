#!/usr/bin/env bash
# On a GPU machine without our Debian packages (the lent device): builds aimc
# with CUDA against the bundle of tools/device_bundle.sh (.deps/), runs the
# CUDA parity suite (plus compute-sanitizer's memcheck and racecheck on it when
# present), the emulated suite and the GPU benchmarks, and writes the logs and
# the benchmark JSON to $OUT (or build-device/out).
#   tools/device_check.sh [cuda-arch]     # from the repository root; arch default 90
set -uo pipefail
cd "$(dirname "$0")/.."
deps="$PWD/.deps"
out="${OUT:-$PWD/build-device/out}"
arch="${1:-90}"
mkdir -p "$out"
[ -d "$deps/pkgconfig" ] || { echo "no .deps/: run tools/device_bundle.sh first and carry .deps" >&2; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
export PKG_CONFIG_PATH="$deps/pkgconfig"
export LD_LIBRARY_PATH="$deps/lib:${LD_LIBRARY_PATH:-}"
export LIBRARY_PATH="$deps/lib:${LIBRARY_PATH:-}"
export CPATH="$deps/include:${CPATH:-}"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
setup_args=(-Dcuda=enabled -Dcuda-arch="$arch" -Dcpp_args="-I$deps/include" -Dcuda_args="-I$deps/include"
  -Dcpp_link_args="-L$deps/lib -Wl,-rpath,$deps/lib")
{
  if [ -d build-device/meson-info ]; then meson setup --wipe build-device "${setup_args[@]}"
  else meson setup build-device "${setup_args[@]}"; fi
  # libaimc_cuda.so: the CUDA backend that libaimc (in test_cuda and aimc) loads.
  ninja -C build-device libaimc_cuda.so tests/test_cuda tests/test_cuda_emulated tools/cli/aimc
} >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
status=0
./build-device/tests/test_cuda >"$out/test_cuda.log" 2>&1
rc=$?
[ $rc -eq 77 ] && echo "test_cuda skipped (exit 77): no usable GPU here" >&2
[ $rc -ne 0 ] && status=1
./build-device/tests/test_cuda_emulated >"$out/test_cuda_emulated.log" 2>&1 || status=1
if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 ./build-device/tests/test_cuda "CUDA analog MVM*" \
      >"$out/sanitizer-$tool.log" 2>&1 || status=1
    compute-sanitizer --tool "$tool" --error-exitcode 9 ./build-device/tests/test_cuda "[pulsed]" \
      >"$out/sanitizer-$tool-pulsed.log" 2>&1 || status=1
  done
fi
./build-device/tools/cli/aimc bench tile_forward_cuda tile_backward_cuda tile_forward gemm --json \
  >"$out/bench.txt" 2>&1 || status=1
tail -n 3 "$out"/test_cuda*.log
tail -n 1 "$out/bench.txt"
exit $status
