// Small CUDA helpers shared by the .cu files: a scoped device buffer, the
// grid-stride loop, and launch checks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

// for (i = this thread's first index; i < n; i += all threads)
#define AIMC_GRID_STRIDE(i, n)                                                        \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += std::int64_t(gridDim.x) * blockDim.x)

namespace aimc::cuda {

// A device buffer of count values, freed when it goes out of scope (also on
// exceptions).
template <class T>
class Buffer {
 public:
  explicit Buffer(std::size_t count = 0)
      : ptr_(count ? static_cast<T*>(device_malloc(count * sizeof(T))) : nullptr) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { device_free(ptr_); }
  T* get() const { return ptr_; }
  void upload(const T* host, std::size_t count) {
    if (count) copy_host_to_device(ptr_, host, count * sizeof(T));
  }
  void download(T* host, std::size_t count) const {
    if (count) copy_device_to_host(host, ptr_, count * sizeof(T));
  }

 private:
  T* ptr_;
};

// Blocks for a grid-stride loop over count values (at least one).
inline unsigned blocks_for(std::int64_t count) {
  return grid_for(static_cast<std::size_t>(count < 1 ? 1 : count));
}

// Throws (naming the kernel) when the last launch failed.
inline void launched(const char* what) { check(cudaGetLastError(), what); }

}  // namespace aimc::cuda
