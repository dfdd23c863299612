// Level-1 vector kernels: fill, axpy, scale. Grid-stride loops over n elements.
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {

__global__ void fill_kernel(float* x, std::size_t n, float value) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    x[i] = value;
}

__global__ void axpy_kernel(std::size_t n, float alpha, const float* x, float* y) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    y[i] = fmaf(alpha, x[i], y[i]);
}

__global__ void scale_kernel(float* x, std::size_t n, float alpha) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    x[i] *= alpha;
}

// m[r] = max_c |w[r, c]| over c < cols_used, one thread per row (a maximum
// is exact in any order).
__global__ void row_abs_max_kernel(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t cols_used,
                                   float* m) {
  for (std::int64_t r = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; r < rows;
       r += std::int64_t(gridDim.x) * blockDim.x) {
    const float* x = w + r * cols;
    float a = 0.f;
    for (std::int64_t c = 0; c < cols_used; ++c) {
      const float v = ::fabsf(x[c]);
      a = a < v ? v : a;
    }
    m[r] = a;
  }
}

}  // namespace

void row_abs_max(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t cols_used, float* m) {
  if (rows <= 0) return;
  AIMC_LAUNCH(row_abs_max_kernel, grid_for(static_cast<std::size_t>(rows)), 256)(w, rows, cols, cols_used, m);
  check(cudaGetLastError(), "row_abs_max kernel launch");
}

void fill(float* x, std::size_t n, float value) {
  if (n == 0) return;
  AIMC_LAUNCH(fill_kernel, grid_for(n), 256)(x, n, value);
  check(cudaGetLastError(), "fill kernel launch");
}

void axpy(std::size_t n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  AIMC_LAUNCH(axpy_kernel, grid_for(n), 256)(n, alpha, x, y);
  check(cudaGetLastError(), "axpy kernel launch");
}

void scale(float* x, std::size_t n, float alpha) {
  if (n == 0) return;
  AIMC_LAUNCH(scale_kernel, grid_for(n), 256)(x, n, alpha);
  check(cudaGetLastError(), "scale kernel launch");
}

}  // namespace aimc::cuda
