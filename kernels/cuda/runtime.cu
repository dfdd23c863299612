// CUDA runtime services: device discovery, buffers (through the block cache
// of kernels/cuda/block_cache.h) and copies.
#include <stdexcept>
#include <string>

#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {

// Freed device blocks kept for reuse at most (see block_cache.h).
constexpr std::size_t kCachedBytesLimit = std::size_t(1) << 30;

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

bool available() {
  static const bool usable = [] {
    if (device_count() <= 0) return false;
    void* probe = nullptr;
    if (cudaMalloc(&probe, 256) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    cudaFree(probe);
    return true;
  }();
  return usable;
}

namespace {

void* raw_malloc(std::size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) cudaGetLastError();  // not sticky: clear it before reporting
  check(status, "cudaMalloc");
  return ptr;
}
void raw_free(void* ptr) { cudaFree(ptr); }

// Never destroyed: at exit the driver frees everything, and cudaFree after
// the runtime's own teardown would fail.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache(raw_malloc, raw_free, kCachedBytesLimit);
  return *cache;
}

}  // namespace

void* device_malloc(std::size_t bytes) { return block_cache().allocate(bytes); }
void device_free(void* ptr) noexcept { block_cache().release(ptr); }
void release_cached_memory() { block_cache().trim(); }

void copy_host_to_device(void* dst, const void* src, std::size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
}
void copy_device_to_host(void* dst, const void* src, std::size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
}
void copy_device_to_device(void* dst, const void* src, std::size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device->device");
}
void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace aimc::cuda
