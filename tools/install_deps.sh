#!/usr/bin/env bash
# Installs the Debian 12 packages aimc needs, only those that are missing.
# Sourced by tools/check.sh and tools/quickstart.sh; safe to run repeatedly.
set -euo pipefail

# libopenmpi-dev and openmpi-bin: MPI (multi-process `mpirun ... aimc train`
# and its tests); a build without them works as one process.
AIMC_PACKAGES=(g++ pkg-config meson ninja-build libeigen3-dev libtbb-dev catch2 zlib1g-dev
  librandom123-dev nlohmann-json3-dev libcli11-dev dataset-fashion-mnist
  libopenmpi-dev openmpi-bin libprotobuf-dev protobuf-compiler)  # MPI (-Dmpi=auto) and ONNX import/export (-Donnx=auto): optional

# Optional extras for tools/quickstart.sh only (the drift plot); the build and
# the tests never need them.
AIMC_QUICKSTART_PACKAGES=(gnuplot-nox)

# Installs those of the given packages that are missing.
aimc_install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "Installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

aimc_install_deps() {
  aimc_install_packages "${AIMC_PACKAGES[@]}"
}

# The quickstart's optional extras; never fatal (without gnuplot the quickstart
# still writes the data, only the PNG is missing).
aimc_install_quickstart_deps() {
  command -v gnuplot >/dev/null 2>&1 && return 0
  aimc_install_packages "${AIMC_QUICKSTART_PACKAGES[@]}" ||
    echo "warning: could not install ${AIMC_QUICKSTART_PACKAGES[*]}; the quickstart will skip the plot" >&2
}

# Configures build/ once (CUDA when nvcc is found), then builds it.
aimc_build() {
  local dir="${AIMC_BUILD_DIR:-build}"
  if [ ! -f "$dir/build.ninja" ]; then
    if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
      export PATH="/usr/local/cuda/bin:$PATH"
    fi
    meson setup "$dir" -Dcuda=auto -Dbuildtype=release
  fi
  ninja -C "$dir"
}
