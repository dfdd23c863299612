// Optimizer steps on the GPU: one grid-stride pass per parameter, each
// element through the CPU's formula (kernels/optim_law.h).
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/optim_law.h"

namespace aimc::cuda {
namespace {

__global__ void sgd_step_kernel(optim::SgdCoefficients<float> c, std::size_t n, float* w, const float* g,
                                float* b) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    optim::sgd_element(c, g[i], w[i], c.use_momentum ? b + i : nullptr);
}

__global__ void adam_step_kernel(optim::AdamCoefficients<float> c, std::size_t n, float* w, const float* g,
                                 float* m, float* v) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    optim::adam_element(c, g[i], w[i], m[i], v[i]);
}

}  // namespace

void sgd_step(const optim::SgdCoefficients<float>& c, std::size_t n, float* w, const float* g, float* b) {
  if (n == 0) return;
  AIMC_LAUNCH(sgd_step_kernel, grid_for(n), 256)(c, n, w, g, b);
  check(cudaGetLastError(), "sgd_step kernel launch");
}

void adam_step(const optim::AdamCoefficients<float>& c, std::size_t n, float* w, const float* g, float* m,
               float* v) {
  if (n == 0) return;
  AIMC_LAUNCH(adam_step_kernel, grid_for(n), 256)(c, n, w, g, m, v);
  check(cudaGetLastError(), "adam_step kernel launch");
}

}  // namespace aimc::cuda
