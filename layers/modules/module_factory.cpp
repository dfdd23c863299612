// Module factory (see module_factory.h).
#include "layers/modules/module_factory.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "engine/error.h"
#include "engine/generator.h"
#include "engine/json_input.h"
#include "layers/config/json_fields.h"
#include "layers/config/rpu_config.h"
#include "layers/devices/registry.h"
#include "layers/modules/activation.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/graph.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"

namespace aimc {

using config::ObjectReader;

nlohmann::json module_architecture(const Module& module) {
  return {{"type", module.type_name()}, {"config", module.config()}};
}

namespace {

// Runs a constructor; its errors (which name the argument in the
// constructor's words) become ConfigErrors that also name the JSON path.
template <class F>
auto construct(const std::string& where, F&& make) {
  try {
    return make();
  } catch (const Error& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

// A kernel/stride/padding size: one integer or an array of integers.
Sizes read_sizes(ObjectReader& r, const char* key, Sizes fallback) {
  const nlohmann::json* v = r.find(key);
  if (v == nullptr) return fallback;
  if (const auto i = config::json_int64(*v)) return Sizes(*i);
  if (!v->is_array()) throw ConfigError(r.path(key) + ": expected an integer or an array of integers, got " + v->dump());
  std::vector<std::int64_t> values;
  for (const auto& e : *v) {
    const auto i = config::json_int64(e);
    if (!i) throw ConfigError(r.path(key) + ": expected an integer or an array of integers, got " + v->dump());
    values.push_back(*i);
  }
  return Sizes(std::move(values));
}

// The RPU config of an analog layer, its errors prefixed with the path.
RPUConfig read_rpu_config(ObjectReader& r) {
  r.require("rpu_config");
  const nlohmann::json& j = *r.find("rpu_config");
  try {
    return RPUConfig::from_json(j);
  } catch (const Error& e) {
    throw ConfigError(r.path("rpu_config") + ": " + e.what());
  }
}

// The product of the expanded kernel sizes (1 value or one per dim).
std::vector<std::int64_t> kernel_dims(const Sizes& kernel, int dims) {
  if (kernel.values.size() == 1) return std::vector<std::int64_t>(static_cast<std::size_t>(dims), kernel.values[0]);
  return kernel.values;
}

struct LinearArgs {
  std::int64_t in = 0, out = 0;
  bool bias = true;
};

LinearArgs read_linear(ObjectReader& r, ModuleBuilder& b) {
  LinearArgs a;
  r.require("in_features");
  r.require("out_features");
  r.read("in_features", a.in);
  r.read("out_features", a.out);
  r.read("bias", a.bias);
  b.charge({a.out, a.in}, r.path("in_features"));
  return a;
}

struct ConvArgs {
  std::int64_t in = 0, out = 0;
  Sizes kernel;
  ConvOptions options;
};

ConvArgs read_conv(ObjectReader& r, int dims, ModuleBuilder& b) {
  ConvArgs a;
  for (const char* key : {"in_channels", "out_channels", "kernel_size"}) r.require(key);
  r.read("in_channels", a.in);
  r.read("out_channels", a.out);
  a.kernel = read_sizes(r, "kernel_size", Sizes());
  a.options.stride = read_sizes(r, "stride", 1);
  a.options.padding = read_sizes(r, "padding", 0);
  a.options.dilation = read_sizes(r, "dilation", 1);
  r.read("groups", a.options.groups);
  r.read("bias", a.options.bias);
  r.read("padding_mode", a.options.padding_mode);
  // Weight [out, in/groups, *kernel]; a bad size is left to the constructor's checks.
  std::vector<std::int64_t> sizes{a.out, a.options.groups >= 1 ? a.in / a.options.groups : a.in};
  for (auto k : kernel_dims(a.kernel, dims)) sizes.push_back(k);
  b.charge(sizes, r.path("kernel_size"));
  return a;
}

ModuleFactory linear_factory() {
  return [](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    const LinearArgs a = read_linear(r, b);
    r.finish();
    return construct(where, [&] { return std::make_shared<Linear>(a.in, a.out, a.bias, b.gen()); });
  };
}

ModuleFactory analog_linear_factory() {
  return [](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    const LinearArgs a = read_linear(r, b);
    const RPUConfig rpu = read_rpu_config(r);
    bool realistic = false;
    r.read("realistic_read_write", realistic);
    r.finish();
    return construct(where, [&] {
      auto m = std::make_shared<AnalogLinear>(a.in, a.out, a.bias, rpu, b.gen());
      m->set_realistic_read_write(realistic);  // a flag only: the state sets the weights
      return m;
    });
  };
}

ModuleFactory conv_factory(int dims) {
  return [dims](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    const ConvArgs a = read_conv(r, dims, b);
    r.finish();
    return construct(where, [&] { return std::make_shared<ConvNd>(dims, a.in, a.out, a.kernel, a.options, b.gen()); });
  };
}

ModuleFactory analog_conv_factory(int dims, bool channel_split) {
  return [dims, channel_split](const nlohmann::json& j, const std::string& where,
                               ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    const ConvArgs a = read_conv(r, dims, b);
    const RPUConfig rpu = read_rpu_config(r);
    std::optional<bool> use_indexed;
    if (const nlohmann::json* v = r.find("use_indexed"); v != nullptr && !v->is_null()) {
      if (!v->is_boolean()) throw ConfigError(r.path("use_indexed") + ": expected true, false or null, got " + v->dump());
      use_indexed = v->get<bool>();
    }
    bool realistic = false;
    r.read("realistic_read_write", realistic);
    r.finish();
    return construct(where, [&] {
      auto m = std::make_shared<AnalogConvNd>(dims, a.in, a.out, a.kernel, a.options, rpu, b.gen(), channel_split);
      m->set_use_indexed(use_indexed);
      m->set_realistic_read_write(realistic);
      return m;
    });
  };
}

ModuleFactory batch_norm_factory(int dims) {
  return [dims](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    std::int64_t features = 0;
    double eps = 1e-5, momentum = 0.1;
    bool affine = true;
    r.require("num_features");
    r.read("num_features", features);
    r.read("eps", eps);
    r.read("momentum", momentum);
    r.read("affine", affine);
    r.finish();
    b.charge({4, features}, r.path("num_features"));  // weight, bias, running mean and var
    return construct(where, [&] { return std::make_shared<BatchNormNd>(dims, features, eps, momentum, affine); });
  };
}

ModuleFactory pool_factory(PoolNd::Kind kind, int dims) {
  return [kind, dims](const nlohmann::json& j, const std::string& where, ModuleBuilder&) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    r.require("kernel_size");
    const Sizes kernel = read_sizes(r, "kernel_size", Sizes());
    const Sizes stride = read_sizes(r, "stride", Sizes());
    const Sizes padding = read_sizes(r, "padding", 0);
    r.finish();
    return construct(where, [&] { return std::make_shared<PoolNd>(kind, dims, kernel, stride, padding); });
  };
}

// A module without constructor arguments: its config must be {}.
template <class M>
ModuleFactory plain_factory() {
  return [](const nlohmann::json& j, const std::string& where, ModuleBuilder&) -> std::shared_ptr<Module> {
    ObjectReader(j, where).finish();
    return std::make_shared<M>();
  };
}

ModuleFactory sequential_factory() {
  return [](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    r.require("layers");
    const nlohmann::json& layers = *r.find("layers");
    r.finish();
    if (!layers.is_array()) throw ConfigError(r.path("layers") + ": expected an array of {\"type\", \"config\"}");
    auto s = std::make_shared<Sequential>();
    for (std::size_t i = 0; i < layers.size(); ++i)
      s->add(b.build(layers[i], r.path("layers") + "[" + std::to_string(i) + "]"));
    return s;
  };
}

ModuleFactory basic_block_factory() {
  return [](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
    ObjectReader r(j, where);
    std::int64_t in = 0, out = 0, stride = 1;
    for (const char* key : {"in_channels", "out_channels", "stride"}) r.require(key);
    r.read("in_channels", in);
    r.read("out_channels", out);
    r.read("stride", stride);
    const nlohmann::json* children = r.find("children");
    r.finish();
    if (in < 1 || out < 1 || in > (std::int64_t(1) << 40) || out > (std::int64_t(1) << 40))
      throw ConfigError(r.path("in_channels") + ": channel counts must be in [1, 2^40], got " + std::to_string(in) +
                        " and " + std::to_string(out));
    // conv1 [out, in, 3, 3], conv2 [out, out, 3, 3], the shortcut's [out, in]
    // when there is one; two BatchNorms of 4 x out.
    const bool shortcut = stride != 1 || in != out;
    const std::vector<std::int64_t> size{out, 9 * in + 9 * out + (shortcut ? in + 4 : 0) + 8};
    if (children == nullptr) b.charge(size, where);
    else b.check(size, where);  // the children given are charged as they are built
    auto block = construct(where, [&] { return std::make_shared<BasicBlock>(in, out, stride, b.gen()); });
    if (children == nullptr) return block;
    if (!children->is_object())
      throw ConfigError(r.path("children") + ": expected an object {name: {\"type\", \"config\"}}");
    // Exactly the block's own children, each rebuilt from its architecture.
    const auto own = block->named_children();
    for (const auto& [name, child] : own)
      if (!children->contains(name)) throw ConfigError(r.path("children") + "." + name + ": missing");
    for (auto it = children->begin(); it != children->end(); ++it) {
      bool known = false;
      for (const auto& [name, child] : own) known = known || name == it.key();
      if (!known) throw ConfigError(r.path("children") + ": unknown child \"" + it.key() + "\" for this block");
      block->replace_child(it.key(), b.build(it.value(), r.path("children") + "." + it.key()));
    }
    return block;
  };
}

devices::Registry<ModuleFactory>& registry() {
  static devices::Registry<ModuleFactory> r(
      "module type",
      {
          {"Sequential", sequential_factory()},
          {"BasicBlock", basic_block_factory()},
          {"Graph", [](const nlohmann::json& j, const std::string& where,
                       ModuleBuilder& b) -> std::shared_ptr<Module> { return Graph::from_config(j, where, b); }},
          {"Linear", linear_factory()},
          {"Conv1d", conv_factory(1)},
          {"Conv2d", conv_factory(2)},
          {"Conv3d", conv_factory(3)},
          {"BatchNorm1d", batch_norm_factory(1)},
          {"BatchNorm2d", batch_norm_factory(2)},
          {"ReLU", plain_factory<ReLU>()},
          {"LeakyReLU",
           [](const nlohmann::json& j, const std::string& where, ModuleBuilder&) -> std::shared_ptr<Module> {
             ObjectReader r(j, where);
             double slope = 0.01;
             r.read("negative_slope", slope);
             r.finish();
             return std::make_shared<LeakyReLU>(slope);
           }},
          {"Sigmoid", plain_factory<Sigmoid>()},
          {"Tanh", plain_factory<Tanh>()},
          {"GELU", plain_factory<GELU>()},
          {"MaxPool1d", pool_factory(PoolNd::Kind::Max, 1)},
          {"MaxPool2d", pool_factory(PoolNd::Kind::Max, 2)},
          {"MaxPool3d", pool_factory(PoolNd::Kind::Max, 3)},
          {"AvgPool1d", pool_factory(PoolNd::Kind::Avg, 1)},
          {"AvgPool2d", pool_factory(PoolNd::Kind::Avg, 2)},
          {"AvgPool3d", pool_factory(PoolNd::Kind::Avg, 3)},
          {"GlobalAvgPool", plain_factory<GlobalAvgPool>()},
          {"Flatten",
           [](const nlohmann::json& j, const std::string& where, ModuleBuilder&) -> std::shared_ptr<Module> {
             ObjectReader r(j, where);
             std::int64_t start = 1, end = -1;
             r.read("start_dim", start);
             r.read("end_dim", end);
             r.finish();
             return std::make_shared<Flatten>(start, end);
           }},
          {"Dropout",
           [](const nlohmann::json& j, const std::string& where, ModuleBuilder& b) -> std::shared_ptr<Module> {
             ObjectReader r(j, where);
             double p = 0.5;
             r.read("p", p);
             r.finish();
             return construct(where, [&] { return std::make_shared<Dropout>(p, b.gen()); });
           }},
          {"AnalogLinear", analog_linear_factory()},
          {"AnalogConv1d", analog_conv_factory(1, false)},
          {"AnalogConv2d", analog_conv_factory(2, false)},
          {"AnalogConv3d", analog_conv_factory(3, false)},
          {"AnalogConv1dMapped", analog_conv_factory(1, true)},
          {"AnalogConv2dMapped", analog_conv_factory(2, true)},
          {"AnalogConv3dMapped", analog_conv_factory(3, true)},
      });
  return r;
}

}  // namespace

std::int64_t ModuleBuilder::elements(const std::vector<std::int64_t>& sizes, const std::string& where) const {
  std::int64_t n = 1;
  for (auto s : sizes) {
    if (s < 0) return 0;  // invalid: the constructor names it
    if (__builtin_mul_overflow(n, s, &n))
      throw ConfigError(where + ": the layer's size overflows (more than 2^63 elements)");
  }
  return n;
}

void ModuleBuilder::check(const std::vector<std::int64_t>& sizes, const std::string& where) const {
  const std::int64_t n = elements(sizes, where);
  if (n > remaining_)
    throw ConfigError(where + ": the layer needs " + std::to_string(n) + " parameter elements, more than the " +
                      std::to_string(remaining_) + " left of the architecture's budget (a checkpoint's tensors)");
}

void ModuleBuilder::charge(const std::vector<std::int64_t>& sizes, const std::string& where) {
  check(sizes, where);
  remaining_ -= elements(sizes, where);
}

std::shared_ptr<Module> ModuleBuilder::build(const nlohmann::json& architecture, const std::string& where) {
  if (depth_ >= kMaxJsonDepth)
    throw ConfigError(where + ": modules nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  ObjectReader r(architecture, where);
  r.require("type");
  r.require("config");
  std::string type;
  r.read("type", type);
  const nlohmann::json& config = *r.find("config");
  r.finish();
  const ModuleFactory factory = registry().get(architecture, where);
  ++depth_;
  std::shared_ptr<Module> m = factory(config, r.path("config"), *this);
  --depth_;
  if (!m) throw ConfigError(where + ": the builder of type '" + type + "' returned no module");
  return m;
}

std::shared_ptr<Module> module_from_config(const nlohmann::json& architecture, Generator& gen,
                                           std::int64_t max_elements, const std::string& where) {
  ModuleBuilder b(gen, max_elements);
  return b.build(architecture, where);
}

void register_module_type(const std::string& type, ModuleFactory factory) {
  if (!factory) throw ConfigError("register_module_type: the builder of '" + type + "' is empty");
  registry().add(type, std::move(factory));
}

std::vector<std::string> module_type_names() { return registry().names(); }

std::string unknown_module_type(const Module& module) {
  const std::vector<std::string> known = registry().names();
  const std::function<std::string(const Module&)> find = [&](const Module& m) -> std::string {
    if (std::find(known.begin(), known.end(), m.type_name()) == known.end()) return m.type_name();
    for (const auto& [name, child] : m.named_children())
      if (std::string t = find(*child); !t.empty()) return t;
    return "";
  };
  return find(module);
}

}  // namespace aimc
