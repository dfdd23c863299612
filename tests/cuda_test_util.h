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

// The largest |v|: the scale the tolerances below take relative to.
inline float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::abs(x));
  return m;
}

// How many gpu values lie further than rel·(|cpu| + max|cpu|) from cpu's.
inline std::size_t count_apart(const std::vector<float>& gpu, const std::vector<float>& cpu, float rel) {
  REQUIRE(gpu.size() == cpu.size());
  const float range = max_abs(cpu);
  std::size_t apart = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) apart += !(std::abs(gpu[i] - cpu[i]) <= rel * (std::abs(cpu[i]) + range));
  return apart;
}

// At least 97 % of the gpu values within tight_rel·|cpu| + tight_range·range
// of cpu's, and every one within bound·range (range = max|cpu|): GPU results
// whose sums add in another order, so a value near an ADC rounding boundary
// may land one step away.
inline void check_mostly_close(const std::vector<float>& gpu, const std::vector<float>& cpu, float tight_rel,
                               float tight_range, float bound) {
  REQUIRE(gpu.size() == cpu.size());
  const float range = max_abs(cpu);
  std::size_t tight = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    tight += std::abs(gpu[i] - cpu[i]) <= tight_rel * std::abs(cpu[i]) + tight_range * range;
    CHECK(std::abs(gpu[i] - cpu[i]) <= bound * range);
  }
  CHECK(double(tight) >= 0.97 * double(cpu.size()));
}

// Analog layers' values after GPU work against the CPU's: under the emulation
// the kernels are the CPU's code and only engine reductions sum in another
// order, so every value within 1e-6·(|cpu| + max|cpu|); on a GPU
// check_mostly_close with the caller's tolerances.
inline void check_analog_parity(const std::vector<float>& gpu, const std::vector<float>& cpu, float tight_rel,
                                float tight_range, float bound) {
#ifdef AIMC_CUDA_EMULATION
  (void)tight_rel, (void)tight_range, (void)bound;
  CHECK(count_apart(gpu, cpu, 1e-6f) == 0);
#else
  check_mostly_close(gpu, cpu, tight_rel, tight_range, bound);
#endif
}

// Analog tile outputs, GPU against CPU: the same Philox noise and per-element
// code, but the crossbar GEMM sums in another order and the compilers fuse
// multiply-adds differently, so an output near a rounding boundary may land
// one ADC step away and a row at the bound may take another bound-management
// pass. At least 97 % of the outputs within 1e-4 relative (+ 1e-5 of the
// output range) and every one within 10 % of the range; a wrong noise draw,
// counter or line value moves nearly all outputs by far more and fails.
inline void check_tile_parity(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  REQUIRE(max_abs(cpu) > 0.f);
  check_mostly_close(gpu, cpu, 1e-4f, 1e-5f, 0.1f);
}

}  // namespace aimc::test
