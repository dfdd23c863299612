// Helpers shared by the analog MVM tests (test_analog_mvm.cpp,
// test_analog_offsets.cpp): a noise-free periphery, uniform test data and a
// forward call with the output pre-filled.
#pragma once

#include <random>
#include <vector>

#include "kernels/cpu/analog_mvm.h"

namespace aimc::test {

// Noise-free, quantisation-free periphery (every test switches on what it checks).
inline IOParameters quiet() {
  IOParameters io;
  io.inp_res = 0.f;
  io.out_res = 0.f;
  io.out_noise = 0.f;
  io.noise_management = NoiseManagementType::None;
  io.bound_management = BoundManagementType::None;
  io.inp_bound = 0.f;
  io.out_bound = 0.f;
  return io;
}

inline std::vector<float> random_vector(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

inline std::vector<float> forward(const IOParameters& io, const std::vector<float>& w, long out, long in,
                                  const std::vector<float>& x, long n, cpu::AnalogMvmStats* stats = nullptr,
                                  const cpu::AnalogLineValues& lines = {}, cpu::AnalogRandom rnd = {7, 3, 0}) {
  std::vector<float> y(static_cast<std::size_t>(n * out), -99.f);
  cpu::AnalogMvmStats s = cpu::analog_mvm_forward(io, w.data(), out, in, x.data(), n, y.data(), lines, rnd);
  if (stats) *stats = s;
  return y;
}

}  // namespace aimc::test
