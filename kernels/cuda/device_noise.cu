// CUDA twins of the inference device-model kernels: standard normals of a
// Philox stream (cpu::fill_normal, same bits) and the PCM-family laws of
// kernels/analog/pcm_law.h applied element-wise. Grid-stride loops.
#include "kernels/analog/conductance_law.h"
#include "kernels/analog/drift_compensation_law.h"
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

__global__ void pair_conductances_kernel(PairLaw law, double s, const float* w, std::size_t n, float* g) {
  const std::size_t total = n * static_cast<std::size_t>(2 * law.pairs);
  for (std::size_t j = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; j < total;
       j += std::size_t(gridDim.x) * blockDim.x)
    g[j] = pair_conductance(law, s, w[j % n], static_cast<int>(j / n));
}

__global__ void pair_weights_kernel(PairLaw law, double s, const float* g, std::size_t n, float* w) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    w[i] = pair_weight(law, s, g, static_cast<long long>(n), static_cast<long long>(i));
}

__global__ void single_conductances_kernel(double g_min, double s, double w_min, const float* w, std::size_t n,
                                           float* g) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    g[i] = single_conductance(g_min, s, w_min, w[i]);
}

__global__ void single_weights_kernel(double g_min, double s, double w_min, const float* g, std::size_t n,
                                      float* w) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    w[i] = single_weight(g_min, s, w_min, g[i]);
}

__global__ void table_conductances_kernel(PairTables tables, double m, const float* w, std::size_t n, float* g) {
  const std::size_t total = n * static_cast<std::size_t>(tables.devices);
  for (std::size_t j = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; j < total;
       j += std::size_t(gridDim.x) * blockDim.x)
    g[j] = table_conductance(tables, m, w[j % n], static_cast<int>(j / n));
}

__global__ void drift_compensate_kernel(float* y, std::size_t rows, std::size_t cols, const float* alpha,
                                        std::size_t alpha_size) {
  const std::size_t total = rows * cols;
  for (std::size_t k = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; k < total;
       k += std::size_t(gridDim.x) * blockDim.x)
    y[k] = drift_compensated(y[k], alpha, static_cast<std::int64_t>(alpha_size), static_cast<std::int64_t>(k % cols));
}

// One thread per output column, rows in order, in double: deterministic.
__global__ void column_abs_sums_kernel(const float* y, std::size_t in, std::size_t out, double* sums) {
  for (std::size_t j = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; j < out;
       j += std::size_t(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (std::size_t i = 0; i < in; ++i) s += ::fabs(static_cast<double>(y[i * out + j]));
    sums[j] = s;
  }
}

}  // namespace

void pair_to_conductances(const PairLaw& law, double s, const float* w, std::size_t n, float* g) {
  if (n == 0) return;
  AIMC_LAUNCH(pair_conductances_kernel, grid_for(n * 2 * law.pairs), 256)(law, s, w, n, g);
  check(cudaGetLastError(), "pair_to_conductances kernel launch");
}

void pair_to_weights(const PairLaw& law, double s, const float* g, std::size_t n, float* w) {
  if (n == 0) return;
  AIMC_LAUNCH(pair_weights_kernel, grid_for(n), 256)(law, s, g, n, w);
  check(cudaGetLastError(), "pair_to_weights kernel launch");
}

void single_to_conductances(double g_min, double s, double w_min, const float* w, std::size_t n, float* g) {
  if (n == 0) return;
  AIMC_LAUNCH(single_conductances_kernel, grid_for(n), 256)(g_min, s, w_min, w, n, g);
  check(cudaGetLastError(), "single_to_conductances kernel launch");
}

void single_to_weights(double g_min, double s, double w_min, const float* g, std::size_t n, float* w) {
  if (n == 0) return;
  AIMC_LAUNCH(single_weights_kernel, grid_for(n), 256)(g_min, s, w_min, g, n, w);
  check(cudaGetLastError(), "single_to_weights kernel launch");
}

void table_to_conductances(const PairTables& tables, double m, const float* w, std::size_t n, float* g) {
  if (n == 0) return;
  AIMC_LAUNCH(table_conductances_kernel, grid_for(n * tables.devices), 256)(tables, m, w, n, g);
  check(cudaGetLastError(), "table_to_conductances kernel launch");
}

void column_abs_sums(const float* y, std::size_t in, std::size_t out, double* sums) {
  if (out == 0) return;
  AIMC_LAUNCH(column_abs_sums_kernel, grid_for(out), 256)(y, in, out, sums);
  check(cudaGetLastError(), "column_abs_sums kernel launch");
}

void drift_compensate(float* y, std::size_t rows, std::size_t cols, const float* alpha, std::size_t alpha_size) {
  if (rows * cols == 0) return;
  AIMC_LAUNCH(drift_compensate_kernel, grid_for(rows * cols), 256)(y, rows, cols, alpha, alpha_size);
  check(cudaGetLastError(), "drift_compensate kernel launch");
}

void table_drift_exponent(const DriftTable& table, double drift_scale, const float* g_target, std::size_t n,
                          const float* xi, float* nu) {
  if (n == 0) return;
  AIMC_LAUNCH(table_exponent_kernel, grid_for(n), 256)(table, drift_scale, g_target, n, xi, nu);
  check(cudaGetLastError(), "table_drift_exponent kernel launch");
}

void reram_program(const ReRamCmoLaw& law, const float* g_target, std::size_t n, const float* xi, float* g_prog) {
  if (n == 0) return;
  AIMC_LAUNCH(reram_program_kernel, grid_for(n), 256)(law, g_target, n, xi, g_prog);
  check(cudaGetLastError(), "reram_program kernel launch");
}

void reram_drift(const ReRamCmoLaw& law, const ReRamCmoDriftTime& t, const float* g_prog, const float* xi,
                 std::size_t n, float* g) {
  if (n == 0) return;
  AIMC_LAUNCH(reram_drift_kernel, grid_for(n), 256)(law, t, g_prog, xi, n, g);
  check(cudaGetLastError(), "reram_drift kernel launch");
}

void fill_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::size_t count, float* z) {
  if (count == 0) return;
  AIMC_LAUNCH(fill_normal_kernel, grid_for(count), 256)(seed, stream, block, count, z);
  check(cudaGetLastError(), "fill_normal kernel launch");
}

void pcm_program(const PcmLaw& law, const float* g_target, std::size_t n, const float* xi_prog, const float* xi_nu,
                 float* g_prog, float* nu) {
  if (n == 0) return;
  AIMC_LAUNCH(pcm_program_kernel, grid_for(n), 256)(law, g_target, n, xi_prog, xi_nu, g_prog, nu);
  check(cudaGetLastError(), "pcm_program kernel launch");
}

void pcm_drift(const PcmLaw& law, const PcmDriftTime& t, const float* g_prog, const float* nu, const float* xi,
               std::size_t n, float* g) {
  if (n == 0) return;
  AIMC_LAUNCH(pcm_drift_kernel, grid_for(n), 256)(law, t, g_prog, nu, xi, n, g);
  check(cudaGetLastError(), "pcm_drift kernel launch");
}

}  // namespace aimc::cuda
