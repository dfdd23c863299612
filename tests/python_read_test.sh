#!/usr/bin/env bash
# A checkpoint written by `aimc train` is readable by Python's safetensors
# package, with the shapes, dtypes and metadata aimc wrote, including an
# analog model's tile state (int64 counters and seed, float32 running
# values). Skipped (exit 77)
# when python3 lacks safetensors/numpy (tools/check.sh tries to install them).
#   python_read_test.sh AIMC_CLI
set -euo pipefail
cli="$1"
python3 -c "import safetensors.numpy, numpy" 2>/dev/null || { echo "safetensors/numpy not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$cli" train --model mlp --epochs 1 --limit-train 256 --limit-test 100 --seed 3 --out "$dir/mlp.safetensors" --json >/dev/null
python3 - "$dir/mlp.safetensors" <<'PY'
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
path = sys.argv[1]
t = load_file(path)
assert t["1.weight"].shape == (256, 784) and t["1.weight"].dtype == np.float32, t["1.weight"].shape
assert t["3.weight"].shape == (128, 256)
assert t["5.bias"].shape == (10,)
assert all(np.isfinite(v).all() for v in t.values())
bound = 1 / np.sqrt(784)  # trained one epoch: still near the kaiming-uniform range
assert np.abs(t["1.weight"]).max() < 10 * bound
with safe_open(path, framework="numpy") as f:
    meta = f.metadata()
assert json.loads(meta["aimc.model"])["model"] == "mlp", meta
print("python safetensors read", len(t), "tensors OK")
PY
"$cli" train --model mlp --epochs 1 --limit-train 256 --limit-test 100 --seed 3 --rpu-config InferenceRPUConfig \
  --out "$dir/analog.safetensors" --json >/dev/null
python3 - "$dir/analog.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
for key in ("forward_counter", "backward_counter", "seed"):
    v = t["1.tile_0_0_" + key]
    assert v.dtype == np.int64 and v.shape == (), (key, v.dtype, v.shape)
for key in ("forward_nm_running", "backward_nm_running"):
    v = t["1.tile_0_0_" + key]
    assert v.dtype == np.float32 and v.shape == (), (key, v.dtype, v.shape)
# One epoch of training drew forward noise (the backward pass is perfect).
assert t["1.tile_0_0_forward_counter"] > 0 and t["1.tile_0_0_backward_counter"] == 0
assert not any(k.endswith("_state") for k in t), [k for k in t if k.endswith("_state")]
print("python safetensors read the analog tile state OK")
PY
