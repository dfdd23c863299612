#!/usr/bin/env bash
# aimc's import of ONNX models built with the onnx package agrees with
# onnxruntime within 1e-5 relative (test_onnx's [.onnxruntime] case), and
# `aimc import` / `aimc export` / `aimc eval` run on such a model. Skipped
# (exit 77) when python3 lacks onnx, onnxruntime or numpy (tools/check.sh
# tries to install them).
#   onnxruntime_test.sh AIMC_CLI TEST_ONNX
set -euo pipefail
cli="$1"
test_onnx="$2"
here="$(cd "$(dirname "$0")" && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
rc=0
python3 "$here/onnxruntime_models.py" "$dir" || rc=$?
if [ "$rc" -eq 77 ]; then exit 77; fi
[ "$rc" -eq 0 ] || { echo "onnxruntime_models.py failed ($rc)"; exit 1; }
AIMC_ONNXRUNTIME_DIR="$dir" "$test_onnx" "[.onnxruntime]"
# The CLI on the onnx package's LeNet-5: import, eval on the dataset, export, import again.
"$cli" import "$dir/lenet5.onnx" --out "$dir/lenet5.safetensors"
"$cli" eval --checkpoint "$dir/lenet5.safetensors" --limit-test 100
"$cli" export --checkpoint "$dir/lenet5.safetensors" --out "$dir/lenet5_again.onnx"
python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$dir/lenet5_again.onnx"
# A model of two inputs: --input-shape once per input; eval then refuses it (the datasets give one input).
"$cli" import "$dir/two_inputs.onnx" --out "$dir/two.safetensors" --input-shape 3,4 --input-shape 4
if "$cli" eval --checkpoint "$dir/two.safetensors" 2>"$dir/err.txt"; then
  echo "eval took a two-input checkpoint"; exit 1
fi
grep -q "takes 2 inputs" "$dir/err.txt" || { cat "$dir/err.txt"; exit 1; }
echo "onnxruntime agreement OK"
