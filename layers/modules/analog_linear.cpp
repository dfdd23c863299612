// AnalogLinear (see analog_linear.h).
#include "layers/modules/analog_linear.h"

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "layers/modules/init.h"

namespace aimc {
namespace {

TileGrid linear_grid(std::int64_t in_features, std::int64_t out_features, const RPUConfig& rpu_config) {
  const auto [max_out, max_in] = tile_size_limits(rpu_config);
  return make_tile_grid(out_features, in_features, max_out, max_in);
}

}  // namespace

AnalogLinear::AnalogLinear(std::int64_t in_features, std::int64_t out_features, bool bias,
                           const RPUConfig& rpu_config, std::uint64_t tile_seed)
    : in_features_(in_features),
      out_features_(out_features),
      rpu_config_(rpu_config),
      core_(linear_grid(in_features, out_features, rpu_config), rpu_config, tile_seed) {
  for (const auto& [name, t] : core_.parameters()) register_parameter(name, t);
  for (const auto& [name, t] : core_.buffers()) register_buffer(name, t);
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out_features}));
}

AnalogLinear::InitialValues AnalogLinear::draw_initial_values(std::int64_t in_features, std::int64_t out_features,
                                                             bool bias, Generator& gen) {
  // Same draws as Linear (weights, then bias), then the tiles' noise seed.
  InitialValues v{Tensor::empty({out_features, in_features}), bias ? Tensor::empty({out_features}) : Tensor(), 0};
  default_layer_init_(v.weight, v.bias, gen);
  v.tile_seed = gen.next_u64();
  return v;
}

AnalogLinear::AnalogLinear(std::int64_t in_features, std::int64_t out_features, bool bias,
                           const RPUConfig& rpu_config, Generator& gen)
    : AnalogLinear(in_features, out_features, rpu_config, draw_initial_values(in_features, out_features, bias, gen)) {}

AnalogLinear::AnalogLinear(std::int64_t in_features, std::int64_t out_features, const RPUConfig& rpu_config,
                           const InitialValues& init)
    : AnalogLinear(in_features, out_features, init.bias.defined(), rpu_config, init.tile_seed) {
  set_weights(init.weight, init.bias);
}

std::shared_ptr<AnalogLinear> AnalogLinear::from_digital(const Linear& layer, const RPUConfig& rpu_config,
                                                         Generator& gen, bool realistic_read_write) {
  std::shared_ptr<AnalogLinear> a(new AnalogLinear(layer.in_features(), layer.out_features(),
                                                   layer.bias().defined(), rpu_config, gen.next_u64()));
  a->set_realistic_read_write(realistic_read_write);
  a->set_weights(layer.weight(), layer.bias());
  return a;
}

std::shared_ptr<Linear> AnalogLinear::to_digital(Generator& gen, bool force_exact) {
  auto d = std::make_shared<Linear>(in_features_, out_features_, bias_.defined(), gen);
  NoGradGuard no_grad;
  d->weight().detach().copy_(get_weights(force_exact));
  if (bias_.defined()) d->bias().detach().copy_(bias_);
  return d;
}

void AnalogLinear::set_weights(const Tensor& weights, const Tensor& bias, bool force_exact) {
  core_.set_weights(weights);
  if (bias.defined()) {
    if (!bias_.defined()) throw ValueError("AnalogLinear::set_weights: this layer has no bias");
    NoGradGuard no_grad;
    bias_.detach().copy_(bias);
  }
  if (realistic_read_write_ && !force_exact) program_own_analog_weights();
}


void AnalogLinear::reseed_own_analog(Generator& gen) {
  core_.reseed(gen.next_u64());
}

void AnalogLinear::program_own_analog_weights() {
  core_.program_weights();
  for (const auto& [name, t] : core_.programming_buffers()) register_buffer_if_absent(name, t);
}

void AnalogLinear::drift_own_analog_weights(double t_inference) {
  core_.drift_weights(t_inference);
  for (const auto& [name, t] : core_.programming_buffers()) register_buffer_if_absent(name, t);
}

Tensor AnalogLinear::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != in_features_)
    throw ShapeError("AnalogLinear: expected input [*, " + std::to_string(in_features_) + "], got " +
                     shape_str(x.shape()));
  if (x.dim() != 2) {
    // [*, in]: the leading dims are one batch of rows for the tiles, as aihwkit's layers do.
    Shape shape(x.shape().begin(), x.shape().end() - 1);
    shape.push_back(out_features_);
    return reshape(forward(reshape(x, {-1, in_features_})), shape);
  }
  Tensor y = core_.forward(x, is_training());
  return bias_.defined() ? add(y, bias_) : y;
}

nlohmann::json AnalogLinear::config() const {
  return {{"in_features", in_features_}, {"out_features", out_features_}, {"bias", bias_.defined()},
          {"rpu_config", rpu_config_.to_json()}, {"realistic_read_write", realistic_read_write_}};
}

}  // namespace aimc
