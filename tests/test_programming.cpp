// Programming and drift of analog layers (REFERENCE.md section 5): the drift
// law and drift compensation known answers, realistic set_weights, eval-mode
// rules, new chips (reseed), thread independence, and that a programmed model
// saved and loaded gives exactly the same outputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <filesystem>
#include <unistd.h>

#include "analog_test_util.h"
#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/safetensors.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/linear.h"

using namespace aimc;
using nlohmann::json;

namespace {

// No programming or read noise, ν = 0.1 for every device.
json fixed_drift_model() {
  return {{"type", "GenericNoiseModel"},
          {"prog_noise_scale", 0},
          {"read_noise_scale", 0},
          {"drift_mean", {{"coeff", {0.1, 0.0}}, {"min", 0.1}, {"max", 0.1}}},
          {"drift_std", {{"coeff", {0.0, 0.0}}, {"min", 0}, {"max", 0}}}};
}

InferenceRPUConfig perfect_io(json noise_model, json compensation) {
  InferenceRPUConfig c;
  c.forward.is_perfect = true;
  c.noise_model = std::move(noise_model);
  c.drift_compensation = std::move(compensation);
  return c;
}

std::shared_ptr<AnalogLinear> layer(const RPUConfig& config, std::int64_t in = 20, std::int64_t out = 6,
                                    std::uint64_t seed = 1) {
  Generator gen(seed);
  auto l = std::make_shared<AnalogLinear>(in, out, true, config, gen);
  l->eval();
  return l;
}

Tensor input(std::int64_t n, std::int64_t in, std::uint64_t seed = 2) {
  Generator gen(seed);
  return gen.normal({n, in});
}

double max_relative_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double m = 0, scale = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    m = std::max(m, std::abs(double(x[i]) - double(y[i])));
    scale = std::max(scale, std::abs(double(y[i])));
  }
  return m / scale;
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("aimc_test_programming_" + std::to_string(::getpid()) + "_" + name))
                 .string()) {}
  ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE("Drift compensation known answer: fixed nu = 0.1, no noise, t = 1000 s", "[programming]") {
  const Tensor x = input(16, 20);
  SECTION("uncompensated outputs drift by (1020/20)^-0.1 = 0.6749") {
    auto l = layer(perfect_io(fixed_drift_model(), nullptr));
    const Tensor bias = l->get_bias().detach().clone();
    l->drift_analog_weights(0.0);
    const Tensor y0 = sub(l->forward(x), bias);
    l->drift_analog_weights(1000.0);
    const Tensor y1 = sub(l->forward(x), bias);
    CHECK(std::pow(1020.0 / 20.0, -0.1) == Approx(0.6749).epsilon(1e-4));
    CHECK(max_relative_diff(y1, mul_scalar(y0, std::pow(1020.0 / 20.0, -0.1))) < 1e-5);
    // The programmed weights are the exact ones at t = 0 (converter round trip).
    CHECK(test::max_abs_diff(l->forward(x), l->forward(x)) == 0.0);
  }
  for (const char* type : {"GlobalDriftCompensation", "PerColumnDriftCompensation"}) {
    SECTION(std::string(type) + ": the compensated output at 1000 s equals the output at 0") {
      auto l = layer(perfect_io(fixed_drift_model(), json{{"type", type}}));
      l->drift_analog_weights(0.0);
      const Tensor y0 = l->forward(x);
      l->drift_analog_weights(1000.0);
      CHECK(max_relative_diff(l->forward(x), y0) < 1e-5);
      const Tensor& alpha = l->analog_tiles()[0]->programming()->alpha();
      CHECK(alpha.numel() == (std::string(type) == "GlobalDriftCompensation" ? 1 : 6));
      for (float a : alpha.to_vector()) CHECK(a == Approx(1.0 / 0.67489).epsilon(1e-4));
    }
  }
  SECTION("exact reference: the baseline comes from the target weights") {
    json pcm_prog_only = {{"type", "PCMLikeNoiseModel"}, {"read_noise_scale", 0}};
    auto l = layer(perfect_io(pcm_prog_only, json{{"type", "GlobalDriftCompensationWithExactReference"}}), 40, 30);
    const Tensor w = l->get_weights();
    l->program_analog_weights();  // alpha = 1 until the first drift
    l->drift_analog_weights(0.0);
    // Compensated mean |output| over the identity batch = mean |W_target|.
    Tensor eye = Tensor::zeros({40, 40});
    for (int i = 0; i < 40; ++i) eye.data<float>()[i * 41] = 1.f;
    const Tensor y = sub(l->forward(eye), l->get_bias().detach());
    double mean_y = 0, mean_w = 0;
    for (float v : y.to_vector()) mean_y += std::abs(v);
    for (float v : w.to_vector()) mean_w += std::abs(v);
    CHECK(mean_y == Approx(mean_w).epsilon(1e-5));
    CHECK(max_relative_diff(y, transpose(w, 0, 1).contiguous()) > 1e-3);  // programming noise is there
  }
}

TEST_CASE("Programming follows the noise model and forgets itself when the weights change", "[programming]") {
  InferenceRPUConfig config;  // PCM, global compensation, default forward noise
  auto l = layer(config, 64, 32);
  const Tensor w = l->get_weights();
  const Tensor x = input(8, 64);
  AnalogTile& tile = *l->analog_tiles()[0];
  CHECK_FALSE(tile.programmed());
  SECTION("eval mode only") {
    l->train();
    CHECK_THROWS_AS(l->program_analog_weights(), ValueError);
    CHECK_THROWS_AS(l->drift_analog_weights(10.0), ValueError);
    l->eval();
    CHECK_THROWS_AS(l->drift_analog_weights(-1.0), ValueError);
  }
  SECTION("drift programs first; read noise is redrawn at every drift") {
    l->drift_analog_weights(3600.0);
    CHECK(tile.programmed());
    const auto g1 = tile.programming()->buffers()[2].second.to_vector();  // w_read
    l->drift_analog_weights(3600.0);
    const auto g2 = tile.programming()->buffers()[2].second.to_vector();
    CHECK(g1 != g2);
    // Programming noise on 25 µS-scale conductances: a few % of max|W| on each weight.
    const Tensor diff = sub(Tensor::from_vector(g2, {32, 64}), tile.weight().detach());
    double rms = 0;
    for (float v : diff.to_vector()) rms += v * v;
    rms = std::sqrt(rms / diff.numel());
    double w_max = 0;
    for (float v : tile.weight().detach().to_vector()) w_max = std::max(w_max, double(std::abs(v)));
    CHECK(rms / w_max > 0.005);
    CHECK(rms / w_max < 0.2);
  }
  SECTION("realistic_read_write: set_weights programs, get_weights reads back; force_exact and steps override") {
    l->set_realistic_read_write(true);
    l->set_weights(w, l->get_bias().detach());
    CHECK(tile.programmed());
    // The realistic read sees the programmed (noisy) weights, the exact one the target.
    CHECK(test::max_abs_diff(l->get_weights(), w) > 1e-3);
    CHECK(test::max_abs_diff(l->get_weights(/*force_exact=*/true), w) == 0.0);
    l->set_weights(w, l->get_bias().detach(), /*force_exact=*/true);
    CHECK_FALSE(tile.programmed());
    l->program_analog_weights();
    CHECK(tile.programmed());
    l->post_update_step();
    CHECK_FALSE(tile.programmed());
  }
  SECTION("reseed: the same seed gives the same chip, another seed another one") {
    auto run = [&](std::uint64_t seed) {
      l->reseed_analog(seed);
      l->drift_analog_weights(86400.0);
      return l->forward(x).to_vector();
    };
    const auto a = run(7), b = run(8), c = run(7);
    CHECK(a == c);
    CHECK(a != b);
  }
}

TEST_CASE("convert_to_analog options: realistic_read_write, conversion_map, per-layer configs, mapped", "[programming][conversion]") {
  Generator gen(21);
  auto digital = build_model("mlp", gen);  // Linear 784-256, 256-128, 128-10
  const Tensor w0 = digital->named_parameters()[0].second.detach().clone();
  SECTION("realistic_read_write programs every layer as it is written, and to_digital reads back") {
    Generator ag(22);
    ConversionOptions options;
    options.realistic_read_write = true;
    auto model = convert_to_analog(digital, InferenceRPUConfig{}, ag, options);
    const auto first_module = model->named_children()[1].second;  // kept alive across the conversion
    auto* first = dynamic_cast<AnalogLinear*>(first_module.get());
    REQUIRE(first != nullptr);
    CHECK(first->realistic_read_write());
    CHECK(first->analog_tiles()[0]->programmed());
    model->eval();
    Generator dg0(23);
    CHECK(test::max_abs_diff(first->to_digital(dg0, /*force_exact=*/true)->weight(), w0) < 1e-6);
    Generator dg(23);
    auto back = convert_to_digital(model, dg);
    const Tensor read = back->named_parameters()[0].second;
    const double err = test::max_abs_diff(read, w0);
    CHECK(err > 1e-4);  // programming and read noise
    CHECK(err < 0.5 * test::max_abs_diff(w0, Tensor::zeros(w0.shape())));
  }
  SECTION("specific_rpu_config and a conversion_map that leaves the last layer digital") {
    Generator ag(24);
    ConversionOptions options;
    std::vector<std::string> seen;
    options.specific_rpu_config = [&](const std::string& name, const Module&, const RPUConfig& c) {
      seen.push_back(name);
      RPUConfig r = c;
      if (name == "3") r = FloatingPointRPUConfig{};
      return r;
    };
    options.conversion_map["Linear"] = [](const Module& m, const RPUConfig& c, Generator& g,
                                          bool realistic) -> std::shared_ptr<Module> {
      const auto& lin = dynamic_cast<const Linear&>(m);
      if (lin.out_features() == 10) return nullptr;
      return AnalogLinear::from_digital(lin, c, g, realistic);
    };
    auto model = convert_to_analog(digital, InferenceRPUConfig{}, ag, options);
    CHECK(seen == std::vector<std::string>{"1", "3", "5"});
    CHECK(model->named_children()[1].second->type_name() == "AnalogLinear");
    CHECK(dynamic_cast<AnalogLinear&>(*model->named_children()[3].second).rpu_config().family() ==
          "FloatingPointRPUConfig");
    CHECK(model->named_children()[5].second->type_name() == "Linear");
  }
  SECTION("convert_to_analog_mapped splits by the mapping even with tile_array_class null") {
    InferenceRPUConfig c;
    c.tile_array_class = "";
    c.mapping.max_input_size = 256;
    c.mapping.max_output_size = 256;
    Generator ag(25), ag2(25);
    Generator g2(21);
    auto single = convert_to_analog(build_model("mlp", g2), c, ag);
    auto mapped = convert_to_analog_mapped(digital, c, ag2);
    CHECK(dynamic_cast<AnalogLinear&>(*single->named_children()[1].second).analog_tiles().size() == 1);
    CHECK(dynamic_cast<AnalogLinear&>(*mapped->named_children()[1].second).analog_tiles().size() == 4);
  }
}

TEST_CASE("Programming and drift give the same bits for 1, 2 and 8 threads", "[programming][determinism]") {
  // 300 x 200 weights on two devices: many parallel chunks.
  InferenceRPUConfig config;
  test::check_same_bits_for_thread_counts([&] {
    auto l = layer(config, 200, 300, 3);
    l->drift_analog_weights(86400.0);
    auto v = l->analog_tiles()[0]->programming()->buffers()[2].second.to_vector();
    const auto y = l->forward(input(4, 200)).to_vector();
    v.insert(v.end(), y.begin(), y.end());
    return v;
  });
}

TEST_CASE("A programmed model saves and loads exactly", "[programming][checkpoint]") {
  json description = model_description("mlp");
  InferenceRPUConfig config;
  config.mapping.max_input_size = 256;  // several tiles per layer
  config.mapping.max_output_size = 128;
  description["rpu_config"] = RPUConfig(config).to_json();
  description["analog_seed"] = 11;
  Generator gen(4);
  auto model = build_model_from_description(description, gen);
  model->eval();
  model->program_analog_weights();
  const Tensor x = input(8, 784).reshape({8, 1, 28, 28});
  TempFile programmed("programmed.safetensors"), drifted("drifted.safetensors");
  save_checkpoint(programmed.path, *model, description);

  // Re-evaluated at one day, the loaded chip computes what the saved one does.
  model->drift_analog_weights(86400.0);
  const auto y_saved = model->forward(x).to_vector();
  Checkpoint loaded = load_checkpoint(programmed.path);
  loaded.model->drift_analog_weights(86400.0);
  CHECK(loaded.model->forward(x).to_vector() == y_saved);

  // Saved after the drift, it continues with the same outputs and noise.
  save_checkpoint(drifted.path, *model, description);
  const auto y_next = model->forward(x).to_vector();
  Checkpoint again = load_checkpoint(drifted.path);
  CHECK(again.model->forward(x).to_vector() == y_next);

  // An unprogrammed model's checkpoint loads as unprogrammed.
  auto fresh = build_model_from_description(description, gen);
  save_checkpoint(programmed.path, *fresh, description);
  Checkpoint plain = load_checkpoint(programmed.path);
  for (const auto& [name, t] : plain.model->state_dict()) CHECK(name.find("_conductances") == std::string::npos);
}

TEST_CASE("A reseeded chip saves and loads as that chip; non-finite weights cannot be programmed",
          "[programming][checkpoint]") {
  json description = model_description("mlp");
  InferenceRPUConfig config;
  config.forward.out_noise_std = 0.1f;  // per-line values that depend on the chip seed
  description["rpu_config"] = RPUConfig(config).to_json();
  description["analog_seed"] = 5;
  Generator gen(6);
  auto model = build_model_from_description(description, gen);
  model->eval();
  model->program_analog_weights();
  model->reseed_analog(99);  // a new chip: the programming buffers stay registered and are reused
  model->program_analog_weights();
  TempFile file("reseeded.safetensors");
  save_checkpoint(file.path, *model, description);
  const Tensor x = input(4, 784).reshape({4, 1, 28, 28});
  model->drift_analog_weights(86400.0);
  const auto y = model->forward(x).to_vector();
  Checkpoint loaded = load_checkpoint(file.path);
  loaded.model->drift_analog_weights(86400.0);
  CHECK(loaded.model->forward(x).to_vector() == y);

  auto l = layer(InferenceRPUConfig{});
  Tensor w = l->get_weights();
  w.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  l->set_weights(w);
  CHECK_THROWS_AS(l->program_analog_weights(), ValueError);
}

TEST_CASE("Checkpoints from before the tile state held the seed ([4] states) still load", "[checkpoint]") {
  json description = model_description("mlp");
  description["rpu_config"] = RPUConfig(InferenceRPUConfig{}).to_json();
  description["analog_seed"] = 8;
  Generator gen(9);
  auto model = build_model_from_description(description, gen);
  TempFile file("old_state.safetensors");
  save_checkpoint(file.path, *model, description);
  SafetensorsFile f = read_safetensors(file.path);
  REQUIRE(test::has_name(f.tensors, "1.tile_0_0_seed"));
  const NamedTensors packed = test::packed_tile_states(f.tensors, 4);
  REQUIRE(test::has_name(packed, "1.tile_0_0_state"));
  write_safetensors(file.path, packed, f.metadata);
  Checkpoint old = load_checkpoint(file.path);
  const auto a = model->state_dict(), b = old.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(test::max_abs_diff(a[i].second, b[i].second) == 0.0);
}

// The two drift paths (tile_programming.h) against aihwkit 1.1.0's
// PCMLikeNoiseModel on the same tile: a 512x512 tile whose column j holds the
// level (1, 0.5, 0.1, −0.5)[j mod 4], programmed, then drifted to 1 s and to
// 1 year (default PCM model). aihwkit (apply_programming_noise then
// apply_drift_noise, torch seeds 0..2):
//   std at level 1.0 at 1 s: 0.0590, 0.0592, 0.0592
//   mean / level at 1 year: 1.0: 0.4981, 0.4980, 0.4981; 0.5: 0.4960, 0.4964,
//   0.4959; 0.1: 0.4276, 0.4271, 0.4268; −0.5: 0.4960, 0.4956, 0.4958.
// Each statistic averages 65536 weights: the std's sampling error is
// 1/sqrt(2·65536) = 0.3 % of it and the mean ratio's about 0.04/sqrt(65536)
// = 2e-4, so the bands below (1.5 % and 0.002) are several sigma wide and
// hold aihwkit's seeds. The physical path's read noise is smaller (the
// conductances are scaled by max|W_target|, not the larger max|W_prog|) and
// its small weights keep their other device's offset at that device's own
// exponent, so it must differ where the comments say.
TEST_CASE("Drift paths: reconvert_weights_before_drift reproduces aihwkit's PCM statistics", "[programming]") {
  const float levels[4] = {1.f, 0.5f, 0.1f, -0.5f};
  std::vector<float> w(512 * 512);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = levels[i % 4];
  auto run = [&](bool reconvert) {
    InferenceRPUConfig c;
    c.forward.is_perfect = true;
    c.reconvert_weights_before_drift = reconvert;
    auto l = layer(c, 512, 512, 3);
    l->set_weights(Tensor::from_vector(w, {512, 512}), l->get_bias().detach());
    AnalogTile& tile = *l->analog_tiles()[0];
    struct Stats {
      double std_1s;
      double ratio_1y[4];
    } s{};
    auto level_stats = [&](int k, double& mean, double& sd) {
      const auto v = tile.programming()->buffers()[2].second.to_vector();  // w_read
      double a = 0, a2 = 0, n = 0;
      for (std::size_t i = static_cast<std::size_t>(k); i < v.size(); i += 4) {
        a += v[i];
        a2 += double(v[i]) * v[i];
        n += 1;
      }
      mean = a / n;
      sd = std::sqrt(a2 / n - mean * mean);
    };
    double mean, sd;
    l->drift_analog_weights(1.0);
    level_stats(0, mean, sd);
    s.std_1s = sd;
    l->drift_analog_weights(365.0 * 86400.0);
    for (int k = 0; k < 4; ++k) {
      level_stats(k, mean, sd);
      s.ratio_1y[k] = mean / levels[k];
    }
    return s;
  };
  const auto ours = run(false), aihwkit = run(true);
  INFO("physical: std " << ours.std_1s << " ratios " << ours.ratio_1y[0] << " " << ours.ratio_1y[1] << " "
                        << ours.ratio_1y[2] << " " << ours.ratio_1y[3]);
  INFO("reconverted: std " << aihwkit.std_1s << " ratios " << aihwkit.ratio_1y[0] << " " << aihwkit.ratio_1y[1]
                           << " " << aihwkit.ratio_1y[2] << " " << aihwkit.ratio_1y[3]);
  CHECK(aihwkit.std_1s == Approx(0.0591).epsilon(0.015));
  CHECK(aihwkit.ratio_1y[0] == Approx(0.4981).margin(0.002));
  CHECK(aihwkit.ratio_1y[1] == Approx(0.4961).margin(0.002));
  CHECK(aihwkit.ratio_1y[2] == Approx(0.4272).margin(0.002));
  CHECK(aihwkit.ratio_1y[3] == Approx(0.4958).margin(0.002));
  // The physical path (aimc's default; measured 0.0564, ratios 0.4987 0.4973
  // 0.4345 0.4968): read noise about 4 % lower at level 1.0, and the 0.1
  // level keeps more of its value (its other device's offset drifts with
  // that device's own, smaller-g hence larger, exponent).
  CHECK(ours.std_1s == Approx(0.0565).epsilon(0.015));
  CHECK(aihwkit.std_1s / ours.std_1s > 1.025);
  CHECK(ours.ratio_1y[2] - aihwkit.ratio_1y[2] > 0.004);
  for (int k : {0, 1, 3}) CHECK(ours.ratio_1y[k] == Approx(aihwkit.ratio_1y[k]).margin(0.003));
}
