// The CUDA runtime services of kernels/cuda/runtime.cu and the cuBLAS GEMM of
// kernels/cuda/gemm.cu, emulated on the host for the test_cuda_emulated
// executable: "device" memory is host memory (through the same block cache),
// copies are memcpy, and the GEMM is cpu::gemm. The kernels themselves are the
// real .cu sources compiled as C++ (see kernels/cuda/emulation.h and the other
// files here).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/block_cache.h"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {

bool available() { return true; }

// Emulated GPUs: $AIMC_CUDA_EMULATED_DEVICES (1 to 16, default 1), read on
// every call so a test can change it; they share the host memory below.
int device_count() {
  const char* text = std::getenv("AIMC_CUDA_EMULATED_DEVICES");
  const int n = text != nullptr ? std::atoi(text) : 1;
  return n >= 1 && n <= 16 ? n : 1;
}

void device_name(int index, char* out, std::size_t size) {
  if (size > 0) std::snprintf(out, size, "aimc host emulation of a GPU (cuda:%d)", index);
}

namespace {
thread_local int current_index = 0;
}  // namespace

void use_device(int index) {
  const int count = device_count();
  if (index < 0 || index >= count)
    throw std::out_of_range("cuda:" + std::to_string(index) + ": GPU index " + std::to_string(index) +
                            " is out of range (" + std::to_string(count) +
                            " GPU(s) found)");
  current_index = index;
}
int current_device() { return current_index; }

namespace {
void* raw_malloc(std::size_t bytes) {
  void* ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (ptr == nullptr) throw std::bad_alloc();
  return ptr;
}
void raw_free(void* ptr) { std::free(ptr); }
// The real runtime's block cache (so the emulated suite exercises its reuse).
BlockCache& block_cache() {
  static BlockCache cache(raw_malloc, raw_free, std::size_t(1) << 28);
  return cache;
}
}  // namespace

void* device_malloc(std::size_t bytes) { return block_cache().allocate(bytes); }
void device_free(void* ptr) noexcept { block_cache().release(ptr); }
void release_cached_memory() { block_cache().trim(); }
std::size_t raw_device_allocations() { return block_cache().raw_allocations(); }
void copy_host_to_device(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
void copy_device_to_host(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }
void copy_device_to_device(void* dst, const void* src, std::size_t bytes) { std::memmove(dst, src, bytes); }
void synchronize() {}

void gemm(const cpu::GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  cpu::gemm(s, alpha, a, b, beta, c);
}

}  // namespace aimc::cuda
