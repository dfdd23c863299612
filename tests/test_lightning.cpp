// The lightning-style forward of TorchInferenceRPUConfig (REFERENCE.md section 4).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "layers/config/rpu_config.h"
#include "layers/tiles/lightning_forward.h"
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

// An input range fixed at r (init_from_data 0: r stays).
void fix_input_range(TorchInferenceRPUConfig& c, float r) {
  c.pre_post.input_range.enable = true;
  c.pre_post.input_range.init_value = r;
  c.pre_post.input_range.init_from_data = 0;
}

// Lightning config for a 14->5 layer on 2x2 tiles (in [7, 7], out [3, 2]) with
// every nonideality off; input range r (init_from_data 0: r stays) when r > 0.
TorchInferenceRPUConfig lightning_config(float r) {
  TorchInferenceRPUConfig c;
  c.mapping.max_input_size = 7;
  c.mapping.max_output_size = 3;
  c.forward.out_noise = 0.f;
  c.forward.inp_res = 0.f;
  c.forward.out_res = 0.f;
  c.forward.out_bound = 0.f;
  c.modifier.type = WeightModifierType::None;
  if (r > 0) fix_input_range(c, r);
  return c;
}

// W[i][j] = +-0.5 (chequered): max|W| = 0.5 on every tile.
Tensor chequered_weights() {
  std::vector<float> w(5 * 14);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 14; ++j) w[i * 14 + j] = (i + j) % 2 ? 0.5f : -0.5f;
  return Tensor::from_vector(w, {5, 14});
}

}  // namespace

TEST_CASE("lightning forward, nonidealities off: mapped 14->5 on 2x2 tiles equals the exact layer") {
  Generator gen(201);
  Linear digital(14, 5, true, gen);
  Generator g1(202);
  auto layer = AnalogLinear::from_digital(digital, lightning_config(0.f), g1);
  REQUIRE(layer->analog_tiles().size() == 4);
  CHECK(layer->analog_core().lightning());
  const Tensor x = Generator(203).normal({9, 14});
  const Tensor g = Generator(204).normal({9, 5});
  for (bool training : {true, false}) {
    layer->train(training);
    Tensor xd = x.clone().set_requires_grad(), xa = x.clone().set_requires_grad();
    digital.zero_grad();
    layer->zero_grad();
    const Tensor yd = digital(xd), ya = (*layer)(xa);
    CHECK(max_abs_diff(yd, ya) < 1e-5);
    sum(mul(yd, g)).backward();
    sum(mul(ya, g)).backward();
    CHECK(max_abs_diff(xd.grad(), xa.grad()) < 1e-5);
    // Tile (1, 1) holds W[3:5, 7:14].
    const Tensor wg = layer->analog_tiles()[3]->weight().grad();
    CHECK(max_abs_diff(wg, digital.weight().grad().slice(0, 3, 5).slice(1, 7, 14).contiguous()) < 1e-5);
  }
  // A DAC without an input range is rejected, as lightning asserts.
  TorchInferenceRPUConfig dac = lightning_config(0.f);
  dac.forward.inp_res = 1.f / 254.f;
  Generator g2(205);
  CHECK_THROWS_AS(AnalogLinear(14, 5, true, dac, g2), ConfigError);
}

TEST_CASE("lightning DAC: inputs rounded on the inp_res grid of +-r, straight-through gradient w.r.t. x") {
  // r = 2, inp_res = 1/126: x is rounded to multiples of 2*2/126 in the forward;
  // the gradient w.r.t. x is the exact layer's (all |x| < r). input_range_<c>
  // gets only the decay, 0.001*r = 0.002 (all inputs inside).
  TorchInferenceRPUConfig c = lightning_config(2.f);
  c.forward.inp_res = 1.f / 126.f;
  Generator gen(211);
  Linear digital(14, 5, true, gen);
  Generator g1(212);
  auto layer = AnalogLinear::from_digital(digital, c, g1);
  CHECK(has_name(layer->named_parameters(), "input_range_0"));
  CHECK(has_name(layer->named_parameters(), "input_range_1"));
  CHECK(has_name(layer->named_buffers(), "input_range_update_idx"));
  layer->eval();
  const Tensor x = Generator(213).uniform({12, 14}, -1.9, 1.9);
  std::vector<float> xq = x.to_vector();
  const float res = 2.f / 126.f;
  for (float& v : xq) v = std::nearbyint((v / 2.f) / res) * res * 2.f;
  Tensor xa = x.clone().set_requires_grad(), xd = x.clone().set_requires_grad();
  const Tensor ya = (*layer)(xa), yd = digital(xd);
  CHECK(max_abs_diff(ya, digital(Tensor::from_vector(xq, {12, 14}))) < 1e-5);
  CHECK(max_abs_diff(ya, yd) > 1e-3);  // the rounding is visible
  const Tensor g = Generator(214).normal({12, 5});
  sum(mul(ya, g)).backward();
  sum(mul(yd, g)).backward();
  CHECK(max_abs_diff(xa.grad(), xd.grad()) < 1e-5);
  for (const Tensor& r : layer->analog_core().input_ranges()) CHECK(r.grad().item() == Approx(0.002).margin(1e-7));
}

TEST_CASE("lightning ADC: every tile's partial output is clipped at r*out_bound*wmax") {
  // r = 2, out_bound = 0.5, wmax = 0.5 on every tile: bound 0.5 on each partial
  // sum over a tile's 7 inputs; clipped partials pass no gradient to x.
  TorchInferenceRPUConfig c = lightning_config(2.f);
  c.forward.out_bound = 0.5f;
  Generator gen(221);
  AnalogLinear layer(14, 5, false, c, gen);
  const Tensor w = chequered_weights();
  layer.set_weights(w);
  layer.eval();
  const std::int64_t m = 16;
  const Tensor x = Generator(222).uniform({m, 14}, -1.9, 1.9);
  const Tensor g = Generator(223).normal({m, 5});
  Tensor xa = x.clone().set_requires_grad();
  const Tensor y = layer(xa);
  sum(mul(y, g)).backward();
  const auto xv = x.to_vector(), wv = w.to_vector(), gv = g.to_vector(), yv = y.to_vector();
  const auto gx = xa.grad().to_vector();
  std::vector<double> y_ref(m * 5, 0.0), gx_ref(m * 14, 0.0);
  int clipped = 0;
  for (std::int64_t n = 0; n < m; ++n)
    for (int i = 0; i < 5; ++i)
      for (int col = 0; col < 2; ++col) {
        double p = 0;
        for (int j = 7 * col; j < 7 * col + 7; ++j) p += double(xv[n * 14 + j]) * wv[i * 14 + j];
        const bool inside = std::abs(p) <= 0.5;
        clipped += inside ? 0 : 1;
        y_ref[n * 5 + i] += std::min(std::max(p, -0.5), 0.5);
        if (inside)
          for (int j = 7 * col; j < 7 * col + 7; ++j) gx_ref[n * 14 + j] += double(gv[n * 5 + i]) * wv[i * 14 + j];
      }
  CHECK(clipped > 20);
  double dy = 0, dg = 0;
  for (std::size_t k = 0; k < y_ref.size(); ++k) dy = std::max(dy, std::abs(y_ref[k] - yv[k]));
  for (std::size_t k = 0; k < gx_ref.size(); ++k) dg = std::max(dg, std::abs(gx_ref[k] - gx[k]));
  CHECK(dy < 1e-5);
  CHECK(dg < 1e-5);
}

TEST_CASE("lightning output noise: std out_noise*r*wmax/sqrt(2) per tile in training, none in eval") {
  // out_noise 0.1, wmax 0.5, r_0 = 2, r_1 = 1, two tile columns: each output is
  // the sum of two independent draws, std^2 = (0.1*0.5)^2*(2^2 + 1^2)/2 ->
  // std 0.0790569 (0.1118 without the 1/sqrt(2)). 20000 x 5 = 1e5 samples:
  // the std within 3 %, the mean within 5 sigma/sqrt(n) of 0.
  TorchInferenceRPUConfig c = lightning_config(2.f);
  c.forward.out_noise = 0.1f;
  Generator gen(231);
  AnalogLinear layer(14, 5, false, c, gen);
  layer.set_weights(chequered_weights());
  Tensor r1 = layer.analog_core().input_ranges()[1];
  r1.detach().fill_(1.0);
  const std::int64_t m = 20000;
  const Tensor x = Generator(232).uniform({m, 14}, -0.9, 0.9);
  layer.eval();
  const Tensor clean = layer(x);
  const Tensor again = layer(x);
  CHECK(max_abs_diff(clean, again) == 0);  // no noise in eval
  layer.train();
  const auto noisy = layer(x).to_vector(), ref = clean.to_vector();
  double s = 0, s2 = 0;
  for (std::size_t k = 0; k < ref.size(); ++k) {
    const double d = double(noisy[k]) - ref[k];
    s += d;
    s2 += d * d;
  }
  const double n = double(ref.size()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  const double expected = 0.1 * 0.5 * std::sqrt((4.0 + 1.0) / 2.0);
  CHECK(n >= 1e5);
  CHECK(sd == Approx(expected).epsilon(0.03));
  CHECK(std::abs(mean) < 5 * expected / std::sqrt(n));
  const auto noisy2 = layer(x).to_vector();
  CHECK(noisy2 != noisy);  // fresh noise every batch
}

TEST_CASE("lightning modifier: DISCRETIZE per tile with step 2a/n, in training and eval; STE to stored weights") {
  // res 0.1: n = 10 states, step 2a/10 (a = the tile's max|W|), w/step clamped
  // to +-5 and rounded half to even (lightning's clip_and_quantize).
  TorchInferenceRPUConfig c = lightning_config(0.f);
  c.modifier.type = WeightModifierType::Discretize;
  c.modifier.res = 0.1f;
  Generator gen(241);
  Linear digital(14, 5, false, gen);
  Generator g1(242);
  auto layer = AnalogLinear::from_digital(digital, c, g1);
  const auto wv = digital.weight().to_vector();
  std::vector<float> wq(wv.size());
  const int rows[2][2] = {{0, 3}, {3, 5}};
  for (const auto& rr : rows)
    for (int col = 0; col < 2; ++col) {
      float a = 0.f;
      for (int i = rr[0]; i < rr[1]; ++i)
        for (int j = 7 * col; j < 7 * col + 7; ++j) a = std::max(a, std::abs(wv[i * 14 + j]));
      const float step = 2.f * (a / 10.f);
      for (int i = rr[0]; i < rr[1]; ++i)
        for (int j = 7 * col; j < 7 * col + 7; ++j)
          wq[i * 14 + j] = std::nearbyint(std::clamp(wv[i * 14 + j] / step, -5.f, 5.f)) * step;
    }
  const Tensor x = Generator(243).normal({6, 14});
  const Tensor y_ref = linear(x, Tensor::from_vector(wq, {5, 14}), Tensor());
  layer->train();
  Tensor xa = x.clone().set_requires_grad();
  const Tensor y = (*layer)(xa);
  CHECK(max_abs_diff(y, y_ref) < 1e-5);
  CHECK(max_abs_diff(y, digital(x)) > 1e-3);
  sum(y).backward();
  // d(sum y)/dW_ij = sum_n x_nj for the stored weights of every tile (straight-through).
  const auto xv = x.to_vector();
  const auto g00 = layer->analog_tiles()[0]->weight().grad().to_vector();
  for (int j = 0; j < 7; ++j) {
    double s = 0;
    for (int n = 0; n < 6; ++n) s += xv[n * 14 + j];
    CHECK(g00[j] == Approx(s).margin(1e-5));
  }
  CHECK(layer->get_weights().to_vector() == wv);  // stored weights stay clean
  layer->eval();
  CHECK(max_abs_diff((*layer)(x), y_ref) < 1e-5);  // quantised in eval too (lightning)
}

TEST_CASE("lightning DISCRETIZE: n = max(res, 1/res), w/step clamped at +-n/2 and rounded half to even, per channel") {
  // One tile [2, 4]; row 0 has max|W| 1, row 1 max|W| 0.5.
  const std::vector<float> w{1.0f, -0.3f, 0.05f, 0.62f, 0.5f, 0.2f, -0.11f, 0.0f};
  TorchInferenceRPUConfig c;
  c.modifier.type = WeightModifierType::Discretize;
  const auto quantised = [&](float res, WeightModifierType type) {
    c.modifier.type = type;
    c.modifier.res = res;
    const TileGrid grid = make_tile_grid(2, 4, 0, 0);
    std::uint64_t counter = 0;
    NoGradGuard no_grad;
    // x = identity rows: y = W'ᵀ, so y[k, i] = W'[i, k].
    std::vector<float> eye(16, 0.f);
    for (int k = 0; k < 4; ++k) eye[k * 4 + k] = 1.f;
    const Tensor y = lightning_forward(Tensor::from_vector(eye, {4, 4}), {Tensor::from_vector(w, {2, 4})}, grid, c,
                                       {}, false, {1, 0, &counter});
    const auto yv = y.to_vector();
    std::vector<float> out(8);
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 4; ++k) out[i * 4 + k] = yv[k * 2 + i];
    return out;
  };
  // res 1/14 (read from JSON as 14 steps): n = 14, step 2/14 over the tile:
  // 1 -> 7 steps, -0.3 -> -2.1 -> -2, 0.05 -> 0.35 -> 0, 0.62 -> 4.34 -> 4, and
  // 0.5 -> 3.49999976 in float32 (0.5/0.142857149) -> 3, as torch computes it.
  const float s14 = 2.f * (1.f / 14.f);
  const std::vector<float> want14{7 * s14, -2 * s14, 0.f, 4 * s14, 3 * s14, 1 * s14, -1 * s14, 0.f};
  const auto got14 = quantised(1.f / 14.f, WeightModifierType::Discretize);
  for (int e = 0; e < 8; ++e) CHECK(got14[e] == Approx(want14[e]).margin(1e-6));
  // res 1/3: n = 3, step 2/3, half 1.5: w = max|W| = 1 is 1.5 steps, rounded
  // half to even to 2, i.e. 4/3, beyond max|W| as in lightning; 0.62 -> 0.93 -> 1.
  const auto got3 = quantised(1.f / 3.f, WeightModifierType::Discretize);
  const float s3 = 2.f * (1.f / 3.f);
  CHECK(got3[0] == Approx(2 * s3).margin(1e-6));
  CHECK(got3[1] == Approx(0.f).margin(1e-6));
  CHECK(got3[3] == Approx(s3).margin(1e-6));
  // A number of states > 1 gives the same (n = max(res, 1/res)).
  CHECK(quantised(14.f, WeightModifierType::Discretize) == got14);
  // Per channel: row 1 uses its own max|W| 0.5: step 2*0.5/14.
  const auto gotpc = quantised(1.f / 14.f, WeightModifierType::DiscretizePerChannel);
  const float r14 = 2.f * (0.5f / 14.f);
  CHECK(gotpc[4] == Approx(7 * r14).margin(1e-6));   // 0.5 -> 7 steps
  CHECK(gotpc[5] == Approx(3 * r14).margin(1e-6));   // 0.2 -> 2.8 -> 3
  CHECK(gotpc[6] == Approx(-2 * r14).margin(1e-6));  // -0.11 -> -1.54 -> -2
  CHECK(gotpc[1] == Approx(-2 * s14).margin(1e-6));  // row 0 as before
}

TEST_CASE("lightning input ranges are initialised from data per tile column") {
  // init_from_data 1, alpha 3: after one training batch r_c = 3*std(x_c) (unbiased).
  TorchInferenceRPUConfig c = lightning_config(5.f);
  c.pre_post.input_range.init_from_data = 1;
  Generator gen(251);
  AnalogLinear layer(14, 5, false, c, gen);
  std::vector<float> xs(4 * 14);
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 14; ++j) xs[n * 14 + j] = j < 7 ? float(n) : 10.f * float(n);
  layer.train();
  (void)layer(Tensor::from_vector(xs, {4, 14}));
  // Column 0: values 0,1,2,3 seven times each: mean 1.5, unbiased var = 7*5/27.
  const double sd0 = std::sqrt(7.0 * 5.0 / 27.0);
  CHECK(layer.analog_core().input_ranges()[0].item() == Approx(3 * sd0).epsilon(1e-5));
  CHECK(layer.analog_core().input_ranges()[1].item() == Approx(30 * sd0).epsilon(1e-5));
  CHECK(layer.analog_core().input_range_update_idx().to_vector() == std::vector<float>{1.f, 1.f});
  // A second batch leaves them (k = 1 = init_from_data).
  (void)layer(Tensor::from_vector(xs, {4, 14}) * 2.0);
  CHECK(layer.analog_core().input_ranges()[0].item() == Approx(3 * sd0).epsilon(1e-5));
}

TEST_CASE("a noisy lightning AnalogLinear gives the same bits for 1, 2 and 8 threads and a fixed seed") {
  TorchInferenceRPUConfig c;
  c.forward.inp_res = 1.f / 126.f;
  c.forward.out_res = 1.f / 510.f;
  c.forward.out_bound = 12.f;
  c.forward.out_noise = 0.06f;
  c.mapping.max_input_size = 64;
  c.mapping.max_output_size = 32;
  c.pre_post.input_range.enable = true;
  c.modifier.type = WeightModifierType::AddNormal;
  c.modifier.std_dev = 0.05f;
  check_same_bits_for_thread_counts([&] {
    Generator gen(261);
    AnalogLinear layer(200, 70, true, c, gen);
    auto v = output_and_input_grad(layer, Generator(262).normal({33, 200}).set_requires_grad());
    v.push_back(static_cast<float>(layer.analog_core().input_ranges()[2].grad().item()));
    return v;
  });
}

// ---- TorchInferenceRPUConfig as aihwkit-lightning 2.1 defines it ----

TEST_CASE("TorchInferenceRPUConfig alone takes lightning's defaults and builds an exact, unsplit layer") {
  const RPUConfig rc = RPUConfig::from_json(nlohmann::json{{"family", "TorchInferenceRPUConfig"}});
  const auto& c = rc.get<TorchInferenceRPUConfig>();
  // aihwkit-lightning 2.1 IOParameters: inp_res -1, out_noise 0, out_noise_per_channel
  // False, out_bound 0, out_res -1.
  CHECK(c.forward.inp_res == -1.f);
  CHECK(c.forward.out_noise == 0.f);
  CHECK_FALSE(c.forward.out_noise_per_channel);
  CHECK(c.forward.out_bound == 0.f);
  CHECK(c.forward.out_res == -1.f);
  // MappingParameter: max_input_size -1 (no split); aimc's max_output_size off too.
  CHECK(c.mapping.max_input_size == -1);
  CHECK(c.mapping.max_output_size == -1);
  // WeightClipParameter: sigma -1, type NONE. WeightModifierParameter: std_dev 0,
  // res 0, enable_during_test False, type NONE.
  CHECK(c.clip.sigma == -1.f);
  CHECK(c.clip.type == WeightClipType::None);
  CHECK(c.modifier.std_dev == 0.f);
  CHECK(c.modifier.res == 0.f);
  CHECK_FALSE(c.modifier.enable_during_test);
  CHECK(c.modifier.type == WeightModifierType::None);
  // InputRangeParameter: enable False, init_value 3, init_from_data 100,
  // init_std_alpha 3, decay 0.001, input_min_percentage 0.95, learn_input_range True.
  const InputRangeParameter& ir = c.pre_post.input_range;
  CHECK_FALSE(ir.enable);
  CHECK(ir.init_value == 3.f);
  CHECK(ir.init_from_data == 100);
  CHECK(ir.init_std_alpha == 3.f);
  CHECK(ir.decay == 0.001f);
  CHECK(ir.input_min_percentage == 0.95f);
  CHECK(ir.learn_input_range);
  // The other families keep aihwkit's defaults.
  const RPUConfig inf_rc = RPUConfig::from_json(nlohmann::json{{"family", "InferenceRPUConfig"}});
  const auto& inf = inf_rc.get<InferenceRPUConfig>();
  CHECK(inf.forward.inp_res == 1.f / 126.f);
  CHECK(inf.forward.out_bound == 12.f);
  CHECK(inf.forward.out_noise == 0.06f);
  CHECK(inf.mapping.max_input_size == 512);
  CHECK(inf.clip.sigma == 2.5f);
  CHECK_THROWS_AS(MappingParameter::from_json(nlohmann::json{{"max_input_size", -1}}), ConfigError);

  // 600 -> 300 (more than aihwkit's 512) on one tile, equal to the digital layer.
  Generator gen(301);
  Linear digital(600, 300, true, gen);
  Generator g1(302);
  auto layer = AnalogLinear::from_digital(digital, rc, g1);
  CHECK(layer->analog_tiles().size() == 1);
  const Tensor x = Generator(303).normal({7, 600});
  for (bool training : {true, false}) {
    layer->train(training);
    CHECK(max_abs_diff((*layer)(x), digital(x)) < 1e-4);
  }
}

TEST_CASE("lightning output noise per row only with out_noise_per_channel, not with the per-channel clip") {
  // One tile 64 -> 20, row i = s_i * (+-1), s_i = 0.05 + 0.95 i/19 (max|W| of
  // the tile 1), r = 2, out_noise 0.04, training. Without out_noise_per_channel
  // every row has noise std 0.04*2*1 = 0.08 (also with the LAYER_GAUSSIAN_PER_CHANNEL
  // clip, which sets only the ADC bound per row); with it row i has 0.08*s_i.
  // 4000 samples a row: the std within 3 % (about 6 sigma of 1/sqrt(2*4000)).
  const int out = 20, in = 64, m = 4000;
  std::vector<float> w(out * in), s(out);
  for (int i = 0; i < out; ++i) {
    s[i] = 0.05f + 0.95f * float(i) / float(out - 1);
    for (int j = 0; j < in; ++j) w[i * in + j] = (i + j) % 2 ? s[i] : -s[i];
  }
  const Tensor x = Generator(311).uniform({m, in}, -1.9, 1.9);
  const auto row_std = [&](bool per_channel, WeightClipType clip) {
    TorchInferenceRPUConfig c;
    fix_input_range(c, 2.f);
    c.forward.out_noise = 0.04f;
    c.forward.out_noise_per_channel = per_channel;
    c.clip.type = clip;
    c.clip.sigma = 100.f;
    Generator gen(312);
    AnalogLinear layer(in, out, false, c, gen);
    layer.set_weights(Tensor::from_vector(w, {out, in}));
    layer.eval();
    const auto clean = layer(x).to_vector();
    layer.train();
    const auto noisy = layer(x).to_vector();
    std::vector<double> sd(out);
    for (int i = 0; i < out; ++i) {
      double s2 = 0;
      for (int n = 0; n < m; ++n) {
        const double d = double(noisy[n * out + i]) - clean[n * out + i];
        s2 += d * d;
      }
      sd[i] = std::sqrt(s2 / m);
    }
    return sd;
  };
  for (WeightClipType clip : {WeightClipType::None, WeightClipType::LayerGaussianPerChannel}) {
    const auto sd = row_std(false, clip);
    CHECK(sd[0] == Approx(0.08).epsilon(0.03));
    CHECK(sd[out - 1] == Approx(0.08).epsilon(0.03));
  }
  const auto sd = row_std(true, WeightClipType::None);
  for (int i : {0, 7, out - 1}) CHECK(sd[i] == Approx(0.08 * s[i]).epsilon(0.03));
}

TEST_CASE("lightning: enable_during_test is turned off with a warning; the weight noise runs in training only") {
  TorchInferenceRPUConfig c = lightning_config(0.f);
  c.modifier.type = WeightModifierType::AddNormal;
  c.modifier.std_dev = 0.1f;
  c.modifier.enable_during_test = true;
  Generator gen(321);
  Linear digital(14, 5, false, gen);
  std::ostringstream captured;
  std::streambuf* old = std::cerr.rdbuf(captured.rdbuf());
  Generator g1(322);
  auto layer = AnalogLinear::from_digital(digital, c, g1);
  std::cerr.rdbuf(old);
  CHECK(captured.str().find("warning") != std::string::npos);
  CHECK(captured.str().find("enable_during_test") != std::string::npos);
  const Tensor x = Generator(323).normal({8, 14});
  layer->eval();
  CHECK(max_abs_diff((*layer)(x), digital(x)) < 1e-5);  // no noise in eval
  layer->train();
  CHECK(max_abs_diff((*layer)(x), digital(x)) > 1e-3);  // noise in training
  // Without the flag nothing is written.
  c.modifier.enable_during_test = false;
  std::ostringstream quiet;
  old = std::cerr.rdbuf(quiet.rdbuf());
  Generator g2(324);
  (void)AnalogLinear::from_digital(digital, c, g2);
  std::cerr.rdbuf(old);
  CHECK(quiet.str().empty());
}

TEST_CASE("lightning: ADD_NORMAL weight noise has std std_dev*max|W| (tile) or per row (*_PER_CHANNEL)") {
  // One tile 64 -> 20, rows scaled as above; x = e_k picks column k of W', so
  // y - y_clean is the weight noise. 64 inputs x 200 batches = 12800 draws a row:
  // std within 3 % (about 5 sigma).
  const int out = 20, in = 64;
  std::vector<float> w(out * in), s(out);
  for (int i = 0; i < out; ++i) {
    s[i] = 0.05f + 0.95f * float(i) / float(out - 1);
    for (int j = 0; j < in; ++j) w[i * in + j] = (i + j) % 2 ? s[i] : -s[i];
  }
  std::vector<float> eye(in * in, 0.f);
  for (int k = 0; k < in; ++k) eye[k * in + k] = 1.f;
  const Tensor x = Tensor::from_vector(eye, {in, in});
  const TileGrid grid = make_tile_grid(out, in, 0, 0);
  for (WeightModifierType type : {WeightModifierType::AddNormal, WeightModifierType::AddNormalPerChannel}) {
    TorchInferenceRPUConfig c;
    c.modifier.type = type;
    c.modifier.std_dev = 0.05f;
    std::vector<double> s2(out, 0.0);
    std::uint64_t counter = 0;
    const int batches = 200;
    NoGradGuard no_grad;
    for (int b = 0; b < batches; ++b) {
      const auto y = lightning_forward(x, {Tensor::from_vector(w, {out, in})}, grid, c, {}, true, {5, 0, &counter})
                         .to_vector();
      for (int k = 0; k < in; ++k)
        for (int i = 0; i < out; ++i) {
          const double d = double(y[k * out + i]) - w[i * in + k];
          s2[i] += d * d;
        }
    }
    const bool per_row = type == WeightModifierType::AddNormalPerChannel;
    for (int i : {0, out - 1})
      CHECK(std::sqrt(s2[i] / (in * batches)) == Approx(0.05 * (per_row ? s[i] : 1.0)).epsilon(0.03));
    std::uint64_t c_eval = 0;
    const auto y_eval =
        lightning_forward(x, {Tensor::from_vector(w, {out, in})}, grid, c, {}, false, {5, 0, &c_eval}).to_vector();
    CHECK(y_eval[0] == w[0]);  // no weight noise in eval
    CHECK(c_eval == 0);
  }
}

TEST_CASE("lightning output split: off by default (one max|W| over all outputs), per tile when max_output_size is set") {
  // 8 -> 20, rows 0-9 scaled 0.2, rows 10-19 scaled 1; r = 1, out_bound 0.5.
  // Lightning (the default): bound 0.5*1 for every row. With max_output_size 10
  // the first tile's bound is 0.5*0.2 = 0.1.
  const int out = 20, in = 8, m = 32;
  std::vector<float> w(out * in);
  for (int i = 0; i < out; ++i)
    for (int j = 0; j < in; ++j) w[i * in + j] = ((i * 3 + j) % 5 - 2) * 0.5f * (i < 10 ? 0.2f : 1.f);
  const Tensor x = Generator(331).uniform({m, in}, -0.99, 0.99);
  const auto xv = x.to_vector();
  const auto reference = [&](double bound_low) {
    std::vector<double> y(m * out);
    for (int n = 0; n < m; ++n)
      for (int i = 0; i < out; ++i) {
        double p = 0;
        for (int j = 0; j < in; ++j) p += double(xv[n * in + j]) * w[i * in + j];
        const double b = i < 10 ? bound_low : 0.5;
        y[n * out + i] = std::min(std::max(p, -b), b);
      }
    return y;
  };
  for (int split : {-1, 10}) {
    TorchInferenceRPUConfig c;
    fix_input_range(c, 1.f);
    c.forward.out_bound = 0.5f;
    c.mapping.max_output_size = split;
    Generator gen(332);
    AnalogLinear layer(in, out, false, c, gen);
    REQUIRE(layer.analog_tiles().size() == (split > 0 ? 2u : 1u));
    layer.set_weights(Tensor::from_vector(w, {out, in}));
    layer.eval();
    const auto y = layer(x).to_vector();
    const auto want = reference(split > 0 ? 0.1 : 0.5);
    double d = 0;
    int clipped_low = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
      d = std::max(d, std::abs(want[k] - y[k]));
      if (int(k % out) < 10 && std::abs(want[k]) >= 0.1 - 1e-9) ++clipped_low;
    }
    CHECK(d < 1e-5);
    if (split > 0) CHECK(clipped_low > 20);  // the split changes the result
  }
}

TEST_CASE("lightning weight clip: LAYER_GAUSSIAN(_PER_CHANNEL) over the whole layer matrix, not per tile") {
  // 14 -> 5 on 2x2 tiles; lightning clamps W to +-sigma*std (unbiased) of all of
  // W, or of each whole row, whatever the tiles.
  std::vector<float> w(5 * 14);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 14; ++j) w[i * 14 + j] = (j < 7 ? 0.1f : 1.f) * float((i * 5 + j * 3) % 7 - 3) * (1.f + i);
  for (WeightClipType type : {WeightClipType::LayerGaussian, WeightClipType::LayerGaussianPerChannel}) {
    TorchInferenceRPUConfig c = lightning_config(0.f);
    c.clip.type = type;
    c.clip.sigma = 1.f;
    Generator gen(341);
    AnalogLinear layer(14, 5, false, c, gen);
    REQUIRE(layer.analog_tiles().size() == 4);
    layer.set_weights(Tensor::from_vector(w, {5, 14}));
    layer.post_update_step();
    const auto got = layer.get_weights().to_vector();
    const bool per_row = type == WeightClipType::LayerGaussianPerChannel;
    for (int i = 0; i < 5; ++i) {
      const int lo = per_row ? i * 14 : 0, hi = per_row ? lo + 14 : 70;
      double s = 0, s2 = 0;
      for (int k = lo; k < hi; ++k) s += w[k];
      const double mean = s / (hi - lo);
      for (int k = lo; k < hi; ++k) s2 += (w[k] - mean) * (w[k] - mean);
      const double bound = std::sqrt(s2 / (hi - lo - 1));
      for (int j = 0; j < 14; ++j)
        CHECK(got[i * 14 + j] == Approx(std::clamp(double(w[i * 14 + j]), -bound, bound)).margin(1e-5));
    }
  }
}
