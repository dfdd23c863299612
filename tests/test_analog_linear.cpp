// AnalogLinear on tiles: exact tiles equal Linear, mapped equals unmapped
// (REFERENCE.md section 7), output noise statistics, thread independence,
// restored noise streams.
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

TEST_CASE("AnalogLinear with exact tiles equals Linear, forward and gradients") {
  Generator gen(1);
  Linear digital(37, 21, true, gen);
  Generator conv_gen(2);
  auto analog = AnalogLinear::from_digital(digital, FloatingPointRPUConfig{}, conv_gen);
  CHECK(analog->analog_tiles().size() == 1);
  Tensor x = Generator(3).normal({9, 37});
  Tensor xd = x.clone().set_requires_grad();
  Tensor xa = x.clone().set_requires_grad();
  Tensor yd = digital(xd), ya = (*analog)(xa);
  CHECK(max_abs_diff(yd, ya) < 1e-5);
  Tensor w = Generator(4).normal({9, 21});
  sum(mul(yd, w)).backward();
  sum(mul(ya, w)).backward();
  CHECK(max_abs_diff(xd.grad(), xa.grad()) < 1e-5);
  CHECK(max_abs_diff(digital.weight().grad(), analog->analog_tiles()[0]->weight().grad()) < 1e-4);
  CHECK(max_abs_diff(digital.bias().grad(), analog->get_bias().grad()) < 1e-5);
  // get_weights returns the exact weights; to_digital round-trips them.
  CHECK(max_abs_diff(analog->get_weights(), digital.weight()) == 0);
  Generator g5(5);
  CHECK(max_abs_diff(analog->to_digital(g5)->weight(), digital.weight()) == 0);
}

TEST_CASE("mapped linear 14->5 with max sizes 10/4: 2x2 tiles equal the unmapped layer for ten SGD steps") {
  Generator gen(7);
  Linear digital(14, 5, true, gen);
  Generator g1(8), g2(8);
  auto mapped = AnalogLinear::from_digital(digital, perfect_config(10, 4), g1);
  auto unmapped = AnalogLinear::from_digital(digital, perfect_config(0, 0), g2);
  REQUIRE(mapped->analog_tiles().size() == 4);
  CHECK(mapped->tile_array().grid().in_pieces == std::vector<std::int64_t>{7, 7});
  CHECK(mapped->tile_array().grid().out_pieces == std::vector<std::int64_t>{3, 2});
  CHECK(unmapped->analog_tiles().size() == 1);
  SGD sgd_mapped(mapped->parameters(), 0.1), sgd_unmapped(unmapped->parameters(), 0.1);
  Generator data(9);
  Tensor target = data.normal({16, 5});
  for (int step = 0; step < 10; ++step) {
    Tensor x = data.normal({16, 14});
    Tensor ym = (*mapped)(x), yu = (*unmapped)(x);
    CHECK(max_abs_diff(ym, yu) < 1e-5);
    sgd_mapped.zero_grad();
    sgd_unmapped.zero_grad();
    mse_loss(ym, target).backward();
    mse_loss(yu, target).backward();
    sgd_mapped.step();
    sgd_unmapped.step();
  }
  CHECK(max_abs_diff(mapped->get_weights(), unmapped->get_weights()) < 1e-5);
  CHECK(max_abs_diff(mapped->get_weights(), digital.weight()) > 1e-3);  // it did train
}

TEST_CASE("tile_array_class null keeps a layer on one tile whatever the mapping sizes") {
  Generator gen(7);
  Linear digital(14, 5, true, gen);
  RPUConfig single = perfect_config(10, 4);
  single.get<InferenceRPUConfig>().tile_array_class = "";
  Generator g1(8);
  auto layer = AnalogLinear::from_digital(digital, single, g1);
  REQUIRE(layer->analog_tiles().size() == 1);
  CHECK(layer->analog_tiles()[0]->out_size() == 5);
  CHECK(layer->analog_tiles()[0]->in_size() == 14);
  CHECK(max_abs_diff(layer->get_weights(), digital.weight()) < 1e-6);
  // JSON: null means one tile; other names are rejected.
  const nlohmann::json j = single.to_json();
  CHECK(j["tile_array_class"].is_null());
  CHECK(RPUConfig::from_json(j).get<InferenceRPUConfig>().tile_array_class.empty());
  CHECK(RPUConfig().to_json()["tile_array_class"] == "TileModuleArray");
  nlohmann::json bad = j;
  bad["tile_array_class"] = "TileArray";
  CHECK_THROWS_AS(RPUConfig::from_json(bad), ConfigError);
}

TEST_CASE("default InferenceRPUConfig: output noise 0.06 around the exact product, NM ABS_MAX scaling") {
  // One output, W = 0 except w_00 = 0.5; x = e_0 (max|x| = 1): y = 0.5 + 0.06*xi
  // (quantised on the 9-bit ADC grid of step 24/510 = 0.047). Over 20000 samples
  // the mean is within 5*0.06/sqrt(2e4) + quantisation bias ~ 0.01 of 0.5 and
  // the std within 10 % of the combined sqrt(0.06^2 + 0.047^2/12) = 0.0616.
  InferenceRPUConfig c;
  c.mapping.max_input_size = 0;
  c.mapping.max_output_size = 0;
  Generator gen(11);
  AnalogLinear layer(4, 1, false, c, gen);
  layer.set_weights(Tensor::from_vector(std::vector<float>{0.5f, 0, 0, 0}, {1, 4}));
  layer.eval();
  const std::int64_t n = 20000;
  std::vector<float> xs(n * 4, 0.f);
  for (std::int64_t i = 0; i < n; ++i) xs[i * 4] = 1.f;
  const auto y = layer(Tensor::from_vector(xs, {n, 4})).to_vector();
  double s = 0, s2 = 0;
  for (float v : y) {
    s += v;
    s2 += double(v) * v;
  }
  const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  CHECK(std::abs(mean - 0.5) < 0.01);
  CHECK(sd == Approx(std::sqrt(0.06 * 0.06 + std::pow(24.0 / 510, 2) / 12)).epsilon(0.10));
}

// aihwkit 1.1.0, same setup (AnalogLinear(512, 256), W ~ U(−0.5, 0.5), x ~
// N(0, 1), batch 1000, eval, never trained, default InferenceRPUConfig but
// forward.noise_management = AVERAGE_ABS_MAX): error std 0.261, 0.237, 0.244
// for torch seeds 0, 1, 2, and 1.06..1.17 times the ABS_MAX error (0.223).
// Its running mean of max|x| starts at the first input and follows every row,
// eval included. Freezing it in eval at 1 (aimc before) clipped every |x| > 1:
// 0.87. Both bands below hold aihwkit's seeds and exclude that (aimc: 0.241,
// ratio 1.074).
TEST_CASE("AVERAGE_ABS_MAX in eval on a never-trained layer follows the inputs, as aihwkit") {
  auto error_std = [](NoiseManagementType nm) {
    InferenceRPUConfig c;
    c.forward.noise_management = nm;
    Generator gen(61);
    AnalogLinear layer(512, 256, false, c, gen);
    const Tensor w = Generator(62).uniform({256, 512}, -0.5, 0.5);
    layer.set_weights(w);
    layer.eval();
    const Tensor x = Generator(63).normal({1000, 512});
    const auto y = layer(x).to_vector();
    const auto ref = matmul(x, transpose(w, 0, 1)).to_vector();
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double e = double(y[i]) - ref[i];
      s += e;
      s2 += e * e;
    }
    const double n = double(y.size());
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  const double average = error_std(NoiseManagementType::AverageAbsMax);
  const double abs_max = error_std(NoiseManagementType::AbsMax);
  CHECK(average > 0.20);
  CHECK(average < 0.30);
  CHECK(average / abs_max > 1.0);
  CHECK(average / abs_max < 1.25);
}

TEST_CASE("AVERAGE_ABS_MAX: the running value is tile state, a saved layer continues exactly") {
  InferenceRPUConfig c;
  c.forward.noise_management = NoiseManagementType::AverageAbsMax;
  c.mapping.max_input_size = 16;
  Generator g1(71);
  AnalogLinear a(40, 7, true, c, g1);
  a.eval();
  (void)a(Generator(72).normal({5, 40}, 0., 2.));  // sets the running values
  const NamedTensors saved = a.state_dict();
  Generator g2(71);
  AnalogLinear b(40, 7, true, c, g2);
  b.load_state_dict(saved);
  b.eval();
  const Tensor x = Generator(73).normal({5, 40});
  const auto ya = a(x).to_vector();
  CHECK(ya == b(x).to_vector());
  // A fresh layer (running values unset, same noise counters) answers differently.
  Generator g3(71);
  AnalogLinear fresh(40, 7, true, c, g3);
  fresh.eval();
  (void)fresh(Generator(72).normal({5, 40}));  // the same counters, smaller inputs
  CHECK(fresh(x).to_vector() != ya);
}

TEST_CASE("a noisy mapped AnalogLinear gives the same bits for 1, 2 and 8 threads and a fixed seed") {
  InferenceRPUConfig c;
  c.mapping.max_input_size = 64;
  c.mapping.max_output_size = 32;
  check_same_bits_for_thread_counts([&] {
    Generator gen(21);
    AnalogLinear layer(200, 70, true, c, gen);
    return output_and_input_grad(layer, Generator(22).normal({33, 200}).set_requires_grad());
  });
}

TEST_CASE("a noisy AnalogLinear on [N, T, in] draws as on the rows [N*T, in]") {
  // Two layers from the same seed: the [2, 3, 8] input and its [6, 8] rows
  // give the same noisy outputs bit for bit, in training and in eval.
  InferenceRPUConfig c;
  c.mapping.max_input_size = 5;  // two tiles
  Generator g1(4), g2(4);
  AnalogLinear a(8, 3, true, c, g1), b(8, 3, true, c, g2);
  Generator xg(5, 1);
  const Tensor x = xg.normal({2, 3, 8});
  for (const bool training : {true, false}) {
    a.train(training);
    b.train(training);
    const Tensor ya = a(x);
    REQUIRE(ya.shape() == Shape{2, 3, 3});
    CHECK(ya.to_vector() == b(reshape(x, {6, 8})).to_vector());
  }
  CHECK_THROWS_AS(a(Tensor::zeros({2, 3, 5})), ShapeError);
}

TEST_CASE("AnalogLinear rejects configs it cannot run yet and wrong input shapes") {
  Generator gen(3);
  InferenceRPUConfig c;
  c.mapping.weight_scaling_lr_compensation = true;  // clip is not wired yet
  CHECK_THROWS_AS(AnalogLinear(4, 3, true, c, gen), ConfigError);
  InferenceRPUConfig per_sample;
  per_sample.modifier.per_batch_sample = true;  // silently ignored before: now a clear error
  CHECK_THROWS_WITH(AnalogLinear(4, 3, true, per_sample, gen), Catch::Contains("modifier.per_batch_sample"));
  TorchInferenceRPUConfig dac_without_range;
  dac_without_range.forward.inp_res = 1.f / 254.f;  // lightning: the DAC needs an input range
  CHECK_THROWS_AS(AnalogLinear(4, 3, true, dac_without_range, gen), ConfigError);
  AnalogLinear ok(4, 3, true, InferenceRPUConfig{}, gen);
  CHECK_THROWS_AS(ok(Tensor::zeros({2, 5})), ShapeError);
}

// ---- AnalogConv1d/2d/3d and model conversion ----

TEST_CASE("a noisy layer's state dict restores its noise streams: the next outputs match exactly") {
  InferenceRPUConfig c;  // default forward noise
  c.mapping.max_input_size = 16;
  Generator g1(51);
  AnalogLinear a(40, 7, true, c, g1);
  Tensor x = Generator(52).normal({5, 40});
  a.eval();
  (void)a(x);  // advance the noise streams
  const NamedTensors saved = a.state_dict();
  for (const char* name : {"tile_0_0_forward_counter", "tile_0_0_backward_counter", "tile_0_0_forward_nm_running",
                           "tile_0_0_backward_nm_running", "tile_0_0_seed"})
    CHECK(test::has_name(saved, name));
  // The tile seeds come from the generator: build the twin from the same seed.
  Generator g3(51);
  AnalogLinear same_seed(40, 7, true, c, g3);
  same_seed.load_state_dict(saved);
  same_seed.eval();
  const auto ya = a(x).to_vector(), yb = same_seed(x).to_vector();
  CHECK(ya == yb);
  // Without the restored counters the noise would differ.
  Generator g4(51);
  AnalogLinear fresh(40, 7, true, c, g4);
  fresh.eval();
  CHECK(fresh(x).to_vector() != ya);
}

TEST_CASE("realistic_weights() reads the weights back through the noisy tiles") {
  // Default forward IO (out_noise 0.06, 7/9-bit converters) on a mapped layer
  // with weight scaling: the least-squares read (10*in samples per tile) is
  // close to the exact weights (RMS error < 0.02 of weights ~U(+-0.2)) but
  // not equal to them; exact tiles read back exactly.
  InferenceRPUConfig c;
  c.mapping.max_input_size = 16;
  c.mapping.weight_scaling_omega = 1.0f;
  Generator g(61);
  AnalogLinear layer(40, 6, false, c, g);
  layer.set_weights(Generator(62).uniform({6, 40}, -0.2, 0.2));
  const auto exact = layer.get_weights().to_vector();
  const auto read = layer.realistic_weights().to_vector();
  double se = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) se += (read[i] - exact[i]) * (read[i] - exact[i]);
  const double rms = std::sqrt(se / exact.size());
  CHECK(rms < 0.02);
  CHECK(rms > 1e-5);
  Generator g2(63);
  AnalogLinear perfect(40, 6, false, FloatingPointRPUConfig{}, g2);
  CHECK(max_abs_diff(perfect.realistic_weights(), perfect.get_weights()) < 1e-5);
}
