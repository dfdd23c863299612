#!/usr/bin/env bash
# The sanitizer and fuzz stage of tools/check.sh (issue 12). Needs clang and
# its runtime libraries (installed when missing). Stops at the first report.
#
#   build-asan/  clang, AddressSanitizer + UndefinedBehaviorSanitizer, -O1,
#                no CUDA, the fuzz targets as libFuzzer binaries (-Dfuzz=true).
#                Runs the whole suite except the install and Python checks
#                (embed_pkgconfig, python_safetensors), then each fuzz target
#                for AIMC_FUZZ_SECONDS (default 30: a regression smoke; the
#                campaigns of tests/fuzz/README.md run far longer) on a
#                scratch copy of its seed corpus, two at a time.
#   build-tsan/  clang, ThreadSanitizer: the suites that run the parallel
#                loops (determinism, pulsed, gemm, analog_mvm, random,
#                noise_models) and the emulated CUDA suite, built without
#                -march=native so that the portable twins of the AVX-512
#                loops (Philox lanes, pulse compaction) are checked too.
#
# A finding fails the stage; a fuzz input that crashes is left in
# build-asan/fuzz-findings/ (copy it to tests/fuzz/regressions/<target>/ once
# fixed, so the normal suite replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/install_deps.sh
aimc_install_deps
aimc_install_packages clang libclang-rt-dev

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tools/tsan.supp"

# Without MPI: OpenMPI's own allocations at MPI_Init read as leaks to
# LeakSanitizer and its progress threads are uninstrumented for TSan; the
# communicator's one-process path is still checked.
setup() {  # dir, extra meson options...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$dir" -Dcuda=disabled -Dmpi=disabled -Dbench=false -Dbuildtype=plain -Dcpp_args=-O1 \
      -Db_lundef=false "$@" > "$dir.setup.log" || { cat "$dir.setup.log"; return 1; }
  fi
}

status=0
echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
setup build-asan -Db_sanitize=address,undefined -Dfuzz=true
ninja -C build-asan
mapfile -t asan_tests < <(meson test -C build-asan --no-rebuild --list 2>/dev/null |
  grep -v -E '^(embed_pkgconfig|python_safetensors|onnxruntime|cuda)$')
meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 "${asan_tests[@]}" || status=1

echo "== fuzzing, ${AIMC_FUZZ_SECONDS:-30} s per target"
findings=build-asan/fuzz-findings
mkdir -p "$findings"
fuzz() {
  local t=$1 scratch
  scratch=$(mktemp -d)
  local rc=0 dict=()
  [ -s tests/fuzz/dict/$t.dict ] && dict=(-dict=tests/fuzz/dict/$t.dict)
  build-asan/tests/fuzz/fuzz_$t -max_total_time="${AIMC_FUZZ_SECONDS:-30}" -max_len=65536 -timeout=30 \
    -rss_limit_mb=3072 "${dict[@]}" -artifact_prefix="$findings/$t-" \
    "$scratch" tests/fuzz/corpus/$t > "$findings/$t.log" 2>&1 || rc=$?
  rm -rf "$scratch"
  grep -E "^#[0-9]+[[:space:]]+DONE" "$findings/$t.log" | sed "s/^/fuzz_$t: /" || true
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t: FINDING (exit $rc); the input and log are in $findings/" >&2
    tail -n 30 "$findings/$t.log" >&2
  fi
  return $rc
}
fuzz safetensors & p1=$!
fuzz rpu_config & p2=$!
wait $p1 || status=1
wait $p2 || status=1
fuzz idx & p1=$!
fuzz checkpoint & p2=$!
wait $p1 || status=1
wait $p2 || status=1
# fuzz_onnx is built only with ONNX support (libprotobuf-dev, protobuf-compiler);
# the JSON-lines reader runs beside it.
fuzz json_lines & p1=$!
if [ -x build-asan/tests/fuzz/fuzz_onnx ]; then fuzz onnx || status=1; fi
wait $p1 || status=1

echo "== ThreadSanitizer"
setup build-tsan -Db_sanitize=thread -Dtools=false -Dnative=false
tsan_tests=(determinism pulsed gemm analog_mvm random noise_models cuda_emulated)
ninja -C build-tsan "${tsan_tests[@]/#/tests/test_}"
meson test -C build-tsan --no-rebuild --print-errorlogs --num-processes 2 "${tsan_tests[@]}" || status=1

[ $status -eq 0 ] && echo "sanitizers and fuzzing: no finding" || echo "sanitizers and fuzzing: FAILED" >&2
exit $status
