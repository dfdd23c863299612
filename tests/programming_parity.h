// GPU against CPU comparisons of a programmed, drifted analog layer's state
// (tests/test_cuda_programming.cpp, tests/test_cuda_modules.cpp).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "layers/tiles/tile_programming.h"

namespace aimc::test {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One programming-state tensor of the GPU layer against its CPU twin: the
// same Philox normals (cuda::fill_normal has cpu::fill_normal's bits) and the
// same element laws.
//  - Under the emulation (the .cu sources compiled as C++ with
//    -ffp-contract=off, one thread) every bit is the CPU's, the
//    drift-compensation readout included.
//  - On a GPU nvcc may fuse a multiply-add (one float rounding, 6e-8
//    relative) and a read weight is a difference of two conductances (µS)
//    over the scale, so its error is relative to the tensor's range: within
//    1e-5 of it. The compensation's baseline and alpha come from the mean |Y|
//    of the identity batch read through the tile's forward, whose crossbar
//    sums run in another order there; an output near an ADC step may land one
//    step (1/510 of the bound) away. 1e-3 relative: one flipped step among the
//    768 outputs of a 24x32 tile moves the mean by ≈ 1e-4 of it, while a
//    wrong noise draw or read weight moves it by the output noise (0.06 of the
//    bound per output, 0.06/√768 ≈ 2e-3 of the bound on the mean, ~1e-2
//    relative). The flag, times and counters are exact anywhere.
inline void check_programming_tensor(const std::string& name, const Tensor& gpu, const Tensor& cpu) {
  INFO(name);
  CHECK(gpu.device().is_cuda());
  REQUIRE(gpu.shape() == cpu.shape());
  REQUIRE(gpu.dtype() == cpu.dtype());
  const Tensor g = gpu.to(Device::cpu()).contiguous(), c = cpu.contiguous();
  const bool exact =
#ifdef AIMC_CUDA_EMULATION
      true;
#else
      c.dtype() != DType::Float32;
#endif
  if (exact) {
    CHECK(std::memcmp(g.raw_data(), c.raw_data(), static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype())) == 0);
    return;
  }
  const std::vector<float> a = g.to_vector(), b = c.to_vector();
  if (ends_with(name, "_drift_baseline") || ends_with(name, "_drift_alpha")) {
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-3));
    return;
  }
  float range = 0.f;
  for (float v : b) range = std::max(range, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-5f * range);
}

// Every entry of two layers' state dicts (GPU, CPU): the programming state
// as above, the rest (weights, counters, running values, seed) bit for bit.
inline void check_state_parity(const std::vector<std::pair<std::string, Tensor>>& a,
                               const std::vector<std::pair<std::string, Tensor>>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    if (is_tile_programming_key(a[i].first)) {
      check_programming_tensor(a[i].first, a[i].second, b[i].second);
      continue;
    }
    INFO(a[i].first);
    const Tensor g = a[i].second.to(Device::cpu()).contiguous(), c = b[i].second.contiguous();
    CHECK(a[i].second.device().is_cuda());
    CHECK(std::memcmp(g.raw_data(), c.raw_data(), static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype())) == 0);
  }
}

}  // namespace aimc::test
