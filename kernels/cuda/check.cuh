// Turns a CUDA status into an exception naming the failed call, and the
// kernel-launch macro. Every .cu file includes this first: under
// AIMC_CUDA_EMULATION (tests/cuda_emulation) the kernels compile as plain C++
// against kernels/cuda/emulation.h instead of the CUDA runtime.
#pragma once

#ifdef AIMC_CUDA_EMULATION
#include "kernels/cuda/emulation.h"
// The launch runs on host threads (see emulation.h).
#define AIMC_LAUNCH(kernel, ...) aimc::cuda_emulation::launch(kernel, __VA_ARGS__)
#else
#include <cuda_runtime.h>
// AIMC_LAUNCH(kernel, grid, block)(args...) is kernel<<<grid, block>>>(args...).
#define AIMC_LAUNCH(kernel, ...) kernel<<<__VA_ARGS__>>>
#endif

#include <cstddef>
#include <stdexcept>
#include <string>

namespace aimc::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(status));
  }
}

// Blocks of 256 threads; grid capped so very large n loops (grid-stride).
inline unsigned grid_for(std::size_t n, unsigned block = 256) {
  std::size_t g = (n + block - 1) / block;
  if (g > 65535u * 16u) g = 65535u * 16u;
  return static_cast<unsigned>(g == 0 ? 1 : g);
}

}  // namespace aimc::cuda
