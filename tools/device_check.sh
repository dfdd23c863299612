#!/usr/bin/env bash
# On a GPU machine without our Debian packages (the lent device): builds aimc
# with CUDA against the bundle of tools/device_bundle.sh (.deps/), then, each
# step under its own time limit (about 8 minutes in all on an H100):
#   - the whole CUDA parity suite test_cuda, and the emulated suite;
#   - compute-sanitizer memcheck and racecheck over every test_cuda case, in
#     groups (the two tools side by side, while the CPU-side steps run);
#   - aimc drift --device cpu and --device cuda of a small LeNet-5 (trained
#     here one epoch on a generated MNIST-format set), the two CSVs compared;
#   - with .deps/quickstart/ (tools/device_bundle.sh after tools/quickstart.sh):
#     the quickstart's drift command on the GPU, its table compared with the
#     CPU's from the bundle within statistical noise;
#   - the GPU benchmarks (tile_forward_cuda, program_drift_cuda,
#     tile_backward_cuda, and epoch_lenet5_cuda where this build has it),
#     alone on the GPU.
# Logs, CSVs, the benchmark JSON and summary.txt (one line per step: exit
# status, seconds; 124 = ran past its limit) go to $OUT (or build-device/out).
#   tools/device_check.sh [cuda-arch]     # from the repository root; arch default 90
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
deps="$PWD/.deps"
out="${OUT:-$PWD/build-device/out}"
arch="${1:-90}"
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
[ -d "$deps/pkgconfig" ] || { echo "no .deps/: run tools/device_bundle.sh first and carry .deps" >&2; exit 2; }
export PATH="/usr/local/cuda/bin:$PATH"
export PKG_CONFIG_PATH="$deps/pkgconfig"
export LD_LIBRARY_PATH="$deps/lib:${LD_LIBRARY_PATH:-}"
export LIBRARY_PATH="$deps/lib:${LIBRARY_PATH:-}"
export CPATH="$deps/include:${CPATH:-}"
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
status=0

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND into $out/NAME.log, one
# summary line; a failure (or 124: past its limit) makes the script fail.
step() {
  local name="$1" limit="$2" t0 rc
  shift 2
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc seconds=$(($(date +%s) - t0))$([ $rc -eq 124 ] && echo " (past its ${limit} s limit)")" \
    >>"$summary"
  return $rc
}

# compare_quickstart CPU.csv GPU.csv: one summary line; fails unless every row
# (label, time) matches and its accuracy means agree within 3 standard errors.
compare_quickstart() {
  paste -d, "$1" "$2" | awk -F, '
    NR == 1 { half = NF / 2; next }
    { ++rows; d = $3 - $(half + 3); if (d < 0) d = -d
      se = sqrt(($4 * $4 + $(half + 4) * $(half + 4)) / 5); if (d > m) m = d
      if (d > 3 * se + 1e-9) far = 1
      if ($1 != $(half + 1) || $2 != $(half + 2)) bad = 1 }
    END { printf "quickstart-drift-compare rows=%d max_abs_accuracy_mean_diff=%g%s%s\n", rows, m,
            far ? " (beyond 3 standard errors)" : "", bad ? " (rows differ in label or time)" : ""
          exit (bad || far || rows == 0) }'
}

setup_args=(-Dcuda=enabled -Dcuda-arch="$arch" -Dcpp_args="-I$deps/include" -Dcuda_args="-I$deps/include"
  -Dcpp_link_args="-L$deps/lib -Wl,-rpath,$deps/lib")
reconfigure=()
[ -d build-device/meson-info ] && reconfigure=(--reconfigure)  # a warm machine keeps its objects
# libaimc_cuda.so: the CUDA backend that libaimc (in test_cuda and aimc) loads.
if ! step setup 120 meson setup "${reconfigure[@]}" build-device "${setup_args[@]}" ||
  ! step build 330 ninja -C build-device libaimc_cuda.so tests/test_cuda tests/test_cuda_emulated tools/cli/aimc; then
  tail -40 "$out/setup.log" "$out/build.log" 2>/dev/null
  cat "$summary"
  exit 1
fi
test_cuda=./build-device/tests/test_cuda
aimc=./build-device/tools/cli/aimc

# 1. The parity suite, every case (exit 77: no usable GPU).
step test_cuda 150 "$test_cuda" || status=1
grep -q "skipped: no usable GPU" "$out/test_cuda.log" && echo "test_cuda skipped: no usable GPU here" >&2

# 2. compute-sanitizer over every test_cuda case, in groups that cover the
# whole list once (Catch test specs: ',' or, '~' not), each tool in the
# background with its own limits.
# Each group: "LIMIT_SECONDS SPEC" (the analog MVM cases hold most assertions).
groups=(
  "90 CUDA analog MVM*"
  "40 [pulsed]"
  "40 backend ops*"
  "40 [models]"
  "40 [modules]~[pulsed],[optim],[tiles]~[pulsed],[programming]~[pulsed]"
  '40 ~[pulsed]~[models]~[modules]~[optim]~[tiles]~[programming]~"CUDA analog MVM*"~"backend ops*"'
)
sanitize() {
  local tool="$1" i rc=0
  for i in "${!groups[@]}"; do
    step "sanitizer-$tool-$i" "${groups[$i]%% *}" compute-sanitizer --tool "$tool" --error-exitcode 9 "$test_cuda" \
      "${groups[$i]#* }" || rc=1
  done
  return $rc
}
"$test_cuda" --list-test-names-only >"$out/test_cuda-cases.txt" 2>&1
sanitizer_pids=()
if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    sanitize "$tool" &
    sanitizer_pids+=($!)
  done
else
  echo "sanitizer rc=127 (compute-sanitizer not found)" >>"$summary"
  status=1
fi

# 3. The emulated suite (CPU only), while the sanitizers run.
step test_cuda_emulated 150 ./build-device/tests/test_cuda_emulated || status=1

# 4. aimc drift on the CPU and on the GPU: LeNet-5 trained one epoch on a
# generated MNIST-format set (512 train, 256 test images whose pixels vary
# with the sample; no network on the lent machine), then read at 1 s, 1 h,
# 1 day and 1 year on 2 chips with InferenceRPUConfig defaults.
data="$out/drift-data"
write_split() {  # write_split NAME N: NAME-images-idx3-ubyte and NAME-labels-idx1-ubyte
  LC_ALL=C awk -v n="$2" 'function be32(v) { printf "%c%c%c%c", int(v / 16777216) % 256, int(v / 65536) % 256,
      int(v / 256) % 256, v % 256 }
    BEGIN { printf "%c%c%c%c", 0, 0, 8, 3; be32(n); be32(28); be32(28)
      for (i = 0; i < n; ++i) for (k = 0; k < 784; ++k) printf "%c", (i * 31 + k * 7 * (i % 10 + 1)) % 256 }' \
    >"$data/$1-images-idx3-ubyte"
  LC_ALL=C awk -v n="$2" 'BEGIN { printf "%c%c%c%c", 0, 0, 8, 1
      printf "%c%c%c%c", int(n / 16777216) % 256, int(n / 65536) % 256, int(n / 256) % 256, n % 256
      for (i = 0; i < n; ++i) printf "%c", i % 10 }' >"$data/$1-labels-idx1-ubyte"
}
mkdir -p "$data" && write_split train 512 && write_split t10k 256
drift_args=(drift --checkpoint "$out/drift-lenet5.safetensors" --rpu-config InferenceRPUConfig
  --dataset "mnist:$data" --times 1,3600,86400,31536000 --repeats 2 --seed 3)
if step drift-train 120 "$aimc" train --model lenet5 --dataset "mnist:$data" --epochs 1 --batch-size 32 --seed 1 \
  --out "$out/drift-lenet5.safetensors"; then
  step drift-cpu 120 "$aimc" "${drift_args[@]}" --csv "$out/drift-cpu.csv" --device cpu || status=1
  step drift-cuda 120 "$aimc" "${drift_args[@]}" --csv "$out/drift-cuda.csv" --device cuda || status=1
  # Row by row: the largest |accuracy_mean(cuda) - accuracy_mean(cpu)|; more
  # than 0.02 (5 of the 256 test images) or rows that differ fail the check.
  if [ -s "$out/drift-cpu.csv" ] && [ -s "$out/drift-cuda.csv" ]; then
    columns=$(head -1 "$out/drift-cpu.csv" | awk -F, '{print NF}')
    paste -d, "$out/drift-cpu.csv" "$out/drift-cuda.csv" | awk -F, -v half="$columns" '
      NR > 1 { d = $3 - $(half + 3); if (d < 0) d = -d; if (d > m) m = d; ++rows
        if ($1 != $(half + 1) || $2 != $(half + 2)) bad = 1 }
      END { printf "drift-compare rows=%d max_abs_accuracy_mean_diff=%g%s\n", rows, m,
              bad ? " (rows differ in label or time)" : ""
            exit (bad || rows == 0 || m > 0.02) }' >>"$summary" || status=1
  fi
else
  status=1
fi

# 4b. The quickstart's drift (tools/quickstart.sh: the same checkpoints,
# config, times, 5 chips and seed) on the GPU, against the table the CPU gave.
# Row by row |mean(gpu) - mean(cpu)| <= 3·sqrt((std_cpu² + std_gpu²)/5), the
# standard error of a difference of two 5-chip means, times 3 (the same seeds
# draw the same noise, so only float rounding should differ).
qs="$deps/quickstart"
if [ -f "$qs/drift.csv" ]; then
  if step quickstart-drift-cuda 300 "$aimc" drift --checkpoint "$qs/lenet5_digital.safetensors" --label digital \
    --checkpoint "$qs/lenet5_hwa.safetensors" --label hwa --rpu-config StandardHWATrainingPreset \
    --times 1,3600,86400,2592000,31536000 --repeats 5 --dataset "fashion-mnist:$qs/fashion-mnist" \
    --csv "$out/quickstart-drift-cuda.csv" --device cuda; then
    cp "$qs/drift.csv" "$out/quickstart-drift-cpu.csv"
    compare_quickstart "$out/quickstart-drift-cpu.csv" "$out/quickstart-drift-cuda.csv" >>"$summary" || status=1
  else
    status=1
  fi
else
  echo "quickstart-drift skipped (no .deps/quickstart: run tools/quickstart.sh, then tools/device_bundle.sh)" >>"$summary"
fi

for pid in "${sanitizer_pids[@]}"; do wait "$pid" || status=1; done

# 5. The GPU benchmarks, alone on the GPU (entries this build knows).
entries=(tile_forward_cuda program_drift_cuda tile_backward_cuda)
bench_help=$("$aimc" bench --help 2>&1)  # lists the entries (no pipe into grep -q under pipefail)
[[ $bench_help == *epoch_lenet5_cuda* ]] && entries+=(epoch_lenet5_cuda)
step bench 150 "$aimc" bench "${entries[@]}" --json || status=1
cp "$out/bench.log" "$out/bench.json" 2>/dev/null

echo "== summary (exit status per step; 124: past its limit) =="
cat "$summary"
tail -n 3 "$out"/test_cuda*.log
exit $status
