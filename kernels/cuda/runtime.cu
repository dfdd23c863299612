// CUDA runtime services: device discovery and selection, buffers (through the block cache
// of kernels/cuda/block_cache.h) and copies.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

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

void device_name(int index, char* out, std::size_t size) {
  if (size == 0) return;
  out[0] = '\0';
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  std::snprintf(out, size, "%s", prop.name);
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

// The GPU this host thread last made current (the runtime starts every thread on 0).
thread_local int current_index = 0;

// GPUs present (at least 1, so the caches exist for the errors' sake), read once.
int gpus() {
  static const int count = device_count() > 0 ? device_count() : 1;
  return count;
}

void* raw_malloc(std::size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status != cudaSuccess) cudaGetLastError();  // not sticky: clear it before reporting
  check(status, "cudaMalloc");
  return ptr;
}
void raw_free(void* ptr) { cudaFree(ptr); }

// One block cache per GPU (a block is only reused on the GPU that holds it).
// Never destroyed: at exit the driver frees everything, and cudaFree after
// the runtime's own teardown would fail.
BlockCache& block_cache(int index) {
  static std::vector<BlockCache*>* caches = [] {
    auto* v = new std::vector<BlockCache*>();
    for (int i = 0; i < gpus(); ++i) v->push_back(new BlockCache(raw_malloc, raw_free, kCachedBytesLimit));
    return v;
  }();
  return *(*caches)[static_cast<std::size_t>(index)];
}

// Runs f with GPU `index` current, then the caller's GPU again.
template <class F>
void on_device(int index, F&& f) {
  const int previous = current_index;
  if (index != previous) cudaSetDevice(index);
  f();
  if (index != previous) cudaSetDevice(previous);
}

}  // namespace

void use_device(int index) {
  static const int count = device_count();
  if (index < 0 || index >= count)
    throw std::out_of_range("cuda:" + std::to_string(index) + ": GPU index " + std::to_string(index) +
                            " is out of range (" + std::to_string(count) +
                            " GPU(s) found)");
  if (index == current_index) return;
  check(cudaSetDevice(index), "cudaSetDevice");
  current_index = index;
}

int current_device() { return current_index; }

void* device_malloc(std::size_t bytes) { return block_cache(current_index).allocate(bytes); }

void device_free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  for (int i = 0; i < gpus(); ++i)
    if (block_cache(i).owns(ptr)) {
      on_device(i, [&] { block_cache(i).release(ptr); });
      return;
    }
  cudaFree(ptr);
}

std::size_t raw_device_allocations() {
  std::size_t n = 0;
  for (int i = 0; i < gpus(); ++i) n += block_cache(i).raw_allocations();
  return n;
}

void release_cached_memory() {
  for (int i = 0; i < gpus(); ++i) on_device(i, [&] { block_cache(i).trim(); });
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
}
void copy_device_to_host(void* dst, const void* src, std::size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
}
void copy_device_to_device(void* dst, const void* src, std::size_t bytes) {
  // Default: the pointers say which GPUs (one or two) hold them.
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy device->device");
}
void synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace aimc::cuda
