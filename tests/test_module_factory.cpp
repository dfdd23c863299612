// Module factory and architectures in checkpoints: every named model, digital
// and analog, rebuilds from its architecture JSON (module_from_config) to the
// same JSON and, with the same state, the same outputs bit for bit; bad
// architectures throw ConfigError naming the field; checkpoints store the
// architecture, rebuild any module tree from it, and files without it (as
// written before) still load.
#include <catch2/catch.hpp>


#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/safetensors.h"
#include "layers/modules/activation.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/linear.h"
#include "layers/modules/module_factory.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"
#include "module_test_util.h"

using namespace aimc;
namespace fs = std::filesystem;

namespace {

using aimc::testing::config_error;

// A fresh directory per test case, removed afterwards.
struct TempDir : aimc::testing::TempDir {
  TempDir() : aimc::testing::TempDir("aimc_test_module_factory") {}
};

Tensor input_for(const std::string& name, std::int64_t n) {
  Shape shape{n};
  for (auto d : model_input_shape(name)) shape.push_back(d);
  Generator gen(3, 7);
  return gen.uniform(shape, 0, 1);
}

// An InferenceRPUConfig with its default (noisy) forward and small tiles, so
// layers are split onto several tiles.
RPUConfig small_tiles() {
  InferenceRPUConfig c;
  c.mapping.max_input_size = 64;
  c.mapping.max_output_size = 64;
  return c;
}

// The model's state dict values, copied (so later forwards cannot change them).
NamedTensors copy_state(const Module& m) {
  NamedTensors out;
  for (const auto& [name, t] : m.state_dict()) out.emplace_back(name, t.clone());
  return out;
}

// The rebuilt model: architecture -> module_from_config -> the same state.
std::shared_ptr<Module> rebuild(const Module& model, std::uint64_t seed = 11) {
  Generator gen(seed);
  auto m = module_from_config(module_architecture(model), gen);
  m->load_state_dict(copy_state(model));
  m->train(model.is_training());
  return m;
}

void check_same_forward(Module& a, Module& b, const Tensor& x) {
  const std::vector<float> ya = a.forward(x).to_vector(), yb = b.forward(x).to_vector();
  REQUIRE(ya.size() == yb.size());
  CHECK(ya == yb);
}

}  // namespace

TEST_CASE("every named model rebuilds from its architecture: same JSON, same outputs bit for bit") {
  for (const auto& name : model_names()) {
    INFO(name);
    Generator gen(21);
    auto model = build_model(name, gen);
    const nlohmann::json arch = module_architecture(*model);
    CHECK(arch["type"] == "Sequential");
    auto copy = rebuild(*model);
    CHECK(module_architecture(*copy) == arch);
    CHECK(copy->state_dict().size() == model->state_dict().size());
    const Tensor x = input_for(name, 2);
    model->eval();
    copy->eval();
    check_same_forward(*model, *copy, x);
  }
}

TEST_CASE("analog models (convert_to_analog, _mapped) rebuild to the same JSON and the same noisy outputs") {
  for (const auto& name : model_names()) {
    for (const bool mapped : {false, true}) {
      INFO(name << (mapped ? " mapped" : ""));
      Generator gen(22), analog_gen(5, kAnalogConversionStream);
      std::shared_ptr<Module> model = build_model(name, gen);
      model = mapped ? convert_to_analog_mapped(model, small_tiles(), analog_gen)
                     : convert_to_analog(model, small_tiles(), analog_gen);
      model->eval();
      const nlohmann::json arch = module_architecture(*model);
      // The analog layers are in it, with their RPU configs.
      const std::string dumped = arch.dump();
      CHECK(dumped.find("\"AnalogLinear\"") != std::string::npos);
      CHECK(dumped.find("\"InferenceRPUConfig\"") != std::string::npos);
      if (name != "mlp" && name != "mlp_sigmoid")
        CHECK(dumped.find(mapped ? "\"AnalogConv2dMapped\"" : "\"AnalogConv2d\"") != std::string::npos);
      auto copy = rebuild(*model, 99);  // other seeds: the state brings the tiles' seeds and counters
      CHECK(module_architecture(*copy) == arch);
      const Tensor x = input_for(name, 2);
      // Forward noise is on: a second forward differs from the first, yet the
      // rebuilt model draws the same noise as the original, call for call.
      const std::vector<float> first = model->forward(x).to_vector();
      CHECK(copy->forward(x).to_vector() == first);
      const std::vector<float> second = model->forward(x).to_vector();
      CHECK(second != first);
      CHECK(copy->forward(x).to_vector() == second);
      // Through a checkpoint (the file's tensors bound the architecture's size).
      TempDir dir;
      save_checkpoint(dir.file("m.safetensors"), *model, nlohmann::json::object());
      Checkpoint ck = load_checkpoint(dir.file("m.safetensors"));
      CHECK(module_architecture(*ck.model) == arch);
      ck.model->eval();
      check_same_forward(*model, *ck.model, x);
    }
  }
}

TEST_CASE("realistic_read_write and use_indexed travel with the analog layers' architectures") {
  Generator gen(23), analog_gen(5, kAnalogConversionStream);
  ConversionOptions options;
  options.realistic_read_write = true;
  std::shared_ptr<Module> model = convert_to_analog(build_model("lenet5", gen), small_tiles(), analog_gen, options);
  dynamic_cast<AnalogConvNd&>(*model->named_children()[0].second).set_use_indexed(true);
  const nlohmann::json arch = module_architecture(*model);
  CHECK(arch["config"]["layers"][0]["config"]["realistic_read_write"] == true);
  CHECK(arch["config"]["layers"][0]["config"]["use_indexed"] == true);
  CHECK(arch["config"]["layers"][3]["config"]["use_indexed"] == nullptr);
  CHECK(arch["config"]["layers"][7]["config"]["realistic_read_write"] == true);
  // Programmed at conversion (realistic writes): through a checkpoint, which
  // restores the programming state too.
  TempDir dir;
  save_checkpoint(dir.file("r.safetensors"), *model, nlohmann::json::object());
  std::shared_ptr<Module> copy = load_checkpoint(dir.file("r.safetensors")).model;
  CHECK(module_architecture(*copy) == arch);
  CHECK(dynamic_cast<AnalogLinear&>(*copy->named_children()[7].second).realistic_read_write());
  // The realistic read goes through the same noisy tiles: the same bits.
  auto& a = dynamic_cast<AnalogLinear&>(*model->named_children()[7].second);
  auto& b = dynamic_cast<AnalogLinear&>(*copy->named_children()[7].second);
  CHECK(a.get_weights().to_vector() == b.get_weights().to_vector());
  CHECK(a.get_weights().to_vector() != a.exact_weights().to_vector());
}

TEST_CASE("a hand-made model of every built-in type round-trips through its architecture") {
  Generator gen(31);
  auto m = std::make_shared<Sequential>();
  m->add(std::make_shared<ConvNd>(2, 1, 4, Sizes{3, 2}, ConvOptions{.stride = {1, 2}, .padding = 1, .groups = 1},
                                  gen));
  m->add(std::make_shared<BatchNorm2d>(4, 1e-3, 0.2, true));
  m->add(std::make_shared<LeakyReLU>(0.2));
  m->add(std::make_shared<AvgPool2d>(2, 1, 1));
  m->add(std::make_shared<MaxPool2d>(2));
  m->add(std::make_shared<Flatten>());
  m->add(std::make_shared<Dropout>(0.25, Generator(3)));
  m->add(std::make_shared<Linear>(4 * 7 * 4, 16, false, gen));
  m->add(std::make_shared<BatchNorm1d>(16));
  m->add(std::make_shared<Tanh>()).add(std::make_shared<GELU>()).add(std::make_shared<Sigmoid>());
  auto inner = std::make_shared<Sequential>();
  inner->add(std::make_shared<Linear>(16, 3, gen));
  m->add(inner);
  const nlohmann::json arch = module_architecture(*m);
  auto copy = rebuild(*m);
  CHECK(module_architecture(*copy) == arch);
  m->eval();
  copy->eval();
  Generator xg(4, 1);
  check_same_forward(*m, *copy, xg.uniform({2, 1, 14, 14}, -1, 1));
  // Missing optional fields take the constructors' defaults.
  auto relu_net = module_from_config(
      {{"type", "Sequential"},
       {"config", {{"layers", {{{"type", "Linear"}, {"config", {{"in_features", 3}, {"out_features", 2}}}},
                               {{"type", "LeakyReLU"}, {"config", nlohmann::json::object()}}}}}}},
      gen);
  CHECK(module_architecture(*relu_net)["config"]["layers"][0]["config"]["bias"] == true);
  CHECK(module_architecture(*relu_net)["config"]["layers"][1]["config"]["negative_slope"] == 0.01);
}

TEST_CASE("bad architectures throw ConfigError naming the field") {
  Generator gen(1);
  auto build = [&](const nlohmann::json& j) { return config_error([&] { module_from_config(j, gen); }); };
  const nlohmann::json linear = {{"type", "Linear"}, {"config", {{"in_features", 4}, {"out_features", 3}}}};
  auto with = [&](const char* key, const nlohmann::json& v) {
    nlohmann::json j = linear;
    j["config"][key] = v;
    return j;
  };
  CHECK_NOTHROW(module_from_config(linear, gen));
  // Unknown type, listing the known ones.
  CHECK_THAT(build({{"type", "Linear2"}, {"config", nlohmann::json::object()}}),
             Catch::Contains("architecture.type") && Catch::Contains("Linear2") && Catch::Contains("AnalogLinear"));
  // Missing, wrongly typed and unknown fields.
  nlohmann::json missing = linear;
  missing["config"].erase("in_features");
  CHECK_THAT(build(missing), Catch::Contains("architecture.config.in_features") && Catch::Contains("missing"));
  CHECK_THAT(build(with("in_features", "4")), Catch::Contains("architecture.config.in_features") &&
                                                  Catch::Contains("an integer"));
  CHECK_THAT(build(with("in_features", 2.5)), Catch::Contains("architecture.config.in_features"));
  CHECK_THAT(build(with("bias", 1)), Catch::Contains("architecture.config.bias"));
  CHECK_THAT(build(with("in_featurez", 4)), Catch::Contains("unknown field \"in_featurez\""));
  CHECK_THAT(build(with("in_features", 0)), Catch::Contains("architecture.config") && Catch::Contains(">= 1"));
  CHECK_THAT(build({{"type", "Linear"}}), Catch::Contains("architecture.config") && Catch::Contains("missing"));
  CHECK_THAT(build(nlohmann::json::array()), Catch::Contains("architecture") && Catch::Contains("object"));
  // Nested paths.
  const nlohmann::json seq = {
      {"type", "Sequential"},
      {"config", {{"layers", {linear, {{"type", "Conv2d"}, {"config", {{"in_channels", 1}, {"out_channels", 2},
                                                                         {"kernel_size", "3"}}}}}}}}};
  CHECK_THAT(build(seq), Catch::Contains("architecture.config.layers[1].config.kernel_size"));
  nlohmann::json analog = {{"type", "AnalogLinear"},
                           {"config", {{"in_features", 4}, {"out_features", 3}, {"rpu_config", {{"family", "Nope"}}}}}};
  CHECK_THAT(build(analog), Catch::Contains("architecture.config.rpu_config") && Catch::Contains("Nope"));
  analog["config"].erase("rpu_config");
  CHECK_THAT(build(analog), Catch::Contains("architecture.config.rpu_config") && Catch::Contains("missing"));
  // A BasicBlock's children must be its own.
  Generator g2(2);
  nlohmann::json block = module_architecture(BasicBlock(4, 4, 1, g2));
  block["config"]["children"]["conv3"] = block["config"]["children"]["conv1"];
  CHECK_THAT(build(block), Catch::Contains("architecture.config.children") && Catch::Contains("conv3"));
  block["config"]["children"].erase("conv3");
  block["config"]["children"].erase("bn2");
  CHECK_THAT(build(block), Catch::Contains("architecture.config.children.bn2") && Catch::Contains("missing"));
  // Nesting is bounded.
  nlohmann::json deep = linear;
  for (int i = 0; i < 70; ++i) deep = {{"type", "Sequential"}, {"config", {{"layers", {deep}}}}};
  CHECK_THAT(build(deep), Catch::Contains("nested deeper than 64"));
  // The element budget: a 4x3 Linear needs 12 weight elements.
  CHECK_NOTHROW(module_from_config(linear, gen, 12));
  CHECK_THROWS_WITH(module_from_config(linear, gen, 11),
                    Catch::Contains("architecture.config.in_features") && Catch::Contains("12"));
  const nlohmann::json huge = {{"type", "Linear"},
                               {"config", {{"in_features", std::int64_t(1) << 40}, {"out_features", 1 << 30}}}};
  CHECK_THROWS_AS(module_from_config(huge, gen, 1 << 20), ConfigError);
  // A plug-in type.
  register_module_type("TestDouble", [](const nlohmann::json&, const std::string&, ModuleBuilder&) {
    return std::make_shared<ReLU>();
  });
  CHECK(module_from_config({{"type", "TestDouble"}, {"config", nlohmann::json::object()}}, gen)->type_name() == "ReLU");
  CHECK_THROWS_AS(register_module_type("Linear", {}), ConfigError);
}

namespace {

// What save_checkpoint wrote before checkpoints held the architecture: the
// description and the version only.
void write_old_checkpoint(const std::string& path, const Module& model, const nlohmann::json& description) {
  write_safetensors(path, model.state_dict(), {{"aimc.model", description.dump()}, {"aimc.version", version()}});
}

}  // namespace

TEST_CASE("checkpoints store the architecture and rebuild any module tree from it") {
  TempDir dir;
  const std::string path = dir.file("custom.safetensors");
  Generator gen(41);
  // Not a named model: an MLP with Tanh and BatchNorm1d, half of it analog.
  auto m = std::make_shared<Sequential>();
  m->add(std::make_shared<Flatten>()).add(std::make_shared<Linear>(12, 8, gen));
  m->add(std::make_shared<BatchNorm1d>(8)).add(std::make_shared<Tanh>()).add(std::make_shared<Linear>(8, 3, gen));
  Generator analog_gen(6, kAnalogConversionStream);
  std::shared_ptr<Module> model = convert_to_analog(m, small_tiles(), analog_gen, std::vector<std::string>{"1"});
  model->eval();
  save_checkpoint(path, *model, nlohmann::json::object());
  const SafetensorsFile file = read_safetensors(path);
  REQUIRE(file.metadata.count("aimc.architecture") == 1);
  CHECK(nlohmann::json::parse(file.metadata.at("aimc.architecture")) == module_architecture(*model));
  Checkpoint ck = load_checkpoint(path);
  CHECK(module_architecture(*ck.model) == module_architecture(*model));
  CHECK(ck.description == nlohmann::json::object());
  ck.model->eval();
  Generator xg(8, 1);
  const Tensor x = xg.uniform({4, 3, 2, 2}, -1, 1);
  check_same_forward(*model, *ck.model, x);

  // A programmed and drifted analog lenet5 loads with its programming state.
  Generator g2(42), a2(7, kAnalogConversionStream);
  const InferenceRPUConfig pcm;  // PCMLikeNoiseModel, GlobalDriftCompensation
  std::shared_ptr<Module> lenet = convert_to_analog(build_model("lenet5", g2), pcm, a2);
  lenet->eval();
  lenet->drift_analog_weights(3600.0);
  save_checkpoint(path, *lenet, model_description("lenet5"));
  Checkpoint ck2 = load_checkpoint(path);
  ck2.model->eval();
  check_same_forward(*lenet, *ck2.model, input_for("lenet5", 2));

  // The architecture is preferred to the description's model name.
  Generator g3(43);
  auto lenet_digital = build_model("lenet5", g3);
  save_checkpoint(path, *lenet_digital, model_description("mlp"));
  CHECK(module_architecture(*load_checkpoint(path).model) == module_architecture(*lenet_digital));
}

namespace {

// A container type the factory does not know.
class UnregisteredContainer : public Sequential {
 public:
  std::string type_name() const override { return "UnregisteredContainer"; }
};

}  // namespace

TEST_CASE("a model with an unregistered module type is saved without architecture, by its model name only") {
  TempDir dir;
  const std::string path = dir.file("unregistered.safetensors");
  Generator gen(53);
  auto mlp = build_model("mlp", gen);
  UnregisteredContainer wrapped;  // the mlp's layers: the same state dict keys
  for (std::size_t i = 0; i < mlp->size(); ++i) wrapped.add((*mlp)[i]);
  CHECK(unknown_module_type(wrapped) == "UnregisteredContainer");
  CHECK(unknown_module_type(*mlp).empty());
  save_checkpoint(path, wrapped, model_description("mlp"));
  CHECK(read_safetensors(path).metadata.count("aimc.architecture") == 0);
  Checkpoint ck = load_checkpoint(path);
  CHECK(ck.model->type_name() == "Sequential");
  check_same_forward(*mlp, *ck.model, input_for("mlp", 2));
  CHECK_THROWS_WITH(save_checkpoint(path, wrapped, nlohmann::json::object()),
                    Catch::Contains("UnregisteredContainer") && Catch::Contains("register_module_type"));
}

TEST_CASE("checkpoints without an architecture (as written before) still load from the model name") {
  TempDir dir;
  const std::string path = dir.file("old.safetensors");
  for (const bool analog : {false, true}) {
    INFO((analog ? "analog" : "digital"));
    Generator gen(51);
    nlohmann::json description = model_description("lenet5");
    std::shared_ptr<Module> model;
    if (analog) {
      description["rpu_config"] = small_tiles().to_json();
      description["analog_seed"] = 9;
      model = build_model_from_description(description, gen);
    } else {
      model = build_model("lenet5", gen);
    }
    write_old_checkpoint(path, *model, description);
    REQUIRE(read_safetensors(path).metadata.count("aimc.architecture") == 0);
    Checkpoint ck = load_checkpoint(path);
    CHECK(module_architecture(*ck.model) == module_architecture(*model));
    model->eval();
    ck.model->eval();
    check_same_forward(*model, *ck.model, input_for("lenet5", 2));
  }
  // Without an architecture the description must name a model.
  Generator gen(52);
  auto mlp = build_model("mlp", gen);
  write_old_checkpoint(path, *mlp, nlohmann::json::object());
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
}

TEST_CASE("a garbled or oversized architecture in a checkpoint throws IoError naming the field") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  Generator gen(61);
  auto model = build_model("mlp", gen);
  auto write = [&](const std::string& arch) {
    write_safetensors(path, model->state_dict(),
                      {{"aimc.model", "{}"}, {"aimc.architecture", arch}, {"aimc.version", version()}});
  };
  nlohmann::json arch = module_architecture(*model);
  write(arch.dump());
  CHECK_NOTHROW(load_checkpoint(path));
  write("{not json");
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains(path) && Catch::Contains("aimc.architecture"));
  write(std::string(3000, '[') + std::string(3000, ']'));
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("nested deeper than 64"));
  arch["config"]["layers"][1]["config"]["out_features"] = "256";
  write(arch.dump());
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("aimc.architecture.config.layers[1].config.out_features"));
  // A layer far larger than the file's tensors is refused before allocating.
  arch["config"]["layers"][1]["config"]["out_features"] = std::int64_t(1) << 36;
  write(arch.dump());
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("budget"));
  // The shapes must still match the tensors.
  arch["config"]["layers"][1]["config"]["out_features"] = 255;
  write(arch.dump());
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
}
