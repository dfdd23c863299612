// Helpers shared by the CUDA parity test files (tests/test_cuda*.cpp): a
// device copy of a host vector, and an element-wise comparison.
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

#include "kernels/cuda/cuda_api.h"

namespace aimc::test {

// A device copy of a host vector, and back.
struct DeviceVector {
  float* ptr;
  std::size_t n;
  explicit DeviceVector(const std::vector<float>& h) : ptr(nullptr), n(h.size()) {
    ptr = static_cast<float*>(cuda::device_malloc(n * sizeof(float)));
    cuda::copy_host_to_device(ptr, h.data(), n * sizeof(float));
  }
  explicit DeviceVector(std::size_t size) : DeviceVector(std::vector<float>(size, 0.f)) {}
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  ~DeviceVector() { cuda::device_free(ptr); }
  std::vector<float> host() const {
    std::vector<float> h(n);
    cuda::synchronize();
    cuda::copy_device_to_host(h.data(), ptr, n * sizeof(float));
    return h;
  }
};
// Element-wise within one float rounding: nvcc and the host compiler may fuse
// a multiply-add differently (the Philox normals avoid this and match exactly).
inline void check_close(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  REQUIRE(gpu.size() == cpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) CHECK(gpu[i] == Approx(cpu[i]).epsilon(1e-6).margin(1e-6));
}

}  // namespace aimc::test
