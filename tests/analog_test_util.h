// Helpers shared by the analog layer tests.
#pragma once

#include <catch2/catch.hpp>
#include <cmath>

#include <cstdint>
#include <string>
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

// A state dict in the layout of checkpoints from before the tile state had
// named entries: each tile's entries (analog_tile.h) packed into one float64
// "<tile>_state" [6] (forward/backward counters, forward/backward running
// values, seed low/high 32 bits) or, as files from before the state held the
// seed, [4] without the seed; at the place of the tile's first entry.
inline NamedTensors packed_tile_states(const NamedTensors& state, int size) {
  const std::string first = "_forward_counter";
  auto ends_with = [](const std::string& s, const std::string& end) {
    return s.size() > end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
  };
  auto value = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, t] : state)
      if (n == name) return t;
    FAIL("no entry " << name);
    return state.front().second;
  };
  NamedTensors out;
  for (const auto& [name, t] : state) {
    if (ends_with(name, first)) {
      const std::string tile = name.substr(0, name.size() - first.size());
      const auto seed = static_cast<std::uint64_t>(*value(tile + "_seed").data<std::int64_t>());
      std::vector<double> v{value(tile + "_forward_counter").item(), value(tile + "_backward_counter").item(),
                            value(tile + "_forward_nm_running").item(), value(tile + "_backward_nm_running").item(),
                            static_cast<double>(seed & 0xffffffffu), static_cast<double>(seed >> 32)};
      v.resize(static_cast<std::size_t>(size));
      out.emplace_back(tile + "_state", Tensor::from_vector(v, {size}));
      continue;
    }
    bool tile_entry = false;
    for (const char* other : {"_backward_counter", "_forward_nm_running", "_backward_nm_running", "_seed"})
      if (ends_with(name, other) && has_name(state, name.substr(0, name.size() - std::string(other).size()) + first))
        tile_entry = true;
    if (!tile_entry) out.emplace_back(name, t);
  }
  return out;
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
