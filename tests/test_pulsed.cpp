// Training on analog devices: pulse schedules, the pulsed update kernel,
// pulsed devices, SingleRPUConfig and AnalogSGD (REFERENCE.md sections 6-7).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "analog_test_util.h"
#include "pulsed_test_util.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/analog/pulsed_law.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pulsed_update.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_linear.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"

using namespace aimc;

namespace {

using test::exact_constant_step;
using test::update_once;

std::unique_ptr<AnalogTile> make_tile(std::int64_t out, std::int64_t in, const nlohmann::json& device,
                                      const UpdateParameters& up, std::uint64_t seed = 7) {
  return test::make_pulsed_tile(out, in, device, up, seed);
}

UpdateParameters no_management() {
  UpdateParameters up;
  up.update_management = false;
  up.update_bl_management = false;
  return up;
}

}  // namespace

TEST_CASE("pulse schedule: BL management and update management", "[pulsed]") {
  analog::UpdatePulseParams up;  // defaults: desired_bl 31, both managements on
  SECTION("k below desired_bl: BL = ceil(k), largest x and d probabilities equal") {
    // k = lr·xmax·dmax/dw_min = 0.01·1·0.53/0.001 = 5.3 -> BL 6; A = B = sqrt(0.01/(0.001·6)).
    const auto s = analog::pulse_schedule(up, 1.f, 0.53f, 0.01f, 0.001f);
    CHECK(s.bl == 6);
    const double ab = std::sqrt(0.01 / (0.001 * 6));
    CHECK(s.a == Approx(ab * std::sqrt(1.0 / 0.53)).epsilon(1e-6));
    CHECK(s.b == Approx(ab * std::sqrt(0.53)).epsilon(1e-6));
    CHECK(s.a * 0.53f == Approx(s.b * 1.f).epsilon(1e-6));
    // Expected pulses at the largest pair = BL·pA·pB = k.
    CHECK(6 * (s.a * 0.53) * (s.b * 1.0) == Approx(5.3).epsilon(1e-5));
  }
  SECTION("k above desired_bl: BL truncated, x probability 1, d probability clipped") {
    // k = 0.1·1·0.5/0.001 = 50 > 31: BL 31, d_val = 0.5·31/50 = 0.31.
    const auto s = analog::pulse_schedule(up, 1.f, 0.5f, 0.1f, 0.001f);
    CHECK(s.bl == 31);
    CHECK(s.b * 1.f == Approx(1.0).epsilon(1e-5));
    CHECK(s.a * 0.5f == Approx(0.5 / 0.31).epsilon(1e-5));  // > 1: clipped when drawn
  }
  SECTION("no management: BL = desired_bl, A = B") {
    up.update_management = up.update_bl_management = false;
    const auto s = analog::pulse_schedule(up, 1.f, 0.5f, 0.11f, 0.01f);
    CHECK(s.bl == 31);
    CHECK(s.a == Approx(std::sqrt(0.11 / (0.01 * 31))).epsilon(1e-6));
    CHECK(s.a == s.b);
  }
  SECTION("zero x or d: no pulses") {
    CHECK(analog::pulse_schedule(up, 0.f, 0.5f, 0.1f, 0.001f).bl == 0);
    CHECK(analog::pulse_schedule(up, 1.f, 0.f, 0.1f, 0.001f).bl == 0);
  }
}

TEST_CASE("pulse trains fire each slot with the given probability", "[pulsed]") {
  // For 31 and 100 slots (bit-sliced, one and four words) and 1, 3 slots
  // (shared words): 20000 trains per
  // case at p = 0.3. Over all slots of 31: 620000 draws, the fraction's std
  // sqrt(0.3·0.7/620000) = 5.8e-4, 5σ = 2.9e-3; one slot alone: 20000 draws,
  // std 3.2e-3, 5σ = 0.016.
  const int trains = 20000;
  for (int bl : {31, 3, 1, 100}) {
    INFO("bl " << bl);
    std::int64_t fired = 0;
    std::vector<std::int64_t> per_slot(bl, 0);
    for (int k = 0; k < trains; ++k) {
      // Lines of a few samples: line k % 500 of sample k / 500.
      const std::uint64_t sample_block = std::uint64_t(k / 500) * 500 * analog::kPulseBlocksPerLine;
      for (int w = 0; w < analog::pulse_words(bl); ++w) {
        const std::uint32_t t = analog::pulse_train(0.3f, bl, 11, 3, sample_block, std::uint64_t(k % 500), w);
        CHECK((t & ~analog::pulse_slots(analog::pulse_word_slots(bl, w))) == 0u);
        fired += analog::popcount32(t);
        for (int s = 0; s < analog::pulse_word_slots(bl, w); ++s) per_slot[32 * w + s] += (t >> s) & 1u;
      }
    }
    const double draws = double(trains) * bl;
    CHECK(double(fired) / draws == Approx(0.3).margin(5 * std::sqrt(0.21 / draws)));
    for (int s = 0; s < bl; ++s) CHECK(double(per_slot[s]) / trains == Approx(0.3).margin(0.016));
  }
  CHECK(analog::pulse_train(1.f, 10, 1, 1, 0, 0) == 0x3ffu);
  CHECK(analog::pulse_train(0.f, 10, 1, 1, 0, 0) == 0u);
  CHECK(analog::pulse_train(2.f, 3, 1, 1, 0, 5) == 0x7u);
}

TEST_CASE("ConstantStep known answer: one update lowers w by exactly 0.10", "[pulsed]") {
  // dw_min 0.01, desired_bl 10, no management, lr 0.11, x = d = 1: A = B =
  // sqrt(0.11/(0.01·10)) > 1, so all 10 slots fire on both lines: 10 steps of 0.01.
  UpdateParameters up = no_management();
  up.desired_bl = 10;
  auto tile = make_tile(1, 1, exact_constant_step(0.01f), up);
  AnalogTile& t = *tile;
  update_once(t, {1.f}, {1.f}, 0.11f);
  CHECK(t.weight().to_vector()[0] == Approx(-0.10).margin(1e-7));
  // x·d < 0 moves it up by the same amount.
  update_once(t, {-1.f}, {1.f}, 0.11f);
  CHECK(t.weight().to_vector()[0] == Approx(0.0).margin(1e-7));
}

TEST_CASE("pulsed update: mean change equals -lr·d·x for every pulse type", "[pulsed]") {
  // 4x5 tile, one sample, the same update repeated K times from w = 0 on a
  // device with cycle-to-cycle noise (dw_min_std 0.3) and bounds far away.
  const std::vector<float> x{0.9f, -0.4f, 0.2f, 0.0f, -1.0f};
  const std::vector<float> d{0.5f, -0.25f, 0.1f, -0.6f};
  const float lr = 0.02f, dw = 0.001f;
  nlohmann::json device = exact_constant_step(dw, 100.f);
  device["dw_min_std"] = 0.3;
  const int K = 400;
  for (PulseType type : {PulseType::StochasticCompressed, PulseType::Stochastic, PulseType::MeanCount,
                         PulseType::DeterministicImplicit}) {
    INFO("pulse type " << to_string(type));
    UpdateParameters up;
    up.pulse_type = type;
    auto tile = make_tile(4, 5, device, up);
    AnalogTile& t = *tile;
    for (int k = 0; k < K; ++k) update_once(t, x, d, lr);
    const auto w = t.weight().to_vector();
    const auto s = analog::pulse_schedule(up.kernel_params(), 1.f, 0.6f, lr, dw);
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 5; ++j) {
        const double target = -lr * d[i] * x[j];
        const double mean = w[i * 5 + j] / K;
        if (type == PulseType::StochasticCompressed || type == PulseType::Stochastic) {
          // Per update: c ~ Binomial(BL, q), q = A|d|·B|x|, each step dw(1 + 0.3ξ):
          // var = dw²·(BL·q(1-q) + BL·q·0.09); the mean of K has std sqrt(var/K); 5σ.
          const double q = std::min(1.0, double(s.a) * std::abs(d[i])) * std::min(1.0, double(s.b) * std::abs(x[j]));
          const double var = dw * dw * (s.bl * q * (1 - q) + s.bl * q * 0.09);
          CHECK(std::abs(mean - target) <= 5 * std::sqrt(var / K) + 1e-9);
        } else {
          // Deterministic counts: rounding to whole pulses (at most 1.5 steps per
          // update for MEAN_COUNT's two roundings, 0.5 for DET_IMPLICIT); the
          // noise mean is 0 with std dw·0.3·sqrt(c/K) <= 2.4e-5·dw.
          const double bound = (type == PulseType::MeanCount ? 1.5 : 0.5) * dw + 5 * dw * 0.3 * std::sqrt(31.0 / K);
          CHECK(std::abs(mean - target) <= bound);
        }
      }
  }
  SECTION("NONE: no change") {
    UpdateParameters up;
    up.pulse_type = PulseType::None;
    auto tile = make_tile(4, 5, device, up);
    AnalogTile& t = *tile;
    update_once(t, x, d, lr);
    for (float v : t.weight().to_vector()) CHECK(v == 0.f);
  }
}

TEST_CASE("pulsed update: same bits for any thread count", "[pulsed][determinism]") {
  Generator g(5, 0);
  const Tensor x = g.uniform({64, 96}), d = g.normal({64, 80}, 0., 0.05);
  const auto results = test::updated_weights_per_thread_count(
      [] { return make_tile(80, 96, nlohmann::json{{"type", "ConstantStepDevice"}}, UpdateParameters{}, 3); },
      [](auto& tile) -> AnalogTile& { return *tile; }, x, d);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
  double moved = 0;
  for (float v : results[0]) moved += std::abs(v);
  CHECK(moved > 0);
}

TEST_CASE("pulsed devices: device-to-device draws have the configured spreads", "[pulsed]") {
  // 200x200 = 40000 elements: a relative std estimate has std 1/sqrt(2·40000)
  // = 0.35 %, a mean estimate std σ/200; checks at about 5σ.
  auto tile = make_tile(200, 200, nlohmann::json{{"type", "ConstantStepDevice"}}, UpdateParameters{});
  AnalogTile& t = *tile;
  auto stats = [&](const char* name) {
    const auto v = t.state().find(name)->to_vector();
    double s = 0, s2 = 0;
    for (float e : v) s += e, s2 += double(e) * e;
    const double mean = s / v.size();
    return std::pair{mean, std::sqrt(s2 / v.size() - mean * mean)};
  };
  const auto [up_mean, up_std] = stats("dwmin_up");
  CHECK(up_mean == Approx(0.001).epsilon(0.01));
  // gain 0.3 and up_down_dtod 0.01 add: sqrt(0.3² + 0.01²) = 0.30017.
  CHECK(up_std / 0.001 == Approx(0.30017).epsilon(0.02));
  const auto [max_mean, max_std] = stats("max_bound");
  CHECK(max_mean == Approx(0.6).epsilon(0.01));
  CHECK(max_std / 0.6 == Approx(0.3).epsilon(0.02));
  const auto [min_mean, min_std] = stats("min_bound");
  CHECK(min_mean == Approx(-0.6).epsilon(0.01));
  CHECK(min_std / 0.6 == Approx(0.3).epsilon(0.02));
  // Weights set beyond a bound are clipped to it.
  t.weight().fill_(5.0);
  t.weights_set();
  const auto w = t.weight().to_vector();
  const auto mx = t.state().find("max_bound")->to_vector();
  CHECK(w == mx);
}

TEST_CASE("pulsed devices: decay and diffusion per mini-batch", "[pulsed]") {
  SECTION("lifetime 10: one step gives 0.9·W") {
    nlohmann::json device = exact_constant_step(0.001f, 10.f);
    device["lifetime"] = 10;
    auto tile = make_tile(3, 4, device, UpdateParameters{});
    AnalogTile& t = *tile;
    t.weight().copy_(Tensor::from_vector(std::vector<float>{0.5f, -0.2f, 1.f, 2.f, 0.f, -3.f, 0.1f, 0.3f, 4.f, -4.f, 0.7f, -0.7f}, {3, 4}));
    const auto before = t.weight().to_vector();
    update_once(t, std::vector<float>(4, 0.f), std::vector<float>(3, 0.f), 0.1f);  // no pulses; the decay runs
    const auto after = t.weight().to_vector();
    for (std::size_t k = 0; k < before.size(); ++k) CHECK(after[k] == Approx(0.9 * before[k]).margin(1e-7));
  }
  SECTION("diffusion 0.1 on 100x122: std of the change within 10 % of 0.1") {
    nlohmann::json device = exact_constant_step(0.001f, 100.f);
    device["diffusion"] = 0.1;
    auto tile = make_tile(100, 122, device, UpdateParameters{});
    AnalogTile& t = *tile;
    update_once(t, std::vector<float>(122, 0.f), std::vector<float>(100, 0.f), 0.1f);
    double s = 0, s2 = 0;
    const auto w = t.weight().to_vector();
    for (float v : w) s += v, s2 += double(v) * v;
    const double mean = s / w.size();
    CHECK(std::sqrt(s2 / w.size() - mean * mean) == Approx(0.1).epsilon(0.1));
  }
}

TEST_CASE("SingleRPUConfig: JSON round trip and errors that name the field", "[pulsed][config]") {
  SingleRPUConfig c;
  c.update.desired_bl = 10;
  c.update.pulse_type = PulseType::MeanCount;
  c.device = exact_constant_step(0.01f);
  const RPUConfig back = RPUConfig::from_json(RPUConfig(c).to_json());
  CHECK(back.to_json() == RPUConfig(c).to_json());
  CHECK(back.tile_class() == AnalogTileClass::Analog);
  CHECK(back.to_json()["device"]["dw_min"] == 0.01);
  CHECK(back.to_json()["update"]["pulse_type"] == "MEAN_COUNT");

  nlohmann::json bad = RPUConfig(c).to_json();
  bad["device"]["dw_min"] = -1;
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("SingleRPUConfig.device.dw_min"));
  bad = RPUConfig(c).to_json();
  bad["update"]["desired_bl"] = 129;
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("SingleRPUConfig.update.desired_bl"));
  bad = RPUConfig(c).to_json();
  bad["device"]["type"] = "NoSuchDevice";
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("ConstantStepDevice"));
  bad = RPUConfig(c).to_json();
  bad["device"]["dw_mn"] = 0.1;
  CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("dw_mn"));
}

TEST_CASE("AnalogSGD trains an AnalogLinear on pulsed devices", "[pulsed][optim]") {
  SingleRPUConfig c = test::with_perfect_io(SingleRPUConfig{});
  Generator g(21, 0);
  CHECK(AnalogLinear(8, 4, true, RPUConfig(c), g).analog_tile_class() == AnalogTileClass::Analog);
  const auto [first, last] = test::regression_mse(c);
  INFO("MSE " << first << " -> " << last);
  CHECK(last < 0.3 * first);
}

TEST_CASE("pulsed update kernel equals a plain reference of its random addressing", "[pulsed][determinism]") {
  // The reference draws each line's train with analog::pulse_train and the
  // k-th pulse of row i in the mini-batch with rng::normal_at from the row's
  // block (pulsed_update.h), one pulse at a time: the kernel's bulk draws and
  // sparse, vectorised loops must give the same bits.
  // bl_case 3 mixes samples of BL 1 (the kernel's count-free unit groups) with
  // samples of larger BL in every row.
  for (int bl_case : {0, 1, 2, 3}) {
    const std::int64_t n = 5, out = 7, in = 13;
    Generator g(3, 1);
    const Tensor x = g.uniform({n, in}, -1, 1);
    Tensor d = g.normal({n, out}, 0., bl_case == 1 || bl_case == 2 ? 0.5 : 0.01);
    if (bl_case == 3)
      for (std::int64_t m = 1; m < n; m += 2)
        for (std::int64_t i = 0; i < out; ++i) d.data<float>()[m * out + i] *= 50.f;
    const Tensor mx = g.uniform({out, in}, 0.3, 0.6), mn = g.uniform({out, in}, -0.6, -0.3);
    const Tensor up = g.uniform({out, in}, 0.0005, 0.0015), down = g.uniform({out, in}, 0.0005, 0.0015);
    cpu::PulsedUpdateArgs a;
    a.x = x.data<float>();
    a.d = d.data<float>();
    a.n = n;
    a.out = out;
    a.in = in;
    a.lr = 0.05f;
    a.dw_min = 0.001f;
    a.law.dw_min_std = 0.3f;
    a.max_bound = mx.data<float>();
    a.min_bound = mn.data<float>();
    a.up = up.data<float>();
    a.down = down.data<float>();
    if (bl_case == 2) a.update.desired_bl = 100;  // trains of two to four words
    a.seed = 99;
    a.pulse_stream = 17;
    a.noise_stream = 18;
    a.pulse_block = 1000;
    a.noise_block = 5000;
    std::vector<float> w(out * in, 0.f), ref(out * in, 0.f);
    a.w = w.data();
    cpu::pulsed_update(a);
    const float* xs = x.data<float>();
    const float* ds = d.data<float>();
    int max_bl = 0, min_bl = 1 << 30;
    std::vector<std::uint64_t> next(out, 0);  // each row's next normal over the mini-batch
    for (std::int64_t m = 0; m < n; ++m) {
      float xm = 0, dm = 0;
      for (std::int64_t j = 0; j < in; ++j) xm = std::max(xm, std::abs(xs[m * in + j]));
      for (std::int64_t i = 0; i < out; ++i) dm = std::max(dm, std::abs(ds[m * out + i]));
      const auto s = analog::pulse_schedule(a.update, xm, dm, a.lr, a.dw_min);
      max_bl = std::max(max_bl, s.bl);
      min_bl = std::min(min_bl, s.bl);
      const std::uint64_t sample_block = a.pulse_block + std::uint64_t(m) * (out + in) * analog::kPulseBlocksPerLine;
      for (std::int64_t i = 0; i < out; ++i) {
        const std::uint64_t row_block = a.noise_block + std::uint64_t(i) * n * in * cpu::kNoiseBlocksPerElement;
        std::uint64_t& k = next[i];
        for (std::int64_t j = 0; j < in; ++j) {
          int c = 0;
          for (int w = 0; w < analog::pulse_words(s.bl); ++w) {
            const std::uint32_t dt = analog::pulse_train(s.a * std::abs(ds[m * out + i]), s.bl, a.seed, a.pulse_stream,
                                                         sample_block, i, w);
            const std::uint32_t xt = analog::pulse_train(s.b * std::abs(xs[m * in + j]), s.bl, a.seed,
                                                         a.pulse_stream, sample_block, out + j, w);
            c += analog::popcount32(dt & xt);
          }
          const std::int64_t e = i * in + j;
          const analog::PulsedElement el{mx.data<float>()[e], mn.data<float>()[e], up.data<float>()[e],
                                         down.data<float>()[e], 0.f, 0.f};
          const bool dn = (ds[m * out + i] > 0) == (xs[m * in + j] > 0);
          for (int p = 0; p < c; ++p)
            ref[e] = analog::pulsed_step(a.law, el, ref[e], dn, rng::normal_at(a.seed, a.noise_stream, row_block, k++));
        }
      }
    }
    INFO("BL from " << min_bl << " to " << max_bl);
    if (bl_case == 0) CHECK(max_bl <= analog::kFewSlots);
    if (bl_case == 3) CHECK((min_bl == 1 && max_bl > 1));
    if (bl_case == 1) CHECK((max_bl > analog::kFewSlots && max_bl <= 32));
    if (bl_case == 2) CHECK(max_bl > 32);
    CHECK(w == ref);
    double moved = 0;
    for (float v : w) moved += std::abs(v);
    CHECK(moved > 0);
  }
}

TEST_CASE("a mapped layer updates each physical tile with its own slice of x and d", "[pulsed]") {
  // Linear 14 -> 5 on tiles of at most 10 inputs and 4 outputs: 2x2 tiles of
  // [7, 7] inputs x [3, 2] outputs. With exact devices and deterministic
  // pulses, each tile's change must equal that of a lone tile given its
  // slices (each tile has its own pulse schedule, from its own max|x|, max|d|).
  SingleRPUConfig c = test::with_perfect_io(SingleRPUConfig{});
  c.device = exact_constant_step(0.001f, 1.f);
  c.update.pulse_type = PulseType::DeterministicImplicit;
  c.mapping.max_input_size = 10;
  c.mapping.max_output_size = 4;
  Generator g(8, 0);
  AnalogLinear layer(14, 5, false, RPUConfig(c), g);
  const auto tiles = layer.analog_tiles();
  REQUIRE(tiles.size() == 4);
  std::vector<std::vector<float>> before;
  for (AnalogTile* t : tiles) before.push_back(t->weight().to_vector());
  const Tensor x = g.uniform({6, 14}, -1, 1), d = g.normal({6, 5}, 0., 0.3);
  AnalogSGD opt(layer.parameters(), tiles, 0.05);
  opt.zero_grad();
  // Backward with d as the gradient of the output: sum(y ⊙ d).
  sum(mul(layer.forward(x), d)).backward();
  opt.step();
  const std::int64_t in_off[2] = {0, 7}, out_off[2] = {0, 3}, in_n[2] = {7, 7}, out_n[2] = {3, 2};
  double moved = 0;
  for (int r = 0; r < 2; ++r)
    for (int col = 0; col < 2; ++col) {
      AnalogTile& mapped = *tiles[r * 2 + col];
      REQUIRE(mapped.out_size() == out_n[r]);
      REQUIRE(mapped.in_size() == in_n[col]);
      auto lone = make_tile(out_n[r], in_n[col], c.device, c.update);
      lone->weight().copy_(Tensor::from_vector(before[r * 2 + col], {out_n[r], in_n[col]}));
      lone->record_update(x.slice(1, in_off[col], in_off[col] + in_n[col]).contiguous(),
                          d.slice(1, out_off[r], out_off[r] + out_n[r]).contiguous());
      lone->apply_updates(0.05f);
      const auto a = mapped.weight().to_vector(), b = lone->weight().to_vector();
      CHECK(a == b);
      for (std::size_t k = 0; k < a.size(); ++k) moved += std::abs(a[k] - before[r * 2 + col][k]);
    }
  CHECK(moved > 0);
}

TEST_CASE("a pulsed update refuses non-finite or mistyped x and d, naming them", "[pulsed]") {
  auto tile = make_tile(2, 3, nlohmann::json{{"type", "ConstantStepDevice"}}, UpdateParameters{});
  const Tensor x = Tensor::from_vector(std::vector<float>{0.1f, 0.2f, 0.3f}, {1, 3});
  const Tensor d_nan = Tensor::from_vector(std::vector<float>{0.1f, std::nanf("")}, {1, 2});
  CHECK_THROWS_WITH(tile->record_update(x, d_nan), Catch::Contains("the error d") && Catch::Contains("index 1"));
  const Tensor x_inf = Tensor::from_vector(std::vector<float>{0.1f, INFINITY, 0.3f}, {1, 3});
  CHECK_THROWS_WITH(tile->record_update(x_inf, Tensor::zeros({1, 2})), Catch::Contains("the input x"));
  CHECK_THROWS_AS(tile->record_update(x.to(DType::Float64), Tensor::zeros({1, 2})), Error);
  CHECK_THROWS_AS(tile->record_update(x, Tensor::zeros({1, 3})), ShapeError);
  CHECK(tile->pending_updates() == 0);  // nothing half-recorded
}

TEST_CASE("hidden parameters are readable and settable by name", "[pulsed]") {
  auto tile = make_tile(3, 4, nlohmann::json{{"type", "ConstantStepDevice"}}, UpdateParameters{});
  const auto hidden = tile->hidden_parameters();
  std::vector<std::string> names;
  for (const auto& [n, t] : hidden) names.push_back(n);
  REQUIRE(names.size() >= 7);
  CHECK(names[0] == "max_bound");
  CHECK(names[3] == "dwmin_down");
  // Not the tile's own periphery state.
  CHECK(std::find(names.begin(), names.end(), "forward_counter") == names.end());
  // Set the upper bounds to 0.05: a step up from 0.04 stops there.
  tile->set_hidden_parameter("max_bound", Tensor::full({3, 4}, 0.05));
  CHECK(tile->hidden_parameters()[0].second.to_vector() == std::vector<float>(12, 0.05f));
  CHECK(tile->state().find("max_bound")->to_vector()[5] == 0.05f);  // the same storage
  tile->set_hidden_parameter("dwmin_up", Tensor::full({3, 4}, 0.02));
  tile->weight().fill_(0.04);
  UpdateParameters up = no_management();
  up.desired_bl = 1;
  auto exact = make_tile(3, 4, nlohmann::json{{"type", "ConstantStepDevice"}, {"dw_min_std", 0}}, up);
  exact->set_hidden_parameter("max_bound", Tensor::full({3, 4}, 0.05));
  exact->set_hidden_parameter("dwmin_up", Tensor::full({3, 4}, 0.02));
  exact->weight().fill_(0.04);
  update_once(*exact, std::vector<float>(4, -1.f), std::vector<float>(3, 1.f), 0.5f);  // x·d < 0: up, p = 1
  for (float v : exact->weight().to_vector()) CHECK(v == 0.05f);
  CHECK_THROWS_WITH(tile->set_hidden_parameter("max_bond", Tensor::zeros({3, 4})),
                    Catch::Contains("max_bond") && Catch::Contains("max_bound"));
  CHECK_THROWS_AS(tile->set_hidden_parameter("max_bound", Tensor::zeros({4, 3})), ShapeError);
  CHECK_THROWS_WITH(tile->set_hidden_parameter("max_bound", Tensor::full({3, 4}, NAN)), Catch::Contains("non-finite"));
}
