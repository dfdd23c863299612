// CUDA runtime services: device discovery, buffers and copies.
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {

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

void* device_malloc(std::size_t bytes) {
  void* ptr = nullptr;
  check(cudaMalloc(&ptr, bytes == 0 ? 1 : bytes), "cudaMalloc");
  return ptr;
}

void device_free(void* ptr) noexcept {
  if (ptr != nullptr) cudaFree(ptr);
}

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
