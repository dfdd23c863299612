// max_pool and avg_pool on CUDA, the twins of kernels/cpu/pool.cpp: one
// thread per output element forward, one per input element backward (a
// gather over the windows that contain it, so no atomics). Windows are read
// in the CPU's order and the gathered sums add their terms in the order the
// CPU's scatter adds them, so the results have the CPU's bits (up to a fused
// multiply-add the host compiler may make in avg_pool's backward).
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {

using cpu::expand;
using cpu::Pool3;

// The outputs along dim d whose window holds input index i: [lo, hi].
__device__ __forceinline__ void window_range(const Pool3& e, int d, std::int64_t i, std::int64_t& lo,
                                             std::int64_t& hi) {
  const std::int64_t first = i + e.p[d] - e.k[d] + 1;  // o·s >= first
  lo = first <= 0 ? 0 : (first + e.s[d] - 1) / e.s[d];
  hi = (i + e.p[d]) / e.s[d];
  if (hi > e.out[d] - 1) hi = e.out[d] - 1;
}

// Max over each window in row-major order from -inf; a larger value or a NaN
// takes over (the last NaN wins); argmax is the flat input index in the
// plane, or the clipped window origin when nothing beat -inf.
__global__ void max_pool_kernel(Pool3 e, std::int64_t planes, const float* x, float* y, std::int64_t* argmax) {
  const std::size_t total = static_cast<std::size_t>(planes * e.out_plane);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = static_cast<std::int64_t>(idx) / e.out_plane, o = static_cast<std::int64_t>(idx) % e.out_plane;
    const std::int64_t o0 = o / (e.out[1] * e.out[2]), o1 = (o / e.out[2]) % e.out[1], o2 = o % e.out[2];
    const std::int64_t c0 = o0 * e.s[0] - e.p[0], c1 = o1 * e.s[1] - e.p[1], c2 = o2 * e.s[2] - e.p[2];
    const float* plane = x + q * e.in_plane;
    float best = -INFINITY;
    std::int64_t where = -1;
    for (std::int64_t a = 0; a < e.k[0]; ++a)
      for (std::int64_t b = 0; b < e.k[1]; ++b)
        for (std::int64_t k = 0; k < e.k[2]; ++k) {
          const std::int64_t i0 = c0 + a, i1 = c1 + b, i2 = c2 + k;
          const bool inside = i0 >= 0 && i0 < e.in[0] && i1 >= 0 && i1 < e.in[1] && i2 >= 0 && i2 < e.in[2];
          const std::int64_t flat = (i0 * e.in[1] + i1) * e.in[2] + i2;
          const float v = inside ? plane[flat] : -INFINITY;
          if (v > best || v != v) {
            best = v;
            where = flat;
          }
        }
    y[idx] = best;
    argmax[idx] = where >= 0 ? where
                             : ((c0 > 0 ? c0 : 0) * e.in[1] + (c1 > 0 ? c1 : 0)) * e.in[2] + (c2 > 0 ? c2 : 0);
  }
}

// gx[i] = Σ gy[o] over the outputs o (ascending, as the CPU's scatter) whose argmax is i.
__global__ void max_pool_backward_kernel(Pool3 e, std::int64_t planes, const float* gy, const std::int64_t* argmax,
                                         float* gx) {
  const std::size_t total = static_cast<std::size_t>(planes * e.in_plane);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = static_cast<std::int64_t>(idx) / e.in_plane, i = static_cast<std::int64_t>(idx) % e.in_plane;
    const std::int64_t i0 = i / (e.in[1] * e.in[2]), i1 = (i / e.in[2]) % e.in[1], i2 = i % e.in[2];
    std::int64_t lo0, hi0, lo1, hi1, lo2, hi2;
    window_range(e, 0, i0, lo0, hi0);
    window_range(e, 1, i1, lo1, hi1);
    window_range(e, 2, i2, lo2, hi2);
    const float* g = gy + q * e.out_plane;
    const std::int64_t* arg = argmax + q * e.out_plane;
    float sum = 0.f;
    for (std::int64_t o0 = lo0; o0 <= hi0; ++o0)
      for (std::int64_t o1 = lo1; o1 <= hi1; ++o1)
        for (std::int64_t o2 = lo2; o2 <= hi2; ++o2) {
          const std::int64_t o = (o0 * e.out[1] + o1) * e.out[2] + o2;
          if (arg[o] == i) sum += g[o];
        }
    gx[idx] = sum;
  }
}

// Window sums in row-major order over the elements inside the input (padding
// counts as 0), times 1/volume (count_include_pad).
__global__ void avg_pool_kernel(Pool3 e, std::int64_t planes, const float* x, float* y) {
  const float scale = 1.f / static_cast<float>(e.kernel_volume);
  const std::size_t total = static_cast<std::size_t>(planes * e.out_plane);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = static_cast<std::int64_t>(idx) / e.out_plane, o = static_cast<std::int64_t>(idx) % e.out_plane;
    const std::int64_t o0 = o / (e.out[1] * e.out[2]), o1 = (o / e.out[2]) % e.out[1], o2 = o % e.out[2];
    const std::int64_t c0 = o0 * e.s[0] - e.p[0], c1 = o1 * e.s[1] - e.p[1], c2 = o2 * e.s[2] - e.p[2];
    const float* plane = x + q * e.in_plane;
    float sum = 0.f;
    for (std::int64_t a = 0; a < e.k[0]; ++a)
      for (std::int64_t b = 0; b < e.k[1]; ++b)
        for (std::int64_t k = 0; k < e.k[2]; ++k) {
          const std::int64_t i0 = c0 + a, i1 = c1 + b, i2 = c2 + k;
          if (i0 >= 0 && i0 < e.in[0] && i1 >= 0 && i1 < e.in[1] && i2 >= 0 && i2 < e.in[2])
            sum += plane[(i0 * e.in[1] + i1) * e.in[2] + i2];
        }
    y[idx] = sum * scale;
  }
}

// gx[i] = Σ gy[o]/volume over the windows holding i, in the CPU's scatter
// order: output lines (o0, o1) ascending, then the last dim's kernel offset
// ascending, which is o2 descending.
__global__ void avg_pool_backward_kernel(Pool3 e, std::int64_t planes, const float* gy, float* gx) {
  const float scale = 1.f / static_cast<float>(e.kernel_volume);
  const std::size_t total = static_cast<std::size_t>(planes * e.in_plane);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const std::int64_t q = static_cast<std::int64_t>(idx) / e.in_plane, i = static_cast<std::int64_t>(idx) % e.in_plane;
    const std::int64_t i0 = i / (e.in[1] * e.in[2]), i1 = (i / e.in[2]) % e.in[1], i2 = i % e.in[2];
    std::int64_t lo0, hi0, lo1, hi1, lo2, hi2;
    window_range(e, 0, i0, lo0, hi0);
    window_range(e, 1, i1, lo1, hi1);
    window_range(e, 2, i2, lo2, hi2);
    const float* g = gy + q * e.out_plane;
    float sum = 0.f;
    for (std::int64_t o0 = lo0; o0 <= hi0; ++o0)
      for (std::int64_t o1 = lo1; o1 <= hi1; ++o1)
        for (std::int64_t o2 = hi2; o2 >= lo2; --o2) sum += g[(o0 * e.out[1] + o1) * e.out[2] + o2] * scale;
    gx[idx] = sum;
  }
}

}  // namespace

void max_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y,
                      std::int64_t* argmax) {
  const Pool3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(planes * e.out_plane);
  if (n == 0) return;
  AIMC_LAUNCH(max_pool_kernel, grid_for(n), 256)(e, planes, x, y, argmax);
  check(cudaGetLastError(), "max_pool kernel launch");
}

void max_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y,
                       const std::int64_t* argmax, float* grad_x) {
  const Pool3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(planes * e.in_plane);
  if (n == 0) return;
  AIMC_LAUNCH(max_pool_backward_kernel, grid_for(n), 256)(e, planes, grad_y, argmax, grad_x);
  check(cudaGetLastError(), "max_pool backward kernel launch");
}

void avg_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y) {
  const Pool3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(planes * e.out_plane);
  if (n == 0) return;
  AIMC_LAUNCH(avg_pool_kernel, grid_for(n), 256)(e, planes, x, y);
  check(cudaGetLastError(), "avg_pool kernel launch");
}

void avg_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x) {
  const Pool3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(planes * e.in_plane);
  if (n == 0) return;
  AIMC_LAUNCH(avg_pool_backward_kernel, grid_for(n), 256)(e, planes, grad_y, grad_x);
  check(cudaGetLastError(), "avg_pool backward kernel launch");
}

}  // namespace aimc::cuda
