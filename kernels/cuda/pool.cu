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

// Output element idx (of all planes): its plane q and the corner c of its
// window in the input (may lie in the padding).
struct Window {
  std::int64_t q, c[3];
};
__device__ __forceinline__ Window output_window(const Pool3& e, std::int64_t idx) {
  const std::int64_t o = idx % e.out_plane;
  const std::int64_t od[3] = {o / (e.out[1] * e.out[2]), (o / e.out[2]) % e.out[1], o % e.out[2]};
  Window w{idx / e.out_plane, {}};
  for (int d = 0; d < 3; ++d) w.c[d] = od[d] * e.s[d] - e.p[d];
  return w;
}

// Input element idx (of all planes): its plane q, its flat index i in the
// plane and, per dim, the outputs [lo, hi] whose windows hold it.
struct Holders {
  std::int64_t q, i, lo[3], hi[3];
};
__device__ __forceinline__ Holders input_holders(const Pool3& e, std::int64_t idx) {
  Holders h{idx / e.in_plane, idx % e.in_plane, {}, {}};
  const std::int64_t id[3] = {h.i / (e.in[1] * e.in[2]), (h.i / e.in[2]) % e.in[1], h.i % e.in[2]};
  for (int d = 0; d < 3; ++d) window_range(e, d, id[d], h.lo[d], h.hi[d]);
  return h;
}

__device__ __forceinline__ std::int64_t out_flat(const Pool3& e, std::int64_t o0, std::int64_t o1, std::int64_t o2) {
  return (o0 * e.out[1] + o1) * e.out[2] + o2;
}

// Max over each window in row-major order from -inf; a larger value or a NaN
// takes over (the last NaN wins); argmax is the flat input index in the
// plane, or the clipped window origin when nothing beat -inf.
__global__ void max_pool_kernel(Pool3 e, std::size_t total, const float* x, float* y, std::int64_t* argmax) {
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const Window w = output_window(e, static_cast<std::int64_t>(idx));
    const float* plane = x + w.q * e.in_plane;
    float best = -INFINITY;
    std::int64_t where = -1;
    for (std::int64_t a = 0; a < e.k[0]; ++a)
      for (std::int64_t b = 0; b < e.k[1]; ++b)
        for (std::int64_t k = 0; k < e.k[2]; ++k) {
          const std::int64_t i0 = w.c[0] + a, i1 = w.c[1] + b, i2 = w.c[2] + k;
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
                             : ((w.c[0] > 0 ? w.c[0] : 0) * e.in[1] + (w.c[1] > 0 ? w.c[1] : 0)) * e.in[2] +
                                   (w.c[2] > 0 ? w.c[2] : 0);
  }
}

// gx[i] = Σ gy[o] over the outputs o (ascending, as the CPU's scatter) whose argmax is i.
__global__ void max_pool_backward_kernel(Pool3 e, std::size_t total, const float* gy, const std::int64_t* argmax,
                                         float* gx) {
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const Holders h = input_holders(e, static_cast<std::int64_t>(idx));
    const float* g = gy + h.q * e.out_plane;
    const std::int64_t* arg = argmax + h.q * e.out_plane;
    float sum = 0.f;
    for (std::int64_t o0 = h.lo[0]; o0 <= h.hi[0]; ++o0)
      for (std::int64_t o1 = h.lo[1]; o1 <= h.hi[1]; ++o1)
        for (std::int64_t o2 = h.lo[2]; o2 <= h.hi[2]; ++o2) {
          const std::int64_t o = out_flat(e, o0, o1, o2);
          if (arg[o] == h.i) sum += g[o];
        }
    gx[idx] = sum;
  }
}

// Window sums in row-major order over the elements inside the input (padding
// counts as 0), times 1/volume (count_include_pad).
__global__ void avg_pool_kernel(Pool3 e, std::size_t total, const float* x, float* y) {
  const float scale = 1.f / static_cast<float>(e.kernel_volume);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const Window w = output_window(e, static_cast<std::int64_t>(idx));
    const float* plane = x + w.q * e.in_plane;
    float sum = 0.f;
    for (std::int64_t a = 0; a < e.k[0]; ++a)
      for (std::int64_t b = 0; b < e.k[1]; ++b)
        for (std::int64_t k = 0; k < e.k[2]; ++k) {
          const std::int64_t i0 = w.c[0] + a, i1 = w.c[1] + b, i2 = w.c[2] + k;
          if (i0 >= 0 && i0 < e.in[0] && i1 >= 0 && i1 < e.in[1] && i2 >= 0 && i2 < e.in[2])
            sum += plane[(i0 * e.in[1] + i1) * e.in[2] + i2];
        }
    y[idx] = sum * scale;
  }
}

// gx[i] = Σ gy[o]/volume over the windows holding i, in the CPU's scatter
// order: output lines (o0, o1) ascending, then the last dim's kernel offset
// ascending, which is o2 descending.
__global__ void avg_pool_backward_kernel(Pool3 e, std::size_t total, const float* gy, float* gx) {
  const float scale = 1.f / static_cast<float>(e.kernel_volume);
  for (std::size_t idx = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; idx < total;
       idx += std::size_t(gridDim.x) * blockDim.x) {
    const Holders h = input_holders(e, static_cast<std::int64_t>(idx));
    const float* g = gy + h.q * e.out_plane;
    float sum = 0.f;
    for (std::int64_t o0 = h.lo[0]; o0 <= h.hi[0]; ++o0)
      for (std::int64_t o1 = h.lo[1]; o1 <= h.hi[1]; ++o1)
        for (std::int64_t o2 = h.hi[2]; o2 >= h.lo[2]; --o2) sum += g[out_flat(e, o0, o1, o2)] * scale;
    gx[idx] = sum;
  }
}

// One thread per element of `per_plane` (the output plane forward, the input
// plane backward) of every plane.
template <class... Params, class... Args>
void launch(void (*kernel)(Pool3, std::size_t, Params...), const cpu::PoolGeometry& g, std::int64_t planes,
            bool per_input, const char* what, Args... args) {
  const Pool3 e = expand(g);
  const std::size_t n = static_cast<std::size_t>(planes * (per_input ? e.in_plane : e.out_plane));
  if (n == 0) return;
  AIMC_LAUNCH(kernel, grid_for(n), 256)(e, n, args...);
  check(cudaGetLastError(), what);
}

}  // namespace

void max_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y,
                      std::int64_t* argmax) {
  launch(max_pool_kernel, g, planes, false, "max_pool kernel launch", x, y, argmax);
}

void max_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y,
                       const std::int64_t* argmax, float* grad_x) {
  launch(max_pool_backward_kernel, g, planes, true, "max_pool backward kernel launch", grad_y, argmax, grad_x);
}

void avg_pool_forward(const cpu::PoolGeometry& g, std::int64_t planes, const float* x, float* y) {
  launch(avg_pool_kernel, g, planes, false, "avg_pool kernel launch", x, y);
}

void avg_pool_backward(const cpu::PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x) {
  launch(avg_pool_backward_kernel, g, planes, true, "avg_pool backward kernel launch", grad_y, grad_x);
}

}  // namespace aimc::cuda
