#!/usr/bin/env bash
# Strong scaling of the quickstart's drift experiment under mpirun, and a
# cost model for 64 and 1024 ranks and for a ResNet-32 data-parallel step.
#   bench/mpi_scaling.sh [OUT.json]     # from the repository root, after a build with MPI
# KEEP=1 keeps the measurements' directory. Measures here (a 2-core machine: 1 rank x 1 thread, 1 rank x 2 threads,
# 2 ranks x 1 thread), then bench/mpi_cost_model.py writes the model and the
# measurements to OUT.json (default bench/results/DATE-mpi-scaling.json).
#
# The drift experiment is the quickstart's (tools/quickstart.sh: LeNet-5 on
# StandardHWATrainingPreset tiles, times 1 s .. 1 year, two checkpoints) on
# the first LIMIT_TEST test images (default 2000 of 10000, so three runs fit
# in a few minutes; a repeat's time is linear in the images) with REPEATS
# chips per checkpoint. The checkpoint is LeNet-5 trained digitally for one
# epoch (the drift's cost does not depend on how well it was trained); the
# two "checkpoints" are that one file under two labels.
set -euo pipefail
cd "$(dirname "$0")/.."
aimc="${AIMC:-build/tools/cli/aimc}"
out="${1:-bench/results/$(date -u +%Y-%m-%d)-mpi-scaling.json}"
limit="${LIMIT_TEST:-2000}"
repeats="${REPEATS:-4}"
work="$(mktemp -d)"
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "measurements kept in $work" >&2; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe --bind-to none)

now() { date +%s.%N; }
cut -d' ' -f1-3 /proc/loadavg >"$work/load_start"  # other work on the machine skews the scaling

"$aimc" train --model lenet5 --epochs 1 --seed 1 --threads 2 --limit-test 100 --out "$work/lenet5.safetensors" >/dev/null
drift=(drift --checkpoint "$work/lenet5.safetensors" "$work/lenet5.safetensors" --label digital hwa
       --rpu-config StandardHWATrainingPreset --times 1,3600,86400,2592000,31536000 --limit-test "$limit" --json)

# One run: NAME RANKS THREADS REPEATS; writes NAME.json (aimc's) and NAME.wall (seconds, mpirun's start included).
run() {
  local name=$1 ranks=$2 threads=$3 reps=$4 t0 t1
  t0=$(now)
  if [ "$ranks" = 0 ]; then
    "$aimc" "${drift[@]}" --threads "$threads" --repeats "$reps" --csv "$work/$name.csv" | tail -1 >"$work/$name.json"
  else
    "${mpirun[@]}" -n "$ranks" "$aimc" "${drift[@]}" --threads "$threads" --repeats "$reps" --csv "$work/$name.csv" \
      | tail -1 >"$work/$name.json"
  fi
  t1=$(now)
  echo "$t1 - $t0" | bc -l >"$work/$name.wall"
  echo "$name: $(cat "$work/$name.wall") s" >&2
}

# The fixed costs, measured alone (a difference of two long runs drowns in the load of a shared machine):
# the setup (loading, one chip on one image at one time) and mpirun's start and end.
t0=$(now); "$aimc" drift --checkpoint "$work/lenet5.safetensors" --rpu-config StandardHWATrainingPreset --times 1 \
  --repeats 1 --limit-test 1 --threads 1 --json >/dev/null 2>&1; t1=$(now)
echo "$t1 - $t0" | bc -l >"$work/setup.wall"
t0=$(now); "$aimc" --version >/dev/null; t1=$(now); plain=$(echo "$t1 - $t0" | bc -l)
t0=$(now); "${mpirun[@]}" -n 2 "$aimc" --version >/dev/null; t1=$(now)
echo "$t1 - $t0 - $plain" | bc -l >"$work/launch.wall"
run plain_1r1t 0 1 "$repeats"
run mpi_1r1t 1 1 "$repeats"   # mpirun -n 1: the launcher's cost
run mpi_2r1t 2 1 "$repeats"
run plain_1r2t 0 2 "$repeats"
for k in mpi_1r1t mpi_2r1t plain_1r2t; do
  cmp -s "$work/plain_1r1t.csv" "$work/$k.csv" || { echo "$k: CSV differs from plain_1r1t" >&2; exit 1; }
done

# ResNet-32 (28x28 inputs): time per training sample on 1 and 2 threads, and its checkpoint (for the gradient bytes).
for t in 1 2; do
  "$aimc" train --model resnet32 --epochs 1 --batch-size 32 --limit-train 256 --limit-test 32 --threads "$t" --json \
    --out "$work/resnet32.safetensors" | tail -1 >"$work/resnet32_t$t.json"
done

# fsync of one appended line (what rank 0 pays per recorded repeat), mean of 50.
python3 - "$work" <<'EOF' >"$work/fsync.txt"
import os, sys, time
p = os.path.join(sys.argv[1], "fsync.probe")
with open(p, "ab") as f:
    t0 = time.perf_counter()
    for _ in range(50):
        f.write(b'{"model":0,"label":"digital","repeat":0,"accuracy":[0.8759,0.8635,0.8479,0.8151,0.8084]}\n')
        f.flush(); os.fsync(f.fileno())
    print((time.perf_counter() - t0) / 50)
EOF

cut -d' ' -f1-3 /proc/loadavg >"$work/load_end"
python3 bench/mpi_cost_model.py "$work" "$out" --limit-test "$limit" --repeats "$repeats" --cpu "$(lscpu | sed -n 's/^Model name: *//p')"
echo "wrote $out" >&2
