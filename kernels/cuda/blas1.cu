// Level-1 vector kernels: fill, axpy, scale. Grid-stride loops over n elements.
#include <cuda_runtime.h>

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

}  // namespace

void fill(float* x, std::size_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<grid_for(n), 256>>>(x, n, value);
  check(cudaGetLastError(), "fill kernel launch");
}

void axpy(std::size_t n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), 256>>>(n, alpha, x, y);
  check(cudaGetLastError(), "axpy kernel launch");
}

void scale(float* x, std::size_t n, float alpha) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), 256>>>(x, n, alpha);
  check(cudaGetLastError(), "scale kernel launch");
}

}  // namespace aimc::cuda
