// The lightning-style forward of TorchInferenceRPUConfig (REFERENCE.md section 4).
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
  if (r > 0) {
    c.pre_post.input_range.enable = true;
    c.pre_post.input_range.init_value = r;
    c.pre_post.input_range.init_from_data = 0;
  }
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
  // The default TorchInferenceRPUConfig quantises without an input range: rejected as in lightning.
  Generator g2(205);
  CHECK_THROWS_AS(AnalogLinear(14, 5, true, TorchInferenceRPUConfig{}, g2), ConfigError);
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

TEST_CASE("lightning modifier: DISCRETIZE per tile (a = tile max|W|) in training only; STE to stored weights") {
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
      for (int i = rr[0]; i < rr[1]; ++i)
        for (int j = 7 * col; j < 7 * col + 7; ++j)
          wq[i * 14 + j] = a * 0.1f * std::nearbyint(wv[i * 14 + j] / a / 0.1f);
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
  CHECK(max_abs_diff((*layer)(x), digital(x)) < 1e-5);  // no modifier in eval
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
  TorchInferenceRPUConfig c;  // inp_res 1/126, out_res 1/510, out_bound 12, out_noise 0.06
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
