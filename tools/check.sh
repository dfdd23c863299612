#!/usr/bin/env bash
# Installs what is missing, builds into build/ and runs the whole test suite.
# CUDA tests report "skipped" on machines without a GPU; the MPI tests
# (communicator_mpi*, data_parallel_mpi*, mpi_train: mpirun with 2 and 4
# ranks, allowed to run as root by their test environment) run when OpenMPI
# is installed, as install_deps does, and report "skipped" otherwise. Then, unless
# AIMC_SANITIZERS=0, the sanitizer and fuzz stage (tools/sanitize.sh):
# clang builds with AddressSanitizer + UndefinedBehaviorSanitizer and with
# ThreadSanitizer, their test runs, and each fuzz target for a bounded time.
#   tools/check.sh                       # from the repository root
#   AIMC_SANITIZERS=0 tools/check.sh     # the main build and suite only
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/install_deps.sh
aimc_install_deps
aimc_build
# Optional: lets the test suite check that Python's safetensors reads our
# checkpoints; the test is skipped when this cannot be installed.
python3 -c "import safetensors.numpy, numpy" 2>/dev/null ||
  timeout 180 python3 -m pip install --quiet --timeout 15 --retries 1 safetensors numpy >/dev/null 2>&1 || true
# Optional: the onnx and onnxruntime packages, for the onnxruntime agreement test.
python3 -c "import onnx, onnxruntime" 2>/dev/null ||
  timeout 240 python3 -m pip install --quiet --timeout 15 --retries 1 onnx onnxruntime >/dev/null 2>&1 || true
dir="${AIMC_BUILD_DIR:-build}"
status=0
meson test -C "$dir" --print-errorlogs --num-processes 2 || status=$?
# One summary line in the common "N passed, N failed" form.
python3 - "$dir/meson-logs/testlog.json" <<'PY' || true
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)
    counts[r["result"]] = counts.get(r["result"], 0) + 1
failed = counts["FAIL"] + counts["TIMEOUT"] + counts["ERROR"] + counts["UNEXPECTEDPASS"]
print(f"{counts['OK']} passed, {failed} failed, {counts['SKIP']} skipped")
PY
if [ "${AIMC_SANITIZERS:-1}" != 0 ]; then
  bash tools/sanitize.sh || status=1
fi
exit $status
