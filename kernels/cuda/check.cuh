// Turns a CUDA status into an exception naming the failed call.
#pragma once

#include <cuda_runtime.h>

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
