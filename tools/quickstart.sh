#!/usr/bin/env bash
# Installs what is missing, builds, and runs the flagship experiment on
# Fashion-MNIST: LeNet-5 trained digitally and hardware-aware (10 epochs each),
# then both deployed on PCM-like analog tiles and tested at 1 s, 1 h, 1 day,
# 30 days and 1 year after programming over 5 chips: a table, a CSV and a plot.
#   tools/quickstart.sh       # from the repository root
# Smoke run: AIMC_QUICKSTART_EPOCHS=1 AIMC_QUICKSTART_REPEATS=2 tools/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/install_deps.sh
aimc_install_deps
aimc_install_quickstart_deps
aimc_build
dir="${AIMC_BUILD_DIR:-build}"
epochs="${AIMC_QUICKSTART_EPOCHS:-10}"
repeats="${AIMC_QUICKSTART_REPEATS:-5}"
out="$dir/quickstart"
aimc="$dir/tools/cli/aimc"
mkdir -p "$out"
echo "== Training lenet5 digitally on Fashion-MNIST ($epochs epochs) =="
"$aimc" train --model lenet5 --epochs "$epochs" --seed 1 --out "$out/lenet5_digital.safetensors"
echo "== Training lenet5 hardware-aware on analog tiles (StandardHWATrainingPreset, $epochs epochs) =="
"$aimc" train --model lenet5 --rpu-config StandardHWATrainingPreset --optimizer adam --lr 0.02 \
  --epochs "$epochs" --seed 1 --out "$out/lenet5_hwa.safetensors"
echo "== Accuracy vs time after programming on PCM-like tiles ($repeats chips each) =="
"$aimc" drift --checkpoint "$out/lenet5_digital.safetensors" --label digital \
  --checkpoint "$out/lenet5_hwa.safetensors" --label hwa \
  --rpu-config StandardHWATrainingPreset --times 1,3600,86400,2592000,31536000 --repeats "$repeats" \
  --csv "$out/drift.csv" --plot "$out/drift.png"
echo "Checkpoints: $out/lenet5_digital.safetensors $out/lenet5_hwa.safetensors"
echo "Results:     $out/drift.csv"
if [ -f "$out/drift.png" ]; then echo "Plot:        $out/drift.png"; fi
