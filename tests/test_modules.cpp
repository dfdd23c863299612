// Digital modules: output shapes, forward equal to the functional ops,
// PyTorch default initialisation (bounds and spread), configuration errors,
// train/eval propagation, parameter naming, state dicts and their errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "convert/models.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/cuda/backend.h"
#include "layers/optim/sgd.h"
#include "layers/modules/activation.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/init.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"

using namespace aimc;

namespace {

Tensor random_input(const Shape& shape, std::uint64_t seed = 7) {
  Generator gen(seed, 99);
  return gen.uniform(shape, -1, 1);
}

// Mean and sample standard deviation of a tensor's values.
std::pair<double, double> mean_std(const Tensor& t) {
  const auto v = t.to_double_vector();
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / static_cast<double>(v.size() - 1))};
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.to_double_vector()) m = std::max(m, std::abs(x));
  return m;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_double_vector() == b.to_double_vector();
}

}  // namespace

TEST_CASE("every module produces the expected output shape") {
  Generator gen(1);
  CHECK(Linear(20, 7, gen)(random_input({5, 20})).shape() == Shape{5, 7});
  CHECK(Linear(20, 7, false, gen)(random_input({5, 20})).shape() == Shape{5, 7});
  CHECK(Conv1d(3, 4, 3, gen)(random_input({2, 3, 10})).shape() == Shape{2, 4, 8});
  CHECK(Conv2d(3, 4, 3, gen, {.stride = 2, .padding = 1})(random_input({2, 3, 9, 8})).shape() == Shape{2, 4, 5, 4});
  CHECK(Conv2d(3, 4, {3, 1}, gen, {.dilation = 2})(random_input({2, 3, 9, 8})).shape() == Shape{2, 4, 5, 8});
  CHECK(Conv2d(4, 6, 3, gen, {.padding = 1, .groups = 2})(random_input({1, 4, 5, 5})).shape() ==
        Shape{1, 6, 5, 5});
  CHECK(Conv3d(2, 3, 3, gen, {.padding = 1})(random_input({1, 2, 4, 5, 6})).shape() == Shape{1, 3, 4, 5, 6});
  ReLU relu_layer;
  LeakyReLU leaky(0.2);
  Sigmoid sig;
  Tanh th;
  GELU ge;
  for (Module* m : {static_cast<Module*>(&relu_layer), static_cast<Module*>(&leaky), static_cast<Module*>(&sig),
                    static_cast<Module*>(&th), static_cast<Module*>(&ge)})
    CHECK(m->forward(random_input({2, 3, 4})).shape() == Shape{2, 3, 4});
  CHECK(Flatten()(random_input({2, 3, 4, 5})).shape() == Shape{2, 60});
  CHECK(Flatten(2)(random_input({2, 3, 4, 5})).shape() == Shape{2, 3, 20});
  CHECK(MaxPool1d(2)(random_input({2, 3, 9})).shape() == Shape{2, 3, 4});
  CHECK(MaxPool2d(2)(random_input({2, 3, 9, 8})).shape() == Shape{2, 3, 4, 4});
  CHECK(MaxPool2d(3, 1, 1)(random_input({2, 3, 9, 8})).shape() == Shape{2, 3, 9, 8});
  CHECK(MaxPool3d(2)(random_input({1, 2, 4, 4, 6})).shape() == Shape{1, 2, 2, 2, 3});
  CHECK(AvgPool1d(3)(random_input({2, 3, 9})).shape() == Shape{2, 3, 3});
  CHECK(AvgPool2d(2, 1)(random_input({2, 3, 5, 5})).shape() == Shape{2, 3, 4, 4});
  CHECK(AvgPool3d(Sizes{1, 2, 2})(random_input({1, 2, 4, 4, 6})).shape() == Shape{1, 2, 4, 2, 3});
  CHECK(GlobalAvgPool()(random_input({2, 3, 5, 5})).shape() == Shape{2, 3});
  CHECK(BatchNorm1d(3)(random_input({4, 3})).shape() == Shape{4, 3});
  CHECK(BatchNorm1d(3)(random_input({4, 3, 5})).shape() == Shape{4, 3, 5});
  CHECK(BatchNorm2d(3)(random_input({4, 3, 5, 5})).shape() == Shape{4, 3, 5, 5});
  CHECK(Dropout(0.5, Generator(3))(random_input({4, 6})).shape() == Shape{4, 6});
  CHECK(BasicBlock(4, 8, 2, gen)(random_input({2, 4, 8, 8})).shape() == Shape{2, 8, 4, 4});
  CHECK(BasicBlock(4, 4, 1, gen)(random_input({2, 4, 8, 8})).shape() == Shape{2, 4, 8, 8});
}

TEST_CASE("wrong input shapes throw ShapeError naming the expected shape") {
  Generator gen(1);
  CHECK_THROWS_AS(Linear(20, 7, gen)(random_input({5, 21})), ShapeError);
  CHECK_THROWS_AS(Conv2d(3, 4, 3, gen)(random_input({2, 2, 9, 9})), ShapeError);
  CHECK_THROWS_AS(Conv2d(3, 4, 3, gen)(random_input({3, 9, 9})), ShapeError);
  CHECK_THROWS_AS(MaxPool2d(2)(random_input({3, 9, 9})), ShapeError);
  CHECK_THROWS_AS(BatchNorm2d(3)(random_input({2, 4, 5, 5})), ShapeError);
  CHECK_THROWS_WITH(Linear(20, 7, gen)(random_input({5, 21})), Catch::Contains("[*, 20]"));
}

TEST_CASE("Linear takes [*, in]: a sequence [N, T, in] is the rows of [N*T, in], forward and gradients") {
  Generator gen(2);
  Linear a(6, 4, gen);
  Generator gen2(2);
  Linear b(6, 4, gen2);
  Tensor x3 = random_input({2, 3, 6});
  Tensor x2 = reshape(x3.clone(), {6, 6});
  x3.set_requires_grad(true);
  x2.set_requires_grad(true);
  const Tensor y3 = a(x3), y2 = b(x2);
  REQUIRE(y3.shape() == Shape{2, 3, 4});
  CHECK(y3.to_vector() == y2.to_vector());
  sum(mul(y3, y3)).backward();
  sum(mul(y2, y2)).backward();
  CHECK(a.weight().grad().to_vector() == b.weight().grad().to_vector());
  CHECK(a.bias().grad().to_vector() == b.bias().grad().to_vector());
  CHECK(x3.grad().to_vector() == x2.grad().to_vector());
  CHECK(a(random_input({6})).shape() == Shape{4});
  CHECK_THROWS_AS(a(Tensor::scalar(1.0)), ShapeError);
}

TEST_CASE("Linear and Conv forward equal the functional ops bit for bit") {
  Generator gen(2);
  Linear lin(12, 5, gen);
  Tensor x = random_input({4, 12});
  CHECK(same_values(lin(x), linear(x, lin.weight(), lin.bias())));
  Linear lin_nb(12, 5, false, gen);
  CHECK(same_values(lin_nb(x), linear(x, lin_nb.weight(), Tensor())));

  Conv2d conv2(4, 6, {3, 2}, gen, {.stride = {2, 1}, .padding = {1, 0}, .dilation = 1, .groups = 2});
  Tensor xi = random_input({2, 4, 7, 6});
  CHECK(same_values(conv2(xi), conv(xi, conv2.weight(), conv2.bias(), conv2.geometry())));
  CHECK(conv2.geometry().kernel == std::vector<std::int64_t>{3, 2});
  CHECK(conv2.geometry().stride == std::vector<std::int64_t>{2, 1});
  Conv1d conv1(3, 2, 4, gen, {.bias = false});
  Tensor x1 = random_input({2, 3, 11});
  CHECK(!conv1.bias().defined());
  CHECK(same_values(conv1(x1), conv(x1, conv1.weight(), Tensor(), conv1.geometry())));
}

TEST_CASE("weights and biases follow PyTorch's default initialisation") {
  Generator gen(3);
  SECTION("Linear: U(-1/sqrt(in), 1/sqrt(in)) with std bound/sqrt(3)") {
    Linear lin(784, 256, gen);
    const double bound = 1.0 / std::sqrt(784.0);
    CHECK(max_abs(lin.weight()) <= bound);
    CHECK(max_abs(lin.bias()) <= bound);
    auto [mean, std] = mean_std(lin.weight());
    CHECK(std::abs(std / (bound / std::sqrt(3.0)) - 1.0) < 0.05);
    CHECK(std::abs(mean) < 0.05 * bound);
    // The biases spread over their range too (256 draws).
    CHECK(max_abs(lin.bias()) > 0.9 * bound);
  }
  SECTION("Conv2d: fan_in = in/groups * prod(kernel)") {
    Conv2d conv2(32, 64, 3, gen, {.groups = 2});
    const double bound = 1.0 / std::sqrt(16.0 * 9.0);
    CHECK(fan_in(conv2.weight().shape()) == 144);
    CHECK(max_abs(conv2.weight()) <= bound);
    CHECK(max_abs(conv2.bias()) <= bound);
    auto [mean, std] = mean_std(conv2.weight());
    CHECK(std::abs(std / (bound / std::sqrt(3.0)) - 1.0) < 0.05);
    CHECK(std::abs(mean) < 0.05 * bound);
  }
  SECTION("kaiming_uniform_ with a = 0 has bound sqrt(6/fan_in)") {
    Tensor w = Tensor::empty({100, 50});
    kaiming_uniform_(w, 0.0, gen);
    const double bound = std::sqrt(6.0 / 50.0);
    CHECK(max_abs(w) <= bound);
    CHECK(max_abs(w) > 0.99 * bound);
  }
  SECTION("BatchNorm starts at weight 1, bias 0, running mean 0, var 1") {
    BatchNorm2d bn(5);
    CHECK(bn.weight().to_vector() == std::vector<float>(5, 1.f));
    CHECK(bn.bias().to_vector() == std::vector<float>(5, 0.f));
    CHECK(bn.running_mean().to_vector() == std::vector<float>(5, 0.f));
    CHECK(bn.running_var().to_vector() == std::vector<float>(5, 1.f));
    CHECK(bn.num_batches_tracked().item() == 0.0);
  }
}

TEST_CASE("initialisation is a pure function of the generator") {
  Generator a(11), b(11), c(12);
  Linear la(30, 20, a), lb(30, 20, b), lc(30, 20, c);
  CHECK(same_values(la.weight(), lb.weight()));
  CHECK(same_values(la.bias(), lb.bias()));
  CHECK(!same_values(la.weight(), lc.weight()));
}

TEST_CASE("bad constructor arguments throw ConfigError") {
  Generator gen(4);
  CHECK_THROWS_AS(Conv2d(3, 4, 3, gen, {.padding_mode = "reflect"}), ConfigError);
  CHECK_THROWS_WITH(Conv2d(3, 4, 3, gen, {.padding_mode = "reflect"}), Catch::Contains("reflect"));
  CHECK_THROWS_AS(Conv2d(3, 4, 3, gen, {.groups = 2}), ConfigError);
  CHECK_THROWS_AS(Conv2d(4, 3, 3, gen, {.groups = 2}), ConfigError);
  CHECK_THROWS_AS(Conv2d(3, 4, {3, 3, 3}, gen), ConfigError);
  CHECK_THROWS_AS(Conv2d(3, 4, 0, gen), ConfigError);
  CHECK_THROWS_AS(Conv2d(3, 4, 3, gen, {.stride = 0}), ConfigError);
  CHECK_THROWS_AS(Linear(0, 4, gen), ConfigError);
  CHECK_THROWS_AS(MaxPool2d(2, 2, 2), ConfigError);
  CHECK_THROWS_AS(Dropout(1.0, Generator(1)), ConfigError);
  CHECK_THROWS_AS(BatchNorm2d(0), ConfigError);
}

TEST_CASE("train and eval propagate to every descendant") {
  Generator gen(5);
  auto model = build_model("resnet20", gen);
  auto all_modes = [&](bool expected) {
    std::vector<std::shared_ptr<Module>> todo{model};
    int count = 0;
    while (!todo.empty()) {
      auto m = todo.back();
      todo.pop_back();
      ++count;
      if (m->is_training() != expected) return -1;
      for (auto& [name, child] : m->named_children()) todo.push_back(child);
    }
    return count;
  };
  CHECK(all_modes(true) > 50);
  model->eval();
  CHECK(all_modes(false) > 50);
  model->train();
  CHECK(all_modes(true) > 50);
}

TEST_CASE("BatchNorm updates running statistics only in training") {
  BatchNorm1d bn(2);
  Tensor x = Tensor::from_vector(std::vector<float>{1, 10, 3, 20, 5, 30}, {3, 2});
  bn(x);
  // mean (3, 20); unbiased var (4, 100); momentum 0.1 from (0, 1).
  auto mean = bn.running_mean().to_vector();
  auto var = bn.running_var().to_vector();
  CHECK(mean[0] == Approx(0.3));
  CHECK(mean[1] == Approx(2.0));
  CHECK(var[0] == Approx(0.9 + 0.4));
  CHECK(var[1] == Approx(0.9 + 10.0));
  CHECK(bn.num_batches_tracked().item() == 1.0);
  bn.eval();
  Tensor y = bn(x);
  CHECK(bn.num_batches_tracked().item() == 1.0);
  CHECK(bn.running_mean().to_vector() == mean);
  // Eval: (x - running_mean) / sqrt(running_var + eps).
  CHECK(y.to_vector()[0] == Approx((1 - 0.3) / std::sqrt(1.3 + 1e-5)));
}

TEST_CASE("Dropout zeroes about p of the elements in training and is the identity in eval") {
  Dropout drop(0.25, Generator(8, 1));
  Tensor x = Tensor::ones({100, 100});
  auto v = drop(x).to_vector();
  int zeros = 0;
  for (float e : v) {
    if (e == 0) ++zeros;
    else CHECK(e == Approx(1 / 0.75));
  }
  // Binomial(10000, 0.25): std 43; allow 5 sigma.
  CHECK(std::abs(zeros - 2500) < 220);
  drop.eval();
  CHECK(drop(x).to_vector() == x.to_vector());
}

TEST_CASE("position_streams puts dropout's stream at draw times 2^36 blocks, whatever was drawn before") {
  // A Sequential holding the dropout: the position reaches children.
  auto drop = std::make_shared<Dropout>(0.5, Generator(8, 1));
  Sequential seq;
  seq.add(drop);
  const Tensor x = Tensor::ones({16, 16});
  seq.position_streams(3);
  CHECK(drop->generator().offset() == 3 * Module::kDrawStride);
  const auto first = seq(x).to_vector();
  seq(x);  // more draws
  seq.position_streams(3);
  CHECK(seq(x).to_vector() == first);
  seq.position_streams(4);
  CHECK(drop->generator().offset() == 4 * Module::kDrawStride);
  CHECK(seq(x).to_vector() != first);  // 256 elements at p = 0.5: the masks differ but with probability 2^-256
}

TEST_CASE("parameters carry dotted names in registration order") {
  Generator gen(6);
  auto lenet = build_model("lenet5", gen);
  auto named = lenet->named_parameters();
  std::vector<std::string> names;
  for (auto& [n, t] : named) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                          "9.weight", "9.bias", "11.weight", "11.bias"});
  for (auto& t : lenet->parameters()) CHECK(t.requires_grad());
  CHECK(lenet->num_parameters() == 61706);
  CHECK(build_model("mlp", gen)->num_parameters() == 235146);

  auto resnet = build_model("resnet20_cifar", gen);
  auto keys = resnet->state_dict();
  auto has = [&](const std::string& k) {
    for (auto& [n, t] : keys)
      if (n == k) return true;
    return false;
  };
  CHECK(has("3.0.conv1.weight"));
  CHECK(has("4.0.shortcut.0.weight"));
  CHECK(has("4.0.shortcut.1.running_var"));
  CHECK(has("1.num_batches_tracked"));
  CHECK(!has("3.0.shortcut.0.weight"));  // identity shortcut in stage 1
  // Parameters come before buffers.
  CHECK(keys.front().first == "0.weight");
  CHECK(keys.back().first.find("num_batches_tracked") != std::string::npos);
}

TEST_CASE("registering a name twice or with a dot throws ValueError") {
  Sequential s;
  CHECK_THROWS_AS(s.register_parameter("a.b", Tensor::zeros({2})), ValueError);
  s.register_parameter("w", Tensor::zeros({2}));
  CHECK_THROWS_AS(s.register_buffer("w", Tensor::zeros({2})), ValueError);
  CHECK_THROWS_AS(s[0], ValueError);
}

TEST_CASE("state_dict round trip copies values in place") {
  Generator g1(21), g2(22);
  auto a = build_model("vgg_small", g1);
  auto b = build_model("vgg_small", g2);
  // Give a non-trivial running statistics.
  a->forward(random_input({4, 1, 28, 28}));
  Tensor b_first = b->parameters()[0];  // a handle held by b's layer
  b->load_state_dict(a->state_dict());
  auto sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    CHECK(sa[i].first == sb[i].first);
    CHECK(same_values(sa[i].second, sb[i].second));
    CHECK(sa[i].second.impl() != sb[i].second.impl());  // copies, not shared
  }
  CHECK(same_values(b_first, a->parameters()[0]));
  a->eval();
  b->eval();
  Tensor x = random_input({2, 1, 28, 28});
  CHECK(same_values(a->forward(x), b->forward(x)));
}

TEST_CASE("load_state_dict errors name the key and change nothing") {
  Generator g1(31), g2(32);
  auto a = build_model("lenet5", g1);
  auto b = build_model("lenet5", g2);
  const auto before = b->state_dict();
  auto snapshot = [](const NamedTensors& s) {
    std::vector<std::vector<double>> v;
    for (auto& [n, t] : s) v.push_back(t.to_double_vector());
    return v;
  };
  const auto values_before = snapshot(before);

  auto missing = a->state_dict();
  missing.pop_back();
  CHECK_THROWS_AS(b->load_state_dict(missing), ValueError);
  CHECK_THROWS_WITH(b->load_state_dict(missing), Catch::Contains("11.bias"));

  auto unexpected = a->state_dict();
  unexpected.emplace_back("12.weight", Tensor::zeros({1}));
  CHECK_THROWS_AS(b->load_state_dict(unexpected), ValueError);
  CHECK_THROWS_WITH(b->load_state_dict(unexpected), Catch::Contains("12.weight"));

  auto wrong_shape = a->state_dict();
  wrong_shape.back().second = Tensor::zeros({9});
  CHECK_THROWS_AS(b->load_state_dict(wrong_shape), ShapeError);
  CHECK_THROWS_WITH(b->load_state_dict(wrong_shape), Catch::Contains("11.bias") && Catch::Contains("[9]"));

  auto repeated = a->state_dict();
  repeated.push_back(repeated.front());
  CHECK_THROWS_AS(b->load_state_dict(repeated), ValueError);

  CHECK(snapshot(b->state_dict()) == values_before);

  // Non-strict: missing and unexpected keys are skipped, the rest loads.
  b->load_state_dict(unexpected, false);
  CHECK(snapshot(b->state_dict()) == snapshot(a->state_dict()));
}

TEST_CASE("zero_grad drops every gradient") {
  Generator gen(41);
  auto m = build_model("mlp", gen);
  Tensor loss = sum(m->forward(random_input({2, 1, 28, 28})));
  loss.backward();
  for (auto& p : m->parameters()) CHECK(p.grad().defined());
  m->zero_grad();
  for (auto& p : m->parameters()) CHECK(!p.grad().defined());
}

TEST_CASE("config() describes the constructor arguments") {
  Generator gen(51);
  Conv2d c(3, 8, 5, gen, {.stride = 2, .padding = 1, .bias = false});
  const nlohmann::json j = c.config();
  CHECK(c.type_name() == "Conv2d");
  CHECK(j["in_channels"] == 3);
  CHECK(j["out_channels"] == 8);
  CHECK(j["kernel_size"] == nlohmann::json::array({5, 5}));
  CHECK(j["stride"] == nlohmann::json::array({2, 2}));
  CHECK(j["bias"] == false);
  CHECK(Linear(4, 3, gen).config()["out_features"] == 3);
  CHECK(MaxPool2d(2).type_name() == "MaxPool2d");
  CHECK(AvgPool3d(2).type_name() == "AvgPool3d");
  CHECK(BatchNorm1d(3).type_name() == "BatchNorm1d");
  Sequential s;
  s.add(std::make_shared<ReLU>()).add(std::make_shared<LeakyReLU>(0.3));
  const nlohmann::json sj = s.config();
  CHECK(sj["layers"].size() == 2);
  CHECK(sj["layers"][1]["type"] == "LeakyReLU");
  CHECK(sj["layers"][1]["config"]["negative_slope"] == 0.3);
  CHECK(s.size() == 2);
  CHECK(s[1]->type_name() == "LeakyReLU");
}

TEST_CASE("a weight shared by two modules is listed once by parameters()") {
  Generator gen(8);
  auto seq = std::make_shared<Sequential>();
  auto a = std::make_shared<Linear>(3, 3, gen);
  seq->add(a);
  seq->add(a);  // tied: the same module twice
  CHECK(seq->named_parameters().size() == 4);  // "0.weight", "0.bias", "1.weight", "1.bias"
  CHECK(seq->parameters().size() == 2);
  CHECK(seq->num_parameters() == 12);
}

TEST_CASE("Module::to(cuda) without a usable GPU throws DeviceError and moves nothing", "[modules][device]") {
  if (cuda::gpu_available()) return;  // test_cuda_modules.cpp covers the moves on a GPU
  Generator gen(1);
  auto model = build_model("mlp", gen);
  SGDOptions options;
  options.momentum = 0.9;
  SGD sgd(model->parameters(), 0.1, options);
  sum(model->forward(gen.normal({2, 1, 28, 28}))).backward();
  sgd.step();
  CHECK_THROWS_AS(model->cuda(), DeviceError);
  CHECK_THROWS_WITH(model->to(Device::cuda(0)), Catch::Contains("GPU"));
  CHECK_THROWS_AS(sgd.to(Device::cuda()), DeviceError);
  CHECK(model->device() == Device::cpu());
  for (const auto& [name, t] : model->state_dict()) {
    INFO(name);
    CHECK(t.device().is_cpu());
    if (t.grad().defined()) CHECK(t.grad().device().is_cpu());
  }
  for (const auto& [name, t] : sgd.named_state()) CHECK(t.device().is_cpu());
  // cpu() on a CPU model is a no-op that keeps the data where it is.
  const void* before = model->parameters().front().raw_data();
  model->cpu();
  CHECK(model->parameters().front().raw_data() == before);
}
