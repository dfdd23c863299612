// Model builders: every named model builds, maps its input shape to [N, 10]
// logits, has the expected parameter count (computed by hand below), is
// reproducible from its seed, and backpropagates into every parameter.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "convert/models.h"
#include "engine/generator.h"
#include "engine/ops.h"

using namespace aimc;

namespace {

Tensor input_for(const std::string& name, std::int64_t n, std::uint64_t seed = 3) {
  Shape shape{n};
  for (auto d : model_input_shape(name)) shape.push_back(d);
  Generator gen(seed, 7);
  return gen.uniform(shape, 0, 1);
}

}  // namespace

TEST_CASE("the known model names are listed in order") {
  CHECK(model_names() == std::vector<std::string>{"mlp", "mlp_sigmoid", "lenet5", "vgg_small", "resnet20",
                                                  "resnet32", "resnet20_cifar", "resnet32_cifar"});
  CHECK(model_input_shape("lenet5") == Shape{1, 28, 28});
  CHECK(model_input_shape("resnet32_cifar") == Shape{3, 32, 32});
}

TEST_CASE("an unknown model name throws ConfigError listing the known names") {
  Generator gen(1);
  CHECK_THROWS_AS(build_model("resnet18", gen), ConfigError);
  CHECK_THROWS_WITH(build_model("resnet18", gen), Catch::Contains("resnet18") && Catch::Contains("lenet5") &&
                                                       Catch::Contains("resnet32_cifar"));
  CHECK_THROWS_AS(build_model_from_description(nlohmann::json{{"name", "mlp"}}, gen), ConfigError);
}

TEST_CASE("parameter counts match the hand computation") {
  // Hand counts (convs in VGG/ResNet have no bias; BN has 2C parameters):
  //  mlp: 784*256+256 + 256*128+128 + 128*10+10 = 235146
  //  lenet5: 156 + 2416 + 48120 + 10164 + 850 = 61706
  //  vgg_small: 288+64 + 9216+64 + 18432+128 + 36864+128 + 31360+10 = 96554
  //  resnet20_cifar: stem 432+32; stage1 3*(2*(2304+32)); stage2 (4608+64)+(9216+64)+(512+64)
  //    + 2*2*(9216+64); stage3 (18432+128)+(36864+128)+(2048+128) + 2*2*(36864+128); fc 650
  //    = 464 + 14016 + 51648 + 205696 + 650 = 272474
  //  resnet32_cifar: two more blocks per stage: + 2*4672 + 2*18560 + 2*73984 = 466906
  //  resnet20/32 (1 input channel): the stem conv has 16*9*2 = 288 fewer weights.
  const std::map<std::string, std::int64_t> expected{
      {"mlp", 235146},         {"mlp_sigmoid", 235146},       {"lenet5", 61706},
      {"vgg_small", 96554},    {"resnet20", 272474 - 288},    {"resnet32", 466906 - 288},
      {"resnet20_cifar", 272474}, {"resnet32_cifar", 466906},
  };
  for (const auto& name : model_names()) {
    Generator gen(1);
    INFO(name);
    CHECK(build_model(name, gen)->num_parameters() == expected.at(name));
  }
}

TEST_CASE("every model maps its input to [N, 10] logits in train and eval mode") {
  for (const auto& name : model_names()) {
    INFO(name);
    Generator gen(2);
    auto model = build_model(name, gen);
    Tensor x = input_for(name, 2);
    CHECK(model->forward(x).shape() == Shape{2, 10});
    model->eval();
    Tensor y1 = model->forward(x), y2 = model->forward(x);
    CHECK(y1.shape() == Shape{2, 10});
    CHECK(y1.to_vector() == y2.to_vector());  // eval is deterministic
    for (float v : y1.to_vector()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("the same seed builds the same model; the description names it") {
  for (const std::string name : {"lenet5", "resnet20"}) {
    Generator a(7), b(7);
    auto ma = build_model(name, a), mb = build_model(name, b);
    auto sa = ma->state_dict(), sb = mb->state_dict();
    REQUIRE(sa.size() == sb.size());
    for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sa[i].second.to_vector() == sb[i].second.to_vector());
    CHECK(model_description(name) == nlohmann::json{{"model", name}});
  }
}

TEST_CASE("backward reaches every parameter of every model") {
  for (const auto& name : model_names()) {
    INFO(name);
    Generator gen(4);
    auto model = build_model(name, gen);
    Tensor x = input_for(name, 2);
    Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{3, 7}, {2});
    Tensor loss = cross_entropy(model->forward(x), labels);
    CHECK(std::isfinite(loss.item()));
    loss.backward();
    for (auto& [pname, p] : model->named_parameters()) {
      INFO(pname);
      Tensor g = p.grad();
      REQUIRE(g.defined());
      CHECK(g.shape() == p.shape());
      double norm = 0;
      for (double v : g.to_double_vector()) norm += v * v;
      CHECK(std::isfinite(norm));
      CHECK(norm > 0);
    }
  }
}
