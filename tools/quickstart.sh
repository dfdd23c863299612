#!/usr/bin/env bash
# Installs what is missing, builds, and runs the flagship experiment on
# Fashion-MNIST: trains LeNet-5 for 10 epochs and evaluates the checkpoint.
#   tools/quickstart.sh       # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/install_deps.sh
aimc_install_deps
aimc_build
dir="${AIMC_BUILD_DIR:-build}"
mkdir -p "$dir/quickstart"
echo "== Training lenet5 on Fashion-MNIST (10 epochs) =="
"$dir/tools/cli/aimc" train --model lenet5 --epochs 10 --seed 1 --out "$dir/quickstart/lenet5.safetensors"
echo "== Evaluating the saved checkpoint =="
"$dir/tools/cli/aimc" eval --checkpoint "$dir/quickstart/lenet5.safetensors"
echo "Checkpoint: $dir/quickstart/lenet5.safetensors"
