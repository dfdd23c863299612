// AnalogConv1d/2d/3d and convert_to_analog / convert_to_digital.
#include <catch2/catch.hpp>
#include <cmath>

#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/storage.h"
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

double max_abs(const Tensor& a) {
  double m = 0;
  for (float v : a.to_vector()) m = std::max(m, std::abs(double(v)));
  return m;
}

// The gradient of an analog conv's weights [C_out, C_in/groups, *kernel],
// assembled from its tiles' gradients like get_weights assembles the weights.
Tensor analog_conv_weight_grad(AnalogConvNd& layer) {
  Tensor w = layer.get_weights();
  Tensor g = Tensor::zeros({layer.out_channels(), layer.get_tile_size()});
  const std::int64_t per_group = layer.out_channels() / layer.geometry().groups;
  for (std::size_t k = 0; k < layer.analog_cores().size(); ++k) {
    const TileArray& tiles = layer.analog_cores()[k].tile_array();
    const TileGrid& grid = tiles.grid();
    for (std::int64_t r = 0; r < tiles.rows(); ++r)
      for (std::int64_t c = 0; c < tiles.columns(); ++c) {
        const std::int64_t row0 = std::int64_t(k) * per_group + grid.out_offsets[r];
        g.slice(0, row0, row0 + grid.out_pieces[r])
            .slice(1, grid.in_offsets[c], grid.in_offsets[c] + grid.in_pieces[c])
            .copy_(tiles.tile(r, c).weight().grad());
      }
  }
  return g.reshape(w.shape());
}

// Checks an analog copy of `digital` against it on one input: forward to
// 1e-5, gradients w.r.t. x, weights and bias to 1e-4 relative.
// channel_split: the Mapped form.
void check_conv_matches_digital(ConvNd& digital, const RPUConfig& rpu_config, const Shape& x_shape,
                                bool channel_split = false) {
  Generator gen(31);
  auto analog = AnalogConvNd::from_digital(digital, rpu_config, gen, false, channel_split);
  CHECK(max_abs_diff(analog->get_weights(), digital.weight()) == 0);
  Tensor x = Generator(32).normal(x_shape);
  Tensor xd = x.clone().set_requires_grad(), xa = x.clone().set_requires_grad();
  Tensor yd = digital(xd), ya = (*analog)(xa);
  REQUIRE(ya.shape() == yd.shape());
  CHECK(max_abs_diff(yd, ya) < 1e-5);
  Tensor w = Generator(33).normal(yd.shape());
  digital.zero_grad();
  sum(mul(yd, w)).backward();
  sum(mul(ya, w)).backward();
  CHECK(max_abs_diff(xd.grad(), xa.grad()) <= 1e-4 * max_abs(xd.grad()));
  CHECK(max_abs_diff(digital.weight().grad(), analog_conv_weight_grad(*analog)) <=
        1e-4 * max_abs(digital.weight().grad()));
  if (digital.bias().defined())
    CHECK(max_abs_diff(digital.bias().grad(), analog->get_bias().grad()) <= 1e-4 * max_abs(digital.bias().grad()));
}

std::vector<std::string> child_types(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, child] : m.named_children()) out.push_back(child->type_name());
  return out;
}

}  // namespace

TEST_CASE("AnalogConvNd with exact tiles equals ConvNd: forward and gradients") {
  Generator gen(30);
  const RPUConfig exact = FloatingPointRPUConfig{};
  SECTION("2-D plain") {
    Conv2d d(3, 4, 3, gen);
    check_conv_matches_digital(d, exact, {2, 3, 7, 6});
  }
  SECTION("2-D stride 2, padding 1, dilation 2, kernel {3, 2}, no bias") {
    Conv2d d(3, 5, {3, 2}, gen, ConvOptions{.stride = 2, .padding = 1, .dilation = 2, .bias = false});
    check_conv_matches_digital(d, exact, {2, 3, 9, 8});
  }
  SECTION("2-D groups 2") {
    Conv2d d(4, 6, 3, gen, ConvOptions{.padding = 1, .groups = 2});
    check_conv_matches_digital(d, exact, {2, 4, 5, 5});
  }
  SECTION("2-D depthwise (groups = C_in = 4, channel multiplier 2)") {
    Conv2d d(4, 8, 3, gen, ConvOptions{.stride = 2, .padding = 1, .groups = 4});
    check_conv_matches_digital(d, exact, {3, 4, 6, 7});
  }
  SECTION("1-D stride 2, padding 1, dilation 2") {
    Conv1d d(3, 5, 3, gen, ConvOptions{.stride = 2, .padding = 1, .dilation = 2});
    check_conv_matches_digital(d, exact, {2, 3, 11});
  }
  SECTION("3-D kernel {2, 3, 2}, stride {1, 2, 1}, padding 1") {
    Conv3d d(2, 3, {2, 3, 2}, gen, ConvOptions{.stride = {1, 2, 1}, .padding = 1});
    check_conv_matches_digital(d, exact, {2, 2, 4, 5, 3});
  }
}

// aihwkit's known split (conv_mapped docs): Conv2d(21, 8, 5), 525 inputs,
// max_input_size 512: AnalogConv2d splits by element [263, 262],
// AnalogConv2dMapped by whole channels of 25 weights (20 a tile) [275, 250].
TEST_CASE("plain convolutions split their tiles by element, Mapped ones by whole input channels") {
  Generator gen(39);
  Conv2d d(21, 8, 5, gen);
  InferenceRPUConfig c;
  Generator g1(1), g2(1);
  auto plain = AnalogConvNd::from_digital(d, c, g1);
  auto mapped = AnalogConvNd::from_digital(d, c, g2, false, /*channel_split=*/true);
  CHECK(plain->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>{263, 262});
  CHECK(mapped->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>{275, 250});
  CHECK(plain->type_name() == "AnalogConv2d");
  CHECK(mapped->type_name() == "AnalogConv2dMapped");
  CHECK(AnalogConv1dMapped(2, 2, 3, c, gen).type_name() == "AnalogConv1dMapped");
  CHECK(AnalogConv3dMapped(2, 2, 3, c, gen).channel_split());
  // convert_to_analog makes the plain classes, convert_to_analog_mapped the Mapped ones.
  auto model = std::make_shared<Sequential>();
  model->add(std::make_shared<Conv2d>(21, 8, 5, gen));
  auto model_mapped = std::make_shared<Sequential>();
  model_mapped->add(std::make_shared<Conv2d>(21, 8, 5, gen));
  Generator g3(3), g4(3);
  convert_to_analog(model, c, g3);
  convert_to_analog_mapped(model_mapped, c, g4);
  CHECK(model->named_children()[0].second->type_name() == "AnalogConv2d");
  CHECK(model_mapped->named_children()[0].second->type_name() == "AnalogConv2dMapped");
  // A plain layer with perfect IO on element-split tiles still equals the digital one.
  SECTION("5 -> 4 channels of 3x3, max sizes 20/3: inputs [15, 15, 15]") {
    Conv2d small(5, 4, 3, gen, ConvOptions{.padding = 1});
    Generator g(41);
    auto a = AnalogConvNd::from_digital(small, perfect_config(20, 3), g);
    CHECK(a->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>{15, 15, 15});
    check_conv_matches_digital(small, perfect_config(20, 3), {2, 5, 6, 6});
  }
}

TEST_CASE("mapped AnalogConv2d (3x3 kernels, max_input_size 20: 2 channels per tile) equals Conv2d") {
  Generator gen(40);
  SECTION("5 -> 4 channels, max_output_size 3: 3 x 2 tiles, inputs [18, 18, 9]") {
    Conv2d d(5, 4, 3, gen, ConvOptions{.padding = 1});
    Generator g(41);
    auto a = AnalogConvNd::from_digital(d, perfect_config(20, 3), g, false, true);
    REQUIRE(a->analog_cores().size() == 1);
    CHECK(a->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>{18, 18, 9});
    CHECK(a->analog_cores()[0].tile_array().grid().out_pieces == std::vector<std::int64_t>{2, 2});
    CHECK(a->analog_tiles().size() == 6);
    check_conv_matches_digital(d, perfect_config(20, 3), {2, 5, 6, 6}, true);
  }
  SECTION("groups 2 (3 channels per group: tiles [18, 9]), tile parameters named g{group}_tile_{r}_{c}") {
    Conv2d d(6, 4, 3, gen, ConvOptions{.stride = 2, .groups = 2});
    Generator g(42);
    auto a = AnalogConvNd::from_digital(d, perfect_config(20, 0), g, false, true);
    REQUIRE(a->analog_cores().size() == 2);
    CHECK(a->analog_cores()[1].tile_array().grid().in_pieces == std::vector<std::int64_t>{18, 9});
    std::vector<std::string> names;
    for (const auto& [name, t] : a->named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"g0_tile_0_0", "g0_tile_0_1", "g1_tile_0_0", "g1_tile_0_1", "bias"});
    // Every tile has its own id (its own noise streams).
    std::vector<std::uint64_t> ids;
    for (AnalogTile* t : a->analog_tiles()) ids.push_back(t->tile_id());
    CHECK(ids == std::vector<std::uint64_t>{0, 1, 2, 3});
    check_conv_matches_digital(d, perfect_config(20, 0), {2, 6, 7, 7}, true);
  }
}

TEST_CASE("AnalogConvNd: tile size, type name, config, set_weights and argument errors") {
  Generator gen(50);
  const RPUConfig exact = FloatingPointRPUConfig{};
  AnalogConv2d grouped(6, 4, {3, 2}, exact, gen, ConvOptions{.groups = 2});
  CHECK(grouped.get_tile_size() == 3 * 6);
  CHECK(grouped.type_name() == "AnalogConv2d");
  CHECK(grouped.analog_tile_class() == AnalogTileClass::FloatingPoint);
  CHECK(AnalogConv2d(2, 2, 3, InferenceRPUConfig{}, gen).analog_tile_class() == AnalogTileClass::Inference);
  CHECK(grouped.config()["groups"] == 2);
  CHECK(grouped.config()["rpu_config"]["family"] == "FloatingPointRPUConfig");
  CHECK(grouped.get_weights().shape() == Shape{4, 3, 3, 2});
  AnalogConv2d depthwise(4, 8, 3, exact, gen, ConvOptions{.groups = 4});
  CHECK(depthwise.get_tile_size() == 9);
  CHECK(depthwise.analog_cores().size() == 4);
  AnalogConv3d conv3(2, 3, {2, 3, 2}, exact, gen);
  CHECK(conv3.get_tile_size() == 24);
  CHECK(conv3.type_name() == "AnalogConv3d");
  AnalogConv1d conv1(3, 2, 5, exact, gen, ConvOptions{.bias = false});
  CHECK(conv1.type_name() == "AnalogConv1d");
  CHECK_FALSE(conv1.get_bias().defined());

  // set_weights / get_weights round trip, bias included.
  Tensor w = Generator(51).normal({4, 3, 3, 2}), b = Generator(52).normal({4});
  grouped.set_weights(w, b);
  CHECK(max_abs_diff(grouped.get_weights(), w) == 0);
  CHECK(max_abs_diff(grouped.get_bias(), b) == 0);
  CHECK_THROWS_AS(grouped.set_weights(Generator(53).normal({4, 6, 3, 2})), ShapeError);
  CHECK_THROWS_AS(conv1.set_weights(Tensor::zeros({2, 3, 5}), Tensor::zeros({2})), ValueError);

  CHECK_THROWS_AS(AnalogConv2d(2, 2, 3, exact, gen, ConvOptions{.padding_mode = "reflect"}), ConfigError);
  CHECK_THROWS_AS(AnalogConv2d(3, 2, 3, exact, gen, ConvOptions{.groups = 2}), ConfigError);
  // Mapped: one channel's 3x3 kernel (9 weights) does not fit a tile of 8
  // inputs; the plain class splits the 18 inputs by element ([6, 6, 6]).
  CHECK_THROWS_AS(AnalogConv2dMapped(2, 2, 3, perfect_config(8, 0), gen), ConfigError);
  Conv2d digital(2, 2, 3, gen);
  CHECK_THROWS_AS(AnalogConvNd::from_digital(digital, perfect_config(8, 0), gen, false, true), ConfigError);
  CHECK(AnalogConvNd::from_digital(digital, perfect_config(8, 0), gen)->analog_cores()[0].tile_array().grid().in_pieces ==
        std::vector<std::int64_t>{6, 6, 6});
  CHECK_THROWS_AS(grouped(Tensor::zeros({1, 5, 6, 6})), ShapeError);
}

TEST_CASE("a noisy AnalogConv2d gives the same bits for 1, 2 and 8 threads") {
  InferenceRPUConfig c;
  c.mapping.max_input_size = 40;  // 4 channels of 3x3 per tile
  check_same_bits_for_thread_counts([&] {
    Generator gen(60);
    AnalogConv2d layer(10, 6, 3, c, gen, ConvOptions{.padding = 1, .groups = 2});
    return output_and_input_grad(layer, Generator(61).normal({3, 10, 8, 8}).set_requires_grad());
  });
}

TEST_CASE("convert_to_analog(lenet5) converts 2 convs and 3 linears; exact tiles give the same logits") {
  Generator gen(70);
  auto model = build_model("lenet5", gen);
  Tensor x = Generator(71).normal({4, 1, 28, 28});
  Tensor digital_logits = (*model)(x);
  const NamedTensors digital_state = [&] {
    NamedTensors s;
    for (auto& [name, t] : model->state_dict()) s.emplace_back(name, t.clone());
    return s;
  }();

  Generator conv_gen(72);
  auto converted = convert_to_analog(model, FloatingPointRPUConfig{}, conv_gen);
  CHECK(converted == model);  // converted in place
  const std::vector<std::string> analog_types{"AnalogConv2d", "ReLU", "MaxPool2d", "AnalogConv2d", "ReLU",
                                              "MaxPool2d", "Flatten", "AnalogLinear", "ReLU", "AnalogLinear",
                                              "ReLU", "AnalogLinear"};
  CHECK(child_types(*model) == analog_types);
  Tensor analog_logits = (*model)(x);
  CHECK(max_abs_diff(analog_logits, digital_logits) <= 1e-4);
  // The forward pass runs the new layers: their tiles receive gradients.
  sum(analog_logits).backward();
  for (std::size_t i : {0, 3}) {
    auto* conv = dynamic_cast<AnalogConvNd*>((*model)[i].get());
    REQUIRE(conv != nullptr);
    CHECK(conv->analog_tiles()[0]->weight().grad().defined());
  }
  CHECK(dynamic_cast<AnalogLinear&>(*(*model)[11]).analog_tiles()[0]->weight().grad().defined());

  // Back to digital: the exact weights, under the same names.
  Generator back_gen(73);
  auto digital = convert_to_digital(model, back_gen);
  CHECK(child_types(*digital)[0] == "Conv2d");
  CHECK(child_types(*digital)[11] == "Linear");
  const NamedTensors round_trip = digital->state_dict();
  REQUIRE(round_trip.size() == digital_state.size());
  for (std::size_t i = 0; i < round_trip.size(); ++i) {
    CHECK(round_trip[i].first == digital_state[i].first);
    CHECK(max_abs_diff(round_trip[i].second, digital_state[i].second) == 0);
  }
  CHECK(max_abs_diff((*digital)(x), digital_logits) == 0);
}

TEST_CASE("convert_to_analog keeps excluded layers digital, walks nested modules, converts a bare layer") {
  Generator gen(80);
  auto lenet = build_model("lenet5", gen);
  Generator g1(81);
  convert_to_analog(lenet, FloatingPointRPUConfig{}, g1, std::vector<std::string>{"0", "9"});
  const auto types = child_types(*lenet);
  CHECK(types[0] == "Conv2d");
  CHECK(types[3] == "AnalogConv2d");
  CHECK(types[7] == "AnalogLinear");
  CHECK(types[9] == "Linear");
  CHECK(types[11] == "AnalogLinear");

  // Nested: a BasicBlock with a conv shortcut; "1.conv2" stays digital.
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(2, 4, 3, gen, ConvOptions{.padding = 1}));
  net->add(std::make_shared<BasicBlock>(4, 8, 2, gen));
  net->eval();
  Tensor x = Generator(82).normal({2, 2, 8, 8});
  Tensor y_digital = (*net)(x);
  Generator g2(83);
  convert_to_analog(net, FloatingPointRPUConfig{}, g2, std::vector<std::string>{"1.conv2"});
  std::vector<std::string> converted;
  for (const auto& [name, t] : net->named_parameters())
    if (name.find("tile_") != std::string::npos) converted.push_back(name);
  CHECK(converted == std::vector<std::string>{"0.g0_tile_0_0", "1.conv1.g0_tile_0_0", "1.shortcut.0.g0_tile_0_0"});
  Tensor y_analog = (*net)(x);
  CHECK(max_abs_diff(y_analog, y_digital) <= 1e-4);
  sum(y_analog).backward();  // the block's forward runs the replaced convs
  for (const auto& [name, t] : net->named_parameters())
    if (name.find("tile_") != std::string::npos) CHECK(t.grad().defined());
  CHECK_FALSE(net->is_training());
  CHECK_FALSE((*net)[0]->is_training());  // the converted layer keeps eval mode

  // A bare layer is returned converted.
  Generator g3(84);
  auto bare = convert_to_analog(std::make_shared<Linear>(5, 3, true, gen), FloatingPointRPUConfig{}, g3);
  CHECK(bare->type_name() == "AnalogLinear");
  Generator g4(85);
  CHECK(convert_to_digital(bare, g4)->type_name() == "Linear");
}

// ---- AnalogCore periphery: input range, weight scaling, learned out scaling

TEST_CASE("AnalogConv2d realistic_weights(): exact tiles read back exactly, noisy tiles closely") {
  Generator g(71);
  AnalogConv2d exact_layer(4, 6, 3, FloatingPointRPUConfig{}, g, ConvOptions{.groups = 2});
  CHECK(max_abs_diff(exact_layer.realistic_weights(), exact_layer.get_weights()) < 1e-5);
  Generator g2(72);
  AnalogConv2d noisy(4, 6, 3, InferenceRPUConfig{}, g2);
  const auto exact = noisy.get_weights().to_vector();
  const auto read = noisy.realistic_weights().to_vector();
  double se = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) se += (read[i] - exact[i]) * (read[i] - exact[i]);
  // Weights ~U(+-1/6); out_noise 0.06 over 360 read samples: RMS error ~0.005.
  CHECK(std::sqrt(se / exact.size()) < 0.02);
}

TEST_CASE("use_indexed: eval runs a few images at a time with the same noise-free result and less memory") {
  Generator gen(301);
  Conv2d digital(3, 8, 3, gen, ConvOptions{.padding = {1, 1}});
  Generator g1(302), g2(302);
  auto explicit_layer = AnalogConvNd::from_digital(digital, perfect_config(0, 0), g1);
  auto indexed = AnalogConvNd::from_digital(digital, perfect_config(0, 0), g2);
  CHECK_FALSE(indexed->use_indexed());  // explicit by default on the CPU
  // 27 inputs x 256 patches per image: at most 2 images per chunk.
  indexed->set_use_indexed(true, 2 * 27 * 256);
  CHECK(indexed->use_indexed());
  CHECK(indexed->config()["use_indexed"] == true);
  explicit_layer->eval();
  indexed->eval();
  Generator data(303);
  const Tensor x = data.normal({10, 3, 16, 16});
  NoGradGuard no_grad;
  Storage::reset_peak_cpu_bytes();
  const std::size_t base = Storage::live_cpu_bytes();
  const Tensor y_explicit = (*explicit_layer)(x);
  const std::size_t peak_explicit = Storage::peak_cpu_bytes() - base;
  Storage::reset_peak_cpu_bytes();
  const std::size_t base2 = Storage::live_cpu_bytes();
  const Tensor y_indexed = (*indexed)(x);
  const std::size_t peak_indexed = Storage::peak_cpu_bytes() - base2;
  CHECK(y_indexed.shape() == y_explicit.shape());
  CHECK(max_abs_diff(y_indexed, y_explicit) < 1e-6);
  // The explicit path holds all 10 images' patches (10·256·27 floats) at once.
  CHECK(peak_explicit >= std::size_t(10 * 256 * 27 * 4));
  CHECK(peak_indexed < peak_explicit / 2);
  CHECK_THROWS_AS(indexed->set_use_indexed(true, 0), ValueError);
}

TEST_CASE("use_indexed with noisy tiles: deterministic, same output statistics, training unchanged") {
  Generator gen(311);
  Conv2d digital(2, 4, 3, gen);
  InferenceRPUConfig noisy;  // default forward: output noise 0.06
  Generator g1(312), g2(312), g3(312);
  auto a = AnalogConvNd::from_digital(digital, noisy, g1);
  auto b = AnalogConvNd::from_digital(digital, noisy, g2);
  auto c = AnalogConvNd::from_digital(digital, noisy, g3);
  b->set_use_indexed(true, 18 * 36);  // one image per chunk
  c->set_use_indexed(true, 18 * 36);
  Generator data(313);
  const Tensor x = data.normal({16, 2, 8, 8});
  // Training mode always unfolds the whole batch: identical bits.
  CHECK(max_abs_diff((*a)(x), (*b)(x)) == 0.0);
  (void)(*c)(x);  // the same streams as b so far
  a->eval();
  b->eval();
  c->eval();
  const Tensor yb = (*b)(x), yc = (*c)(x);
  CHECK(max_abs_diff(yb, yc) == 0.0);
  // Noise-free reference: the digital conv; both paths deviate by the same noise level.
  const Tensor ref = digital(x);
  auto rms = [&](const Tensor& y) {
    double s = 0;
    const auto u = y.to_vector(), v = ref.to_vector();
    for (std::size_t i = 0; i < u.size(); ++i) s += (u[i] - v[i]) * (u[i] - v[i]);
    return std::sqrt(s / double(u.size()));
  };
  const double e_explicit = rms((*a)(x)), e_indexed = rms(yb);
  CHECK(e_indexed > 0.0);
  // 16·4·36 = 2304 outputs each: the two rms agree within ~10 % (std error ~1.5 % each).
  CHECK(e_indexed == Approx(e_explicit).epsilon(0.1));
}
