// Helpers shared by the analog layer tests.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>

#include <vector>

#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/tensor.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/module.h"

namespace aimc::test {

// Perfect forward and backward IO with the given tile sizes.
inline RPUConfig perfect_config(int max_in, int max_out) {
  InferenceRPUConfig c;
  c.forward.is_perfect = true;
  c.backward.is_perfect = true;
  c.mapping.max_input_size = max_in;
  c.mapping.max_output_size = max_out;
  return c;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

// True if the list has an entry with this name.
inline bool has_name(const NamedTensors& list, const std::string& name) {
  for (const auto& [n, t] : list)
    if (n == name) return true;
  return false;
}

// The bits of layer(x) and of d sum(layer(x)) / dx (x must require grad).
inline std::vector<float> output_and_input_grad(Module& layer, const Tensor& x) {
  Tensor y = layer(x);
  sum(y).backward();
  auto v = y.to_vector();
  const auto gx = x.grad().to_vector();
  v.insert(v.end(), gx.begin(), gx.end());
  return v;
}

// run() must give the same bits with 1, 2 and 8 worker threads.
template <class Run>
void check_same_bits_for_thread_counts(Run run) {
  std::vector<float> reference;
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    const std::vector<float> v = run();
    if (threads == 1) reference = v;
    else CHECK(v == reference);
  }
  set_num_threads(0);
}

}  // namespace aimc::test
