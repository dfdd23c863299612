// Helpers shared by the tests of training on analog devices (test_pulsed,
// test_pulsed_devices, test_compound).
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "layers/config/rpu_config.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_linear.h"
#include "layers/optim/analog_sgd.h"
#include "kernels/cpu/parallel.h"
#include "layers/tiles/analog_tile.h"

namespace aimc::test {

// The weights of the tile that make() builds after three pulsed updates of
// x and d at lr 0.05, with 1, 2 and 4 threads (the default restored after):
// equal bits are the determinism the update promises. make() returns
// something holding the tile and gives it through tile_of.
template <class Make, class TileOf>
std::vector<std::vector<float>> updated_weights_per_thread_count(Make&& make, TileOf&& tile_of, const Tensor& x,
                                                                 const Tensor& d) {
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 4}) {
    cpu::set_num_threads(threads);
    auto holder = make();
    AnalogTile& t = tile_of(holder);
    for (int k = 0; k < 3; ++k) {
      t.record_update(x, d);
      t.apply_updates(0.05f);
    }
    results.push_back(t.weight().to_vector());
  }
  cpu::set_num_threads(0);
  return results;
}

// A ConstantStep device without any variability (steps exactly dw_min).
inline nlohmann::json exact_constant_step(float dw_min, float w_bound = 0.6f) {
  return {{"type", "ConstantStepDevice"}, {"dw_min", dw_min},      {"dw_min_dtod", 0},  {"dw_min_std", 0},
          {"up_down_dtod", 0},            {"w_max_dtod", 0},       {"w_min_dtod", 0},   {"w_max", w_bound},
          {"w_min", -w_bound}};
}

// A tile [out, in] with perfect IO on `device`, weights zero.
inline std::unique_ptr<AnalogTile> make_pulsed_tile(std::int64_t out, std::int64_t in, const nlohmann::json& device,
                                                    const UpdateParameters& up = UpdateParameters{},
                                                    std::uint64_t seed = 7) {
  IOParameters perfect;
  perfect.is_perfect = true;
  auto t = std::make_unique<AnalogTile>(out, in, perfect, perfect, seed, 0);
  t->set_device(*make_device_model(device), up.kernel_params());
  return t;
}

// One mini-batch update of the tile: x [n·in], d [n·out] row-major.
inline void update_once(AnalogTile& t, const std::vector<float>& x, const std::vector<float>& d, float lr) {
  const std::int64_t n = std::int64_t(x.size()) / t.in_size();
  t.record_update(Tensor::from_vector(x, {n, t.in_size()}), Tensor::from_vector(d, {n, t.out_size()}));
  t.apply_updates(lr);
}

// A 8 -> 4 regression with a fixed teacher on one AnalogLinear of `config`
// (perfect IO isolates the update), 100 AnalogSGD steps of lr 0.1 on batches
// of 16: the evaluation MSE before and after.
inline std::pair<double, double> regression_mse(RPUConfig config) {
  Generator g(21, 0);
  auto layer = std::make_shared<AnalogLinear>(8, 4, true, config, g);
  const Tensor teacher = g.normal({4, 8}, 0., 0.2);
  AnalogSGD opt(layer->parameters(), layer->analog_tiles(), 0.1);
  REQUIRE(opt.pulsed_tiles().size() == 1);
  auto mse = [&](const Tensor& x) { return mse_loss(layer->forward(x), matmul(x, transpose(teacher, 0, 1))); };
  const Tensor x_eval = g.uniform({256, 8});
  double first = 0, last = 0;
  {
    NoGradGuard no_grad;
    first = mse(x_eval).item();
  }
  for (int step = 0; step < 100; ++step) {
    const Tensor x = g.uniform({16, 8});
    opt.zero_grad();
    mse(x).backward();
    CHECK_FALSE(layer->analog_tiles()[0]->weight().grad().defined());
    opt.step();
    CHECK(layer->analog_tiles()[0]->pending_updates() == 0);
  }
  {
    NoGradGuard no_grad;
    last = mse(x_eval).item();
  }
  return {first, last};
}

// Perfect forward and backward IO on a pulsed family's config.
template <class Family>
Family with_perfect_io(Family c) {
  c.forward.is_perfect = true;
  c.backward.is_perfect = true;
  return c;
}

}  // namespace aimc::test
