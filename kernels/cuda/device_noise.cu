// CUDA twins of the inference device-model kernels: standard normals of a
// Philox stream (cpu::fill_normal, same bits) and the PCM-family laws of
// kernels/analog/pcm_law.h applied element-wise. Grid-stride loops.
#include <cuda_runtime.h>

#include "kernels/analog/pcm_law.h"
#include "kernels/analog/reram_law.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/random_normal.h"

namespace aimc::cuda {
namespace {

__global__ void fill_normal_kernel(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::size_t n,
                                   float* z) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    z[i] = rng::normal_at(seed, stream, block, i);
}

__global__ void pcm_program_kernel(PcmLaw law, const float* g_target, std::size_t n, const float* xi_prog,
                                   const float* xi_nu, float* g_prog, float* nu) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x) {
    g_prog[i] = pcm_program(law, g_target[i], xi_prog[i]);
    nu[i] = pcm_drift_exponent(law, g_target[i], xi_nu[i]);
  }
}

__global__ void pcm_drift_kernel(PcmLaw law, PcmDriftTime t, const float* g_prog, const float* nu, const float* xi,
                                 std::size_t n, float* g) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    g[i] = pcm_read(law, t, g_prog[i], nu[i], xi[i]);
}

__global__ void table_exponent_kernel(DriftTable table, double drift_scale, const float* g_target, std::size_t n,
                                      const float* xi, float* nu) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    nu[i] = table_drift_exponent(table, drift_scale, g_target[i], xi[i]);
}

__global__ void reram_program_kernel(ReRamCmoLaw law, const float* g_target, std::size_t n, const float* xi,
                                     float* g_prog) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    g_prog[i] = reram_program(law, g_target[i], xi[i]);
}

__global__ void reram_drift_kernel(ReRamCmoLaw law, ReRamCmoDriftTime t, const float* g_prog, const float* xi,
                                   std::size_t n, float* g) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    g[i] = reram_read(law, t, g_prog[i], xi[i], xi[n + i]);
}

}  // namespace

void table_drift_exponent(const DriftTable& table, double drift_scale, const float* g_target, std::size_t n,
                          const float* xi, float* nu) {
  if (n == 0) return;
  table_exponent_kernel<<<grid_for(n), 256>>>(table, drift_scale, g_target, n, xi, nu);
  check(cudaGetLastError(), "table_drift_exponent kernel launch");
}

void reram_program(const ReRamCmoLaw& law, const float* g_target, std::size_t n, const float* xi, float* g_prog) {
  if (n == 0) return;
  reram_program_kernel<<<grid_for(n), 256>>>(law, g_target, n, xi, g_prog);
  check(cudaGetLastError(), "reram_program kernel launch");
}

void reram_drift(const ReRamCmoLaw& law, const ReRamCmoDriftTime& t, const float* g_prog, const float* xi,
                 std::size_t n, float* g) {
  if (n == 0) return;
  reram_drift_kernel<<<grid_for(n), 256>>>(law, t, g_prog, xi, n, g);
  check(cudaGetLastError(), "reram_drift kernel launch");
}

void fill_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::size_t count, float* z) {
  if (count == 0) return;
  fill_normal_kernel<<<grid_for(count), 256>>>(seed, stream, block, count, z);
  check(cudaGetLastError(), "fill_normal kernel launch");
}

void pcm_program(const PcmLaw& law, const float* g_target, std::size_t n, const float* xi_prog, const float* xi_nu,
                 float* g_prog, float* nu) {
  if (n == 0) return;
  pcm_program_kernel<<<grid_for(n), 256>>>(law, g_target, n, xi_prog, xi_nu, g_prog, nu);
  check(cudaGetLastError(), "pcm_program kernel launch");
}

void pcm_drift(const PcmLaw& law, const PcmDriftTime& t, const float* g_prog, const float* nu, const float* xi,
               std::size_t n, float* g) {
  if (n == 0) return;
  pcm_drift_kernel<<<grid_for(n), 256>>>(law, t, g_prog, nu, xi, n, g);
  check(cudaGetLastError(), "pcm_drift kernel launch");
}

}  // namespace aimc::cuda
