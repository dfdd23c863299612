// Model builders (see models.h).
#include "convert/conversion.h"
#include "convert/models.h"

#include "engine/generator.h"
#include "layers/modules/activation.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/flatten.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"

namespace aimc {
namespace {

template <class M, class... Args>
std::shared_ptr<Module> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

// Flatten, then 784-256-128-10 with the activation Act between the linears.
template <class Act>
std::shared_ptr<Sequential> build_mlp(Generator& gen) {
  auto m = std::make_shared<Sequential>();
  m->add(make<Flatten>());
  m->add(make<Linear>(784, 256, gen)).add(make<Act>());
  m->add(make<Linear>(256, 128, gen)).add(make<Act>());
  m->add(make<Linear>(128, 10, gen));
  return m;
}

std::shared_ptr<Sequential> build_lenet5(Generator& gen) {
  auto m = std::make_shared<Sequential>();
  m->add(make<Conv2d>(1, 6, 5, gen, ConvOptions{.padding = 2})).add(make<ReLU>()).add(make<MaxPool2d>(2));
  m->add(make<Conv2d>(6, 16, 5, gen)).add(make<ReLU>()).add(make<MaxPool2d>(2));
  m->add(make<Flatten>());
  m->add(make<Linear>(400, 120, gen)).add(make<ReLU>());
  m->add(make<Linear>(120, 84, gen)).add(make<ReLU>());
  m->add(make<Linear>(84, 10, gen));
  return m;
}

// conv3x3(32)-BN-ReLU x2, pool, conv3x3(64)-BN-ReLU x2, pool, linear 64*7*7 -> 10.
std::shared_ptr<Sequential> build_vgg_small(Generator& gen) {
  auto m = std::make_shared<Sequential>();
  auto block = [&](std::int64_t in, std::int64_t out) {
    m->add(make<Conv2d>(in, out, 3, gen, ConvOptions{.padding = 1, .bias = false}));
    m->add(make<BatchNorm2d>(out)).add(make<ReLU>());
  };
  block(1, 32);
  block(32, 32);
  m->add(make<MaxPool2d>(2));
  block(32, 64);
  block(64, 64);
  m->add(make<MaxPool2d>(2));
  m->add(make<Flatten>());
  m->add(make<Linear>(64 * 7 * 7, 10, gen));
  return m;
}

// ResNet for small images (He et al. 2016, section 4.2): conv3x3(16)-BN-ReLU,
// three stages of n basic blocks with 16/32/64 channels (stride 2 at the start
// of stages 2 and 3), global average pool, linear 64 -> 10.
std::shared_ptr<Sequential> build_resnet(std::int64_t in_channels, int blocks_per_stage, Generator& gen) {
  auto m = std::make_shared<Sequential>();
  m->add(make<Conv2d>(in_channels, 16, 3, gen, ConvOptions{.padding = 1, .bias = false}));
  m->add(make<BatchNorm2d>(16)).add(make<ReLU>());
  std::int64_t channels = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const std::int64_t out = 16 << stage;
    auto layer = std::make_shared<Sequential>();
    for (int b = 0; b < blocks_per_stage; ++b)
      layer->add(make<BasicBlock>(b == 0 ? channels : out, out, (b == 0 && stage > 0) ? 2 : 1, gen));
    channels = out;
    m->add(layer);
  }
  m->add(make<GlobalAvgPool>());
  m->add(make<Linear>(64, 10, gen));
  return m;
}

struct ModelEntry {
  const char* name;
  Shape input;
  std::shared_ptr<Sequential> (*build)(Generator&);
};

const std::vector<ModelEntry>& registry() {
  static const std::vector<ModelEntry> entries = {
      {"mlp", {1, 28, 28}, [](Generator& g) { return build_mlp<ReLU>(g); }},
      {"mlp_sigmoid", {1, 28, 28}, [](Generator& g) { return build_mlp<Sigmoid>(g); }},
      {"lenet5", {1, 28, 28}, build_lenet5},
      {"vgg_small", {1, 28, 28}, build_vgg_small},
      {"resnet20", {1, 28, 28}, [](Generator& g) { return build_resnet(1, 3, g); }},
      {"resnet32", {1, 28, 28}, [](Generator& g) { return build_resnet(1, 5, g); }},
      {"resnet20_cifar", {3, 32, 32}, [](Generator& g) { return build_resnet(3, 3, g); }},
      {"resnet32_cifar", {3, 32, 32}, [](Generator& g) { return build_resnet(3, 5, g); }},
  };
  return entries;
}

const ModelEntry& find(const std::string& name) {
  for (const auto& e : registry())
    if (name == e.name) return e;
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("unknown model '" + name + "' (known models: " + known + ")");
}

}  // namespace

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& e : registry()) out.emplace_back(e.name);
    return out;
  }();
  return names;
}

std::shared_ptr<Sequential> build_model(const std::string& name, Generator& gen) { return find(name).build(gen); }

std::shared_ptr<Sequential> build_model_from_description(const nlohmann::json& description, Generator& gen) {
  if (!description.is_object() || !description.contains("model") || !description["model"].is_string())
    throw ConfigError("model description must be an object with a string \"model\", got " + description.dump());
  auto model = build_model(description["model"].get<std::string>(), gen);
  if (description.contains("rpu_config")) {
    // An analog model: the same conversion with the same seed as when it was made.
    const RPUConfig rpu = RPUConfig::from_json(description["rpu_config"]);
    std::uint64_t analog_seed = 0;
    if (description.contains("analog_seed")) {
      const nlohmann::json& seed = description["analog_seed"];
      if (!seed.is_number_integer() || (!seed.is_number_unsigned() && seed.get<std::int64_t>() < 0))
        throw ConfigError("model description: \"analog_seed\" must be a non-negative integer, got " + seed.dump());
      analog_seed = seed.get<std::uint64_t>();
    }
    Generator analog_gen(analog_seed, kAnalogConversionStream);
    const auto flag = [&](const char* key) {
      if (!description.contains(key)) return false;
      if (!description[key].is_boolean())
        throw ConfigError(std::string("model description: \"") + key + "\" must be true or false, got " +
                          description[key].dump());
      return description[key].get<bool>();
    };
    if (flag("mapped")) {
      convert_to_analog_mapped(model, rpu, analog_gen);
    } else {
      ConversionOptions options;
      if (flag("conv_channel_split")) options.conversion_map = mapped_conversion_map();
      convert_to_analog(model, rpu, analog_gen, options);
    }
  }
  return model;
}

nlohmann::json model_description(const std::string& name) {
  find(name);
  return {{"model", name}};
}

Shape model_input_shape(const std::string& name) { return find(name).input; }

}  // namespace aimc
