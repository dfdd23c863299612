#!/usr/bin/env bash
# Embedding aimc as a new user would, against a scratch install (DESTDIR):
#  1. the package: the public headers only (no kernels/cuda/), and aimc.pc
#     requiring what they include (nlohmann_json) and not Eigen;
#  2. the README's library example, extracted from README.md and built with
#     the README's own command line (pkg-config alone), and
#     tests/embed_example.cpp, both run against the installed libaimc.so;
#  3. a CPU-only program needs no CUDA library: no NEEDED entry for
#     libcudart/libcublas/libcurand in libaimc.so, the programs or the
#     installed `aimc`, and embed_example runs under a loader that cannot find
#     them (no ld.so.cache, no RUNPATH of libaimc_cuda.so, LD_LIBRARY_PATH =
#     the install libdir only); there, asking for a GPU throws DeviceError
#     naming the backend library and the missing CUDA library (and only the
#     path in AIMC_CUDA_LIBRARY is tried when that is set).
#  4. the README's steps exactly as written: `meson install -C build` to the
#     default prefix (/usr/local, ldconfig by tools/install_ldconfig.sh), the
#     README's command line, and the program started with no LD_LIBRARY_PATH;
#     as root only, inside a private mount namespace where /usr/local and /etc
#     are overlays, so the machine's own stay untouched (skipped, with a note,
#     where that is not possible).
#   embed_test.sh BUILD_DIR SOURCE_DIR
# (Pipes into `grep -q` are avoided: with pipefail, the writer's SIGPIPE
# would turn a match into a failure.)
set -euo pipefail
build="$1"; src="$2"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "embed_test: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --quiet --no-rebuild >/dev/null
pc=$(find "$dest" -name aimc.pc | head -n 1)
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
libdir=$(dirname "$(find "$dest" -name libaimc.so | head -n 1)")
incdir=$(dirname "$(find "$dest" -path '*/include/aimc/aimc.h' | head -n 1)")

# 1. The package.
[ -f "$incdir/engine/tensor.h" ] || fail "public header engine/tensor.h not installed"
internal=$(find "$incdir" -path '*/kernels/cuda/*' -o -name 'aimc_config.h' -o -path '*/tools/*')
[ -z "$internal" ] || fail "internal headers installed: $internal"
requires=$(pkg-config --print-requires aimc)
grep -q '^nlohmann_json' <<<"$requires" || fail "aimc.pc does not require nlohmann_json: $requires"
if grep -q eigen <<<"$(pkg-config --print-requires --print-requires-private aimc)"; then
  fail "aimc.pc requires eigen3, but no installed header includes Eigen"
fi
if grep -rlq '#include <Eigen\|#include <tbb' "$incdir"; then fail "an installed header includes Eigen or TBB"; fi

# 2. The README's example with the README's command line, and embed_example.
work="$dest/work"
mkdir -p "$work"
awk '/^## Use it as a library/ { in_section = 1 }
     in_section && /^```cpp/ { in_block = 1; next }
     in_block && /^```/ { exit }
     in_block' "$src/README.md" >"$work/example.cpp"
command_line=$(sed -n 's|^// \(g++ .*example\.cpp.*\)$|\1|p' "$work/example.cpp" | head -n 1)
[ -n "$command_line" ] || fail "no '// g++ ... example.cpp' line in the README's library example"
(cd "$work" && eval "$command_line")
(cd "$work" && LD_LIBRARY_PATH="$libdir" ./a.out)
[ -s "$work/lenet5.safetensors" ] || fail "the README's example wrote no checkpoint"
g++ -std=c++20 -O1 "$src/tests/embed_example.cpp" $(pkg-config --cflags --libs aimc) -o "$work/embed_example"
grep -q "$libdir/libaimc.so" <<<"$(LD_LIBRARY_PATH="$libdir" ldd "$work/embed_example")" ||
  fail "embed_example does not resolve libaimc.so to the installed copy"
out=$(LD_LIBRARY_PATH="$libdir" "$work/embed_example")
echo "$out"

# 3. No CUDA library needed by a CPU-only program.
cuda_libs='libcudart|libcublas|libcurand|libcuda\.'
for f in "$libdir/libaimc.so" "$work/a.out" "$work/embed_example" $(find "$dest" -path '*/bin/aimc'); do
  needed=$(readelf -d "$f" | grep NEEDED)
  [ -n "$needed" ] || fail "no NEEDED entries read from $f"
  if grep -Eq "$cuda_libs" <<<"$needed"; then fail "$f needs a CUDA library: $needed"; fi
done
backend="$libdir/libaimc_cuda.so"
if [ -f "$backend" ]; then
  loader=$(readelf -l "$work/embed_example" | sed -n 's|.*interpreter: \(.*\)\]|\1|p')
  # The loader without its cache (where CUDA's directories are) and without
  # libaimc_cuda.so's RUNPATH (CUDA's lib64): the CPU part runs, and the GPU
  # request fails for want of libcudart, which shows the libraries were hidden.
  hidden=("$loader" --inhibit-cache --inhibit-rpath "$backend" --library-path "$libdir")
  hidden_out=$("${hidden[@]}" "$work/embed_example")
  echo "with the CUDA libraries hidden: $(echo "$hidden_out" | tail -n 1)"
  grep -q '^drifted to 1 day' <<<"$hidden_out" || fail "the CPU program did not run with the CUDA libraries hidden"
  grep -q '^gpu: DeviceError: .*libaimc_cuda\.so.*libcudart' <<<"$hidden_out" ||
    fail "asking for a GPU without the CUDA libraries did not throw DeviceError naming them"
  # AIMC_CUDA_LIBRARY names the only path tried.
  named_out=$(AIMC_CUDA_LIBRARY=/nonexistent/libaimc_cuda.so LD_LIBRARY_PATH="$libdir" "$work/embed_example")
  grep -q '^gpu: DeviceError: .*tried: /nonexistent/libaimc_cuda\.so: cannot open' <<<"$named_out" ||
    fail "AIMC_CUDA_LIBRARY was not the path tried: $(tail -n 1 <<<"$named_out")"
  # Not hidden: the installed backend next to libaimc.so loads (then a GPU is
  # usable, or there is none).
  grep -Eq '^gpu: (usable|DeviceError: CUDA device requested but no usable GPU)' <<<"$out" ||
    fail "the installed CUDA backend did not load"
else
  grep -q '^gpu: DeviceError: aimc was built without CUDA' <<<"$out" || fail "CPU-only build: unexpected GPU answer"
fi

# 4. The README's steps as written, on the system prefix (overlaid).
if [ "$(id -u)" = 0 ] && [ "$(sed -n 's/^prefix=//p' "$pc")" = /usr/local ] &&
    unshare -m --propagation private true 2>/dev/null; then
  system="$dest/system"
  mkdir -p "$system"/{usr_upper,usr_work,etc_upper,etc_work,run}
  cp "$work/example.cpp" "$system/run/"
  unshare -m --propagation private bash -euo pipefail -c '
    system="$1"; build="$2"; command_line="$3"
    mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$system/usr_upper,workdir=$system/usr_work" /usr/local
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$system/etc_upper,workdir=$system/etc_work" /etc
    meson install -C "$build" --quiet --no-rebuild >/dev/null
    cd "$system/run"
    unset LD_LIBRARY_PATH PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
    eval "$command_line"
    ./a.out
    [ -s lenet5.safetensors ]' _ "$system" "$build" "$command_line" ||
    fail "the README's steps as written (meson install to /usr/local, g++ ..., ./a.out) failed"
  echo "README steps as written: installed to /usr/local (overlay), built and ran without LD_LIBRARY_PATH"
else
  echo "note: the README's steps on /usr/local were not tried (needs root, the default prefix and unshare)"
fi
