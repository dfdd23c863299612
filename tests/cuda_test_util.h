// Helpers shared by the CUDA parity test files (tests/test_cuda*.cpp): a
// device copy of a host vector, and an element-wise comparison.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
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

// Analog tile outputs, GPU against CPU: the same Philox noise and per-element
// code, but the crossbar GEMM sums in another order and the compilers fuse
// multiply-adds differently, so an output near a rounding boundary may land
// one ADC step away and a row at the bound may take another bound-management
// pass. At least 97 % of the outputs within 1e-4 relative (+ 1e-5 of the
// output range) and every one within 10 % of the range; a wrong noise draw,
// counter or line value moves nearly all outputs by far more and fails.
inline void check_tile_parity(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  REQUIRE(gpu.size() == cpu.size());
  float range = 0.f;
  for (float v : cpu) range = std::max(range, std::abs(v));
  REQUIRE(range > 0.f);
  std::size_t tight = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    tight += std::abs(gpu[i] - cpu[i]) <= 1e-4f * std::abs(cpu[i]) + 1e-5f * range;
    CHECK(std::abs(gpu[i] - cpu[i]) <= 0.1f * range);
  }
  CHECK(double(tight) >= 0.97 * double(cpu.size()));
}

}  // namespace aimc::test
