// AnalogCore periphery: input ranges, weight scaling, learned out scaling,
// weight modifier, clip and remap (REFERENCE.md sections 2-4).
#include <catch2/catch.hpp>
#include <cmath>

#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/conv.h"
#include "layers/modules/linear.h"
#include "layers/modules/sequential.h"
#include "layers/optim/sgd.h"

using namespace aimc;
#include "analog_test_util.h"

using namespace aimc::test;

namespace {

// Perfect IO, no split, input range enabled at r = init (no data init unless asked).
InferenceRPUConfig input_range_config(float init, int init_from_data = 0) {
  InferenceRPUConfig c = perfect_config(0, 0).get<InferenceRPUConfig>();
  c.pre_post.input_range.enable = true;
  c.pre_post.input_range.init_value = init;
  c.pre_post.input_range.init_from_data = init_from_data;
  return c;
}

double unbiased_std(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m += x;
  m /= double(v.size());
  double ss = 0;
  for (float x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(v.size() - 1));
}


}  // namespace

TEST_CASE("input range 3: inputs +-5 come out +-3 (perfect IO, identity weights)") {
  Generator gen(101);
  AnalogLinear layer(2, 2, false, input_range_config(3.0f), gen);
  layer.set_weights(Tensor::from_vector(std::vector<float>{1, 0, 0, 1}, {2, 2}));
  const Tensor x = Tensor::from_vector(std::vector<float>{5, -5, 1, -2}, {2, 2});
  for (bool training : {true, false}) {
    layer.train(training);
    const auto y = layer(x).to_vector();
    CHECK(y[0] == Approx(3.0).margin(1e-6));
    CHECK(y[1] == Approx(-3.0).margin(1e-6));
    CHECK(y[2] == Approx(1.0).margin(1e-6));
    CHECK(y[3] == Approx(-2.0).margin(1e-6));
  }
  CHECK(has_name(layer.named_parameters(), "input_range"));
  CHECK(has_name(layer.named_buffers(), "input_range_update_idx"));
  CHECK(layer.analog_core().input_range().item() == Approx(3.0));
}

TEST_CASE("input range init from data: r <- (r*k + alpha*std(x))/(k+1) for the first init_from_data batches") {
  Generator gen(102);
  AnalogLinear layer(3, 2, false, input_range_config(3.0f, 2), gen);
  const AnalogCore& core = layer.analog_core();
  // A constant batch (std 0) does not count.
  layer(Tensor::full({4, 3}, 0.7));
  CHECK(core.input_range().item() == Approx(3.0));
  CHECK(core.input_range_update_idx().item() == 0.0);
  // Eval batches do not count either.
  Generator data(103);
  layer.eval();
  layer(data.normal({4, 3}));
  CHECK(core.input_range_update_idx().item() == 0.0);
  layer.train();
  const Tensor x1 = data.normal({5, 3}), x2 = data.normal({5, 3}) * 2.0, x3 = data.normal({5, 3}) * 7.0;
  const double alpha = 3.0;
  const double r1 = (3.0 * 0 + alpha * unbiased_std(x1.to_vector())) / 1.0;
  const double r2 = (r1 * 1 + alpha * unbiased_std(x2.to_vector())) / 2.0;
  layer(x1);
  CHECK(core.input_range().item() == Approx(r1).epsilon(1e-6));
  layer(x2);
  CHECK(core.input_range().item() == Approx(r2).epsilon(1e-6));
  layer(x3);  // k = 2 = init_from_data: no change
  CHECK(core.input_range().item() == Approx(r2).epsilon(1e-6));
  CHECK(core.input_range_update_idx().item() == 2.0);
}

TEST_CASE("a mapped layer keeps one input range per tile, each initialised from its own input slice") {
  // 14 -> 5 on 2 x 2 tiles ([7, 7] x [3, 2]); inputs of column 1 are 10x larger.
  InferenceRPUConfig mapped = input_range_config(3.0f, 1);
  mapped.mapping.max_input_size = 10;
  mapped.mapping.max_output_size = 4;
  InferenceRPUConfig single = input_range_config(3.0f, 0);
  Generator g1(104), g2(104);
  AnalogLinear a(14, 5, false, mapped, g1), b(14, 5, false, single, g2);
  const AnalogCore& core = a.analog_core();
  REQUIRE(core.input_ranges().size() == 4);
  CHECK_FALSE(core.input_range().defined());
  for (const char* name : {"input_range_0_0", "input_range_0_1", "input_range_1_0", "input_range_1_1"})
    CHECK(has_name(a.named_parameters(), name));
  CHECK(core.input_range_update_idx().numel() == 4);
  // With every range at 3 the mapped layer computes what the single-range layer does.
  Generator data(105);
  Tensor x = data.normal({6, 14});
  a.eval();
  b.eval();
  CHECK(max_abs_diff(a(x), b(x)) < 1e-5);
  // Data initialisation: tile (r, c) takes 3·std of its column's slice x_c.
  Tensor scale = Tensor::from_vector(std::vector<float>{1, 1, 1, 1, 1, 1, 1, 10, 10, 10, 10, 10, 10, 10}, {14});
  Tensor batch = mul(data.normal({32, 14}), scale);
  a.train();
  a(batch);
  const double sd0 = unbiased_std(batch.slice(1, 0, 7).contiguous().to_vector());
  const double sd1 = unbiased_std(batch.slice(1, 7, 14).contiguous().to_vector());
  for (int r = 0; r < 2; ++r) {
    CHECK(core.input_ranges()[r * 2].item() == Approx(3 * sd0).epsilon(1e-5));
    CHECK(core.input_ranges()[r * 2 + 1].item() == Approx(3 * sd1).epsilon(1e-5));
  }
  // Each range gets the gradient of its own tile: the decay term with nothing clipped.
  mapped.pre_post.input_range.decay = 0.01f;
  mapped.pre_post.input_range.init_from_data = 0;
  Generator g3(106);
  AnalogLinear c(14, 5, false, mapped, g3);
  sum(c(mul_scalar(data.normal({4, 14}), 0.1))).backward();
  for (const Tensor& r : c.analog_core().input_ranges()) CHECK(r.grad().item() == Approx(0.01 * 3.0).margin(1e-6));
}

TEST_CASE("input range gradient equals the hand-computed value; clipped inputs get zero gradient") {
  // W = [[1, 2, -1], [0.5, -1, 3]], r = 2, x = [[3, 0.5, -2.5], [0.1, 0.2, 0.3]],
  // loss = sum(y * [[-1, 1], [0, 0]]): dxc (row 0) = W^T [-1, 1] = [-0.5, -3, 4].
  // g_r = min(0, -0.5) [x=3 >= 2] - max(0, 4) [x=-2.5 <= -2] = -4.5, times r = 2 -> -9.
  // Only 4 of 6 inputs are inside (< 0.95): no decay. y row 0 = W [2, 0.5, -2] = [5, -5.5].
  const Tensor w = Tensor::from_vector(std::vector<float>{1, 2, -1, 0.5f, -1, 3}, {2, 3});
  const Tensor x0 = Tensor::from_vector(std::vector<float>{3, 0.5f, -2.5f, 0.1f, 0.2f, 0.3f}, {2, 3});
  const Tensor g = Tensor::from_vector(std::vector<float>{-1, 1, 0, 0}, {2, 2});
  auto run = [&](const InferenceRPUConfig& c, const Tensor& xv) {
    Generator gen(104);
    auto layer = std::make_shared<AnalogLinear>(3, 2, false, c, gen);
    layer->set_weights(w);
    Tensor x = xv.clone().set_requires_grad();
    Tensor y = (*layer)(x);
    sum(mul(y, g)).backward();
    return std::make_tuple(layer, x, y);
  };
  SECTION("relative, no decay") {
    InferenceRPUConfig c = input_range_config(2.0f);
    auto [layer, x, y] = run(c, x0);
    const auto yv = y.to_vector();
    CHECK(yv[0] == Approx(5.0).margin(1e-5));
    CHECK(yv[1] == Approx(-5.5).margin(1e-5));
    CHECK(layer->analog_core().input_range().grad().item() == Approx(-9.0).margin(1e-5));
    const auto gx = x.grad().to_vector();
    CHECK(gx[0] == 0.0f);
    CHECK(gx[1] == Approx(-3.0).margin(1e-6));
    CHECK(gx[2] == 0.0f);
    CHECK(gx[3] == 0.0f);  // row 1 has zero output gradient
  }
  SECTION("not relative, gradient_scale 0.5: -2.25") {
    InferenceRPUConfig c = input_range_config(2.0f);
    c.pre_post.input_range.gradient_relative = false;
    c.pre_post.input_range.gradient_scale = 0.5f;
    auto [layer, x, y] = run(c, x0);
    CHECK(layer->analog_core().input_range().grad().item() == Approx(-2.25).margin(1e-5));
  }
  SECTION("all inputs inside: only the decay, 0.001 * r = 0.002") {
    auto [layer, x, y] = run(input_range_config(2.0f), x0 * 0.1);
    CHECK(layer->analog_core().input_range().grad().item() == Approx(0.002).margin(1e-7));
  }
  SECTION("learn_input_range = false: a buffer without gradient") {
    InferenceRPUConfig c = input_range_config(2.0f);
    c.pre_post.input_range.learn_input_range = false;
    auto [layer, x, y] = run(c, x0);
    CHECK_FALSE(has_name(layer->named_parameters(), "input_range"));
    CHECK(has_name(layer->named_buffers(), "input_range"));
    CHECK_FALSE(layer->analog_core().input_range().grad().defined());
    CHECK(x.grad().to_vector()[1] == Approx(-3.0).margin(1e-6));
  }
}

TEST_CASE("weight scaling omega: perfect IO equals the unscaled layer (outputs and ten SGD steps)") {
  for (bool columnwise : {false, true}) {
    INFO("columnwise " << columnwise);
    Generator gen(105);
    Linear digital(14, 5, true, gen);
    InferenceRPUConfig c = perfect_config(10, 4).get<InferenceRPUConfig>();
    c.mapping.weight_scaling_omega = 0.6f;
    c.mapping.weight_scaling_columnwise = columnwise;
    Generator g1(106), g2(106);
    auto scaled = AnalogLinear::from_digital(digital, c, g1);
    auto plain = AnalogLinear::from_digital(digital, perfect_config(10, 4), g2);
    CHECK(has_name(scaled->named_buffers(), "mapping_scales"));
    CHECK(scaled->analog_core().mapping_scales().numel() == (columnwise ? 5 : 1));
    // Stored tile weights: max |W| = omega (per row with columnwise).
    const auto wt = scaled->tile_array().get_weights().to_vector();
    double tile_max = 0;
    for (int i = 0; i < 5; ++i) {
      double row_max = 0;
      for (int j = 0; j < 14; ++j) row_max = std::max(row_max, std::abs(double(wt[i * 14 + j])));
      if (columnwise) CHECK(row_max == Approx(0.6).epsilon(1e-6));
      tile_max = std::max(tile_max, row_max);
    }
    CHECK(tile_max == Approx(0.6).epsilon(1e-6));
    CHECK(max_abs_diff(scaled->get_weights(), digital.weight()) < 1e-6);
    SGD sgd_s(scaled->parameters(), 0.1), sgd_p(plain->parameters(), 0.1);
    Generator data(107);
    Tensor target = data.normal({16, 5});
    for (int step = 0; step < 10; ++step) {
      Tensor x = data.normal({16, 14});
      Tensor ys = (*scaled)(x), yp = (*plain)(x);
      CHECK(max_abs_diff(ys, yp) < 1e-5);
      sgd_s.zero_grad();
      sgd_p.zero_grad();
      mse_loss(ys, target).backward();
      mse_loss(yp, target).backward();
      sgd_s.step();
      sgd_p.step();
    }
    CHECK(max_abs_diff(scaled->get_weights(), plain->get_weights()) < 1e-5);
    CHECK(max_abs_diff(scaled->get_weights(), digital.weight()) > 1e-3);  // it did train
  }
}

TEST_CASE("learn_out_scaling: gradient of the out scaling matches central differences (float32)") {
  // loss = mse(y, t) is quadratic in each out-scaling entry, so the central
  // difference with eps = 1e-2 is exact up to float32 rounding of the loss
  // (~1e-7 * loss / eps); tolerance 1e-3 * max(1, |g|).
  for (bool columnwise : {false, true}) {
    for (float omega : {0.0f, 0.5f}) {
      INFO("columnwise " << columnwise << " omega " << omega);
      InferenceRPUConfig c = perfect_config(0, 0).get<InferenceRPUConfig>();
      c.mapping.learn_out_scaling = true;
      c.mapping.out_scaling_columnwise = columnwise;
      c.mapping.weight_scaling_omega = omega;
      Generator gen(108);
      AnalogLinear layer(5, 3, true, c, gen);
      const Tensor& alpha = layer.analog_core().out_scaling();
      REQUIRE(alpha.numel() == (columnwise ? 3 : 1));
      CHECK(has_name(layer.named_parameters(), "out_scaling"));
      for (float v : alpha.to_vector()) CHECK(v == 1.0f);  // set_weights resets it to 1
      const Tensor w0 = layer.get_weights();
      alpha.detach().copy_(
          Tensor::from_vector(std::vector<float>{1.3f, 0.7f, 0.9f}, {3}).slice(0, 0, alpha.numel()));
      // get_weights includes the out scaling.
      const auto a = alpha.to_vector();
      const auto w0v = w0.to_vector(), w1v = layer.get_weights().to_vector();
      for (int i = 0; i < 15; ++i) CHECK(w1v[i] == Approx(w0v[i] * a[columnwise ? i / 5 : 0]).margin(1e-6));
      Generator data(109);
      const Tensor x = data.normal({8, 5}), target = data.normal({8, 3});
      layer.zero_grad();
      mse_loss(layer(x), target).backward();
      const auto grad = alpha.grad().to_vector();
      const double eps = 1e-2;
      for (std::int64_t k = 0; k < alpha.numel(); ++k) {
        float* p = alpha.detach().data<float>();
        const float saved = p[k];
        p[k] = saved + float(eps);
        const double lp = mse_loss(layer(x), target).item();
        p[k] = saved - float(eps);
        const double lm = mse_loss(layer(x), target).item();
        p[k] = saved;
        const double fd = (lp - lm) / (2 * eps);
        CHECK(std::abs(fd - grad[k]) <= 1e-3 * std::max(1.0, std::abs(double(grad[k]))));
      }
    }
  }
}

TEST_CASE("AnalogLinear: Module::post_update_step runs the core's post-update function") {
  Generator gen(110);
  AnalogLinear layer(3, 2, true, perfect_config(0, 0), gen);
  layer.post_update_step();  // no function set: a no-op
  int calls = 0;
  layer.analog_core().set_post_update_step([&calls](AnalogCore& core) {
    ++calls;
    CHECK(core.out_size() == 2);
  });
  layer.post_update_step();
  layer.post_update_step();
  CHECK(calls == 2);
}

TEST_CASE("post-update clip bounds every tile weight; channelwise remap keeps the logical weights") {
  Generator gen(31);
  Linear digital(20, 6, true, gen);
  {
    NoGradGuard no_grad;
    digital.weight().detach().mul_(8.0);  // weights up to ~1.8
  }
  InferenceRPUConfig clip_cfg;
  clip_cfg.forward.is_perfect = true;
  clip_cfg.clip.type = WeightClipType::FixedValue;
  clip_cfg.clip.fixed_value = 0.5f;
  clip_cfg.mapping.max_input_size = 8;  // 3 tile columns
  Generator g1(32);
  auto clipped = AnalogLinear::from_digital(digital, clip_cfg, g1);
  clipped->post_update_step();
  for (AnalogTile* t : clipped->analog_tiles())
    for (float v : t->weight().to_vector()) CHECK(std::abs(v) <= 0.5f);

  InferenceRPUConfig remap_cfg = clip_cfg;
  remap_cfg.clip.type = WeightClipType::None;
  remap_cfg.remap.type = WeightRemapType::ChannelwiseSymmetric;
  remap_cfg.remap.remapped_wmax = 1.0f;
  Generator g2(33);
  auto remapped = AnalogLinear::from_digital(digital, remap_cfg, g2);
  Tensor x = Generator(34).normal({5, 20});
  remapped->eval();
  const Tensor before = (*remapped)(x);
  remapped->post_update_step();
  // Every output row of the tile matrix now has max |W| = 1 across its tiles...
  const Tensor tile_matrix = remapped->analog_core().tile_array().get_weights();
  const auto w = tile_matrix.to_vector();
  for (int i = 0; i < 6; ++i) {
    float m = 0;
    for (int j = 0; j < 20; ++j) m = std::max(m, std::abs(w[i * 20 + j]));
    CHECK(m == Approx(1.0f).epsilon(1e-6));
  }
  // ... while the logical weights and the (perfect) outputs stay the same.
  CHECK(max_abs_diff(remapped->get_weights(), digital.weight()) < 1e-5);
  CHECK(max_abs_diff((*remapped)(x), before) < 1e-5);
}

TEST_CASE("the weight modifier perturbs the training forward only and never the stored weights") {
  Generator gen(41);
  Linear digital(16, 4, false, gen);
  InferenceRPUConfig c;
  c.forward.is_perfect = true;
  c.modifier.type = WeightModifierType::AddNormal;
  c.modifier.std_dev = 0.1f;
  Generator g1(42);
  auto layer = AnalogLinear::from_digital(digital, c, g1);
  const auto stored = layer->get_weights().to_vector();
  Tensor x = Generator(43).normal({3, 16});
  layer->eval();
  const Tensor clean = (*layer)(x);
  CHECK(max_abs_diff(clean, digital(x)) < 1e-5);  // no modifier in eval
  layer->train();
  const Tensor noisy1 = (*layer)(x), noisy2 = (*layer)(x);
  CHECK(max_abs_diff(noisy1, clean) > 1e-3);
  CHECK(max_abs_diff(noisy1, noisy2) > 1e-3);  // fresh noise every batch
  CHECK(layer->get_weights().to_vector() == stored);
  // Gradients still reach the stored weights.
  sum((*layer)(x)).backward();
  CHECK(layer->analog_tiles()[0]->weight().grad().defined());
}

// ---- TorchInferenceRPUConfig: the lightning-style forward (layers/tiles/lightning_forward.h) ----
