// Analog layers on tiles: exact tiles equal the digital layers, mapped layers
// equal unmapped ones (REFERENCE.md section 7), default IO noise reaches the
// output, and results do not depend on the thread count. Analog convolutions
// equal the digital ones; convert_to_analog / convert_to_digital round-trip models.
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

namespace {

// Perfect forward and backward IO with the given tile sizes.
RPUConfig perfect_config(int max_in, int max_out) {
  InferenceRPUConfig c;
  c.forward.is_perfect = true;
  c.backward.is_perfect = true;
  c.mapping.max_input_size = max_in;
  c.mapping.max_output_size = max_out;
  return c;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

}  // namespace

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

TEST_CASE("a noisy mapped AnalogLinear gives the same bits for 1, 2 and 8 threads and a fixed seed") {
  InferenceRPUConfig c;
  c.mapping.max_input_size = 64;
  c.mapping.max_output_size = 32;
  std::vector<float> reference;
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    Generator gen(21);
    AnalogLinear layer(200, 70, true, c, gen);
    Tensor x = Generator(22).normal({33, 200}).set_requires_grad();
    Tensor y = layer(x);
    sum(y).backward();
    auto v = y.to_vector();
    auto gx = x.grad().to_vector();
    v.insert(v.end(), gx.begin(), gx.end());
    if (threads == 1) reference = v;
    else CHECK(v == reference);
  }
  set_num_threads(0);
}

TEST_CASE("AnalogLinear rejects configs it cannot run yet and wrong input shapes") {
  Generator gen(3);
  InferenceRPUConfig c;
  c.mapping.weight_scaling_lr_compensation = true;  // clip is not wired yet
  CHECK_THROWS_AS(AnalogLinear(4, 3, true, c, gen), ConfigError);
  CHECK_THROWS_AS(AnalogLinear(4, 3, true, TorchInferenceRPUConfig{}, gen), ConfigError);
  AnalogLinear ok(4, 3, true, InferenceRPUConfig{}, gen);
  CHECK_THROWS_AS(ok(Tensor::zeros({2, 5})), ShapeError);
}

// ---- AnalogConv1d/2d/3d and model conversion ----

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
void check_conv_matches_digital(ConvNd& digital, const RPUConfig& rpu_config, const Shape& x_shape) {
  Generator gen(31);
  auto analog = AnalogConvNd::from_digital(digital, rpu_config, gen);
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

TEST_CASE("mapped AnalogConv2d (3x3 kernels, max_input_size 20: 2 channels per tile) equals Conv2d") {
  Generator gen(40);
  SECTION("5 -> 4 channels, max_output_size 3: 3 x 2 tiles, inputs [18, 18, 9]") {
    Conv2d d(5, 4, 3, gen, ConvOptions{.padding = 1});
    Generator g(41);
    auto a = AnalogConvNd::from_digital(d, perfect_config(20, 3), g);
    REQUIRE(a->analog_cores().size() == 1);
    CHECK(a->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>{18, 18, 9});
    CHECK(a->analog_cores()[0].tile_array().grid().out_pieces == std::vector<std::int64_t>{2, 2});
    CHECK(a->analog_tiles().size() == 6);
    check_conv_matches_digital(d, perfect_config(20, 3), {2, 5, 6, 6});
  }
  SECTION("groups 2 (3 channels per group: tiles [18, 9]), tile parameters named g{group}_tile_{r}_{c}") {
    Conv2d d(6, 4, 3, gen, ConvOptions{.stride = 2, .groups = 2});
    Generator g(42);
    auto a = AnalogConvNd::from_digital(d, perfect_config(20, 0), g);
    REQUIRE(a->analog_cores().size() == 2);
    CHECK(a->analog_cores()[1].tile_array().grid().in_pieces == std::vector<std::int64_t>{18, 9});
    std::vector<std::string> names;
    for (const auto& [name, t] : a->named_parameters()) names.push_back(name);
    CHECK(names == std::vector<std::string>{"g0_tile_0_0", "g0_tile_0_1", "g1_tile_0_0", "g1_tile_0_1", "bias"});
    // Every tile has its own id (its own noise streams).
    std::vector<std::uint64_t> ids;
    for (AnalogTile* t : a->analog_tiles()) ids.push_back(t->tile_id());
    CHECK(ids == std::vector<std::uint64_t>{0, 1, 2, 3});
    check_conv_matches_digital(d, perfect_config(20, 0), {2, 6, 7, 7});
  }
}

TEST_CASE("AnalogConvNd: tile size, type name, config, set_weights and argument errors") {
  Generator gen(50);
  const RPUConfig exact = FloatingPointRPUConfig{};
  AnalogConv2d grouped(6, 4, {3, 2}, exact, gen, ConvOptions{.groups = 2});
  CHECK(grouped.get_tile_size() == 3 * 6);
  CHECK(grouped.type_name() == "AnalogConv2d");
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
  // One channel's 3x3 kernel (9 weights) does not fit a tile of 8 inputs.
  CHECK_THROWS_AS(AnalogConv2d(2, 2, 3, perfect_config(8, 0), gen), ConfigError);
  Conv2d digital(2, 2, 3, gen);
  CHECK_THROWS_AS(AnalogConvNd::from_digital(digital, perfect_config(8, 0), gen), ConfigError);
  CHECK_THROWS_AS(grouped(Tensor::zeros({1, 5, 6, 6})), ShapeError);
}

TEST_CASE("a noisy AnalogConv2d gives the same bits for 1, 2 and 8 threads") {
  InferenceRPUConfig c;
  c.mapping.max_input_size = 40;  // 4 channels of 3x3 per tile
  std::vector<float> reference;
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    Generator gen(60);
    AnalogConv2d layer(10, 6, 3, c, gen, ConvOptions{.padding = 1, .groups = 2});
    Tensor x = Generator(61).normal({3, 10, 8, 8}).set_requires_grad();
    Tensor y = layer(x);
    sum(y).backward();
    auto v = y.to_vector();
    auto gx = x.grad().to_vector();
    v.insert(v.end(), gx.begin(), gx.end());
    if (threads == 1) reference = v;
    else CHECK(v == reference);
  }
  set_num_threads(0);
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
  convert_to_analog(lenet, FloatingPointRPUConfig{}, g1, {"0", "9"});
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
  convert_to_analog(net, FloatingPointRPUConfig{}, g2, {"1.conv2"});
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

bool has_name(const NamedTensors& list, const std::string& name) {
  for (const auto& [n, t] : list)
    if (n == name) return true;
  return false;
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
  std::vector<float> reference;
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    Generator gen(261);
    AnalogLinear layer(200, 70, true, c, gen);
    Tensor x = Generator(262).normal({33, 200}).set_requires_grad();
    Tensor y = layer(x);
    sum(y).backward();
    auto v = y.to_vector();
    auto gx = x.grad().to_vector();
    v.insert(v.end(), gx.begin(), gx.end());
    v.push_back(layer.analog_core().input_ranges()[2].grad().item());
    if (threads == 1) reference = v;
    else CHECK(v == reference);
  }
  set_num_threads(0);
}

TEST_CASE("a noisy layer's state dict restores its noise streams: the next outputs match exactly") {
  InferenceRPUConfig c;  // default forward noise
  c.mapping.max_input_size = 16;
  Generator g1(51);
  AnalogLinear a(40, 7, true, c, g1);
  Tensor x = Generator(52).normal({5, 40});
  a.eval();
  (void)a(x);  // advance the noise streams
  const NamedTensors saved = a.state_dict();
  bool has_state = false;
  for (const auto& [name, t] : saved) has_state = has_state || name == "tile_0_0_state";
  CHECK(has_state);
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
