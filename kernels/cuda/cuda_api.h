// Host-side entry points of the CUDA kernels. No CUDA types here, so CPU code
// can include it; without a CUDA build every call reports "unavailable".
// Sizes are element counts unless named *_bytes. Failures throw
// std::runtime_error; engine/ turns them into aimc::DeviceError.
#pragma once

#include <cstddef>

namespace aimc::cuda {

// True when aimc was built with CUDA and a GPU is present and usable.
bool available();
int device_count();

void* device_malloc(std::size_t bytes);
void device_free(void* ptr) noexcept;
void copy_host_to_device(void* dst, const void* src, std::size_t bytes);
void copy_device_to_host(void* dst, const void* src, std::size_t bytes);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes);
void synchronize();

// x[i] = value for i < n.
void fill(float* x, std::size_t n, float value);
// y[i] += alpha * x[i] for i < n.
void axpy(std::size_t n, float alpha, const float* x, float* y);
// x[i] *= alpha for i < n.
void scale(float* x, std::size_t n, float alpha);

}  // namespace aimc::cuda
