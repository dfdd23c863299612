// AnalogConv1d / 2d / 3d and their Mapped forms (see analog_conv.h).
#include "layers/modules/analog_conv.h"

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "layers/modules/analog_linear.h"

namespace aimc {
namespace {

std::int64_t volume(const std::vector<std::int64_t>& sizes) {
  std::int64_t v = 1;
  for (auto s : sizes) v *= s;
  return v;
}

}  // namespace

AnalogConvNd::InitialValues AnalogConvNd::draw_initial_values(int dims, std::int64_t in_channels,
                                                              std::int64_t out_channels, const Sizes& kernel,
                                                              const ConvOptions& options, Generator& gen) {
  if (options.padding_mode != "zeros")
    throw ConfigError("AnalogConv" + std::to_string(dims) + "d: padding_mode '" + options.padding_mode +
                      "' is not supported (only 'zeros')");
  InitialValues v;
  v.layer = std::make_shared<ConvNd>(dims, in_channels, out_channels, kernel, options, gen);
  v.tile_seed = gen.next_u64();
  return v;
}

AnalogConvNd::AnalogConvNd(int dims, std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
                           const ConvOptions& options, const RPUConfig& rpu_config, Generator& gen,
                           bool channel_split)
    : AnalogConvNd(draw_initial_values(dims, in_channels, out_channels, kernel, options, gen), rpu_config,
                   channel_split) {}

AnalogConvNd::AnalogConvNd(const InitialValues& init, const RPUConfig& rpu_config, bool channel_split)
    : AnalogConvNd(*init.layer, rpu_config, init.tile_seed, channel_split) {}

AnalogConvNd::AnalogConvNd(const ConvNd& layer, const RPUConfig& rpu_config, std::uint64_t tile_seed,
                           bool channel_split)
    : dims_(layer.spatial_dims()),
      channel_split_(channel_split),
      in_channels_(layer.in_channels()),
      out_channels_(layer.out_channels()),
      geometry_(layer.geometry()),
      rpu_config_(rpu_config) {
  const auto [max_out, max_in] = tile_size_limits(rpu_config_);
  const std::int64_t groups = geometry_.groups;
  const std::int64_t kernel_volume = volume(geometry_.kernel);
  std::uint64_t first_tile_id = 0;
  groups_.reserve(static_cast<std::size_t>(groups));
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t group_out = out_channels_ / groups, group_in = in_channels_ / groups;
    groups_.emplace_back(channel_split_ ? make_conv_tile_grid(group_out, group_in, kernel_volume, max_out, max_in)
                                        : make_tile_grid(group_out, group_in * kernel_volume, max_out, max_in),
                         rpu_config_, tile_seed, first_tile_id);
    first_tile_id += static_cast<std::uint64_t>(groups_.back().tile_array().grid().tiles());
  }
  for (std::int64_t g = 0; g < groups; ++g) {
    // Appended piece by piece: "g" + to_string(g) trips GCC 12's -Wrestrict.
    std::string prefix = "g";
    prefix += std::to_string(g);
    prefix += "_";
    for (const auto& [name, t] : groups_[g].parameters()) register_parameter(prefix + name, t);
    for (const auto& [name, t] : groups_[g].buffers()) register_buffer(prefix + name, t);
  }
  if (layer.bias().defined()) bias_ = register_parameter("bias", Tensor::zeros({out_channels_}));
  set_weights(layer.weight(), layer.bias());
}

std::shared_ptr<AnalogConvNd> AnalogConvNd::from_digital(const ConvNd& layer, const RPUConfig& rpu_config,
                                                         Generator& gen, bool realistic_read_write,
                                                         bool channel_split) {
  std::shared_ptr<AnalogConvNd> a(new AnalogConvNd(layer, rpu_config, gen.next_u64(), channel_split));
  if (realistic_read_write) {
    // The constructor wrote the weights exactly; write them again realistically.
    a->set_realistic_read_write(true);
    a->set_weights(layer.weight(), layer.bias());
  }
  return a;
}

ConvOptions AnalogConvNd::options() const {
  ConvOptions o;
  o.stride = geometry_.stride;
  o.padding = geometry_.padding;
  o.dilation = geometry_.dilation;
  o.groups = geometry_.groups;
  o.bias = bias_.defined();
  return o;
}

std::shared_ptr<ConvNd> AnalogConvNd::to_digital(Generator& gen, bool force_exact) {
  auto d = std::make_shared<ConvNd>(dims_, in_channels_, out_channels_, Sizes(geometry_.kernel), options(), gen);
  NoGradGuard no_grad;
  d->weight().detach().copy_(get_weights(force_exact));
  if (bias_.defined()) d->bias().detach().copy_(bias_);
  return d;
}

std::int64_t AnalogConvNd::get_tile_size() const {
  return in_channels_ / geometry_.groups * volume(geometry_.kernel);
}

Tensor AnalogConvNd::exact_weights() const {
  return assemble_weights([this](std::size_t g) { return groups_[g].get_weights(); });
}

Tensor AnalogConvNd::realistic_weights() {
  return assemble_weights([this](std::size_t g) { return groups_[g].read_weights_realistic(); });
}

Tensor AnalogConvNd::assemble_weights(const std::function<Tensor(std::size_t)>& group_weights) const {
  const std::int64_t per_group = out_channels_ / geometry_.groups;
  Tensor w = Tensor::empty({out_channels_, get_tile_size()});
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const auto row0 = static_cast<std::int64_t>(g) * per_group;
    w.slice(0, row0, row0 + per_group).copy_(group_weights(g));
  }
  Shape shape{out_channels_, in_channels_ / geometry_.groups};
  for (auto k : geometry_.kernel) shape.push_back(k);
  return w.reshape(shape);
}

void AnalogConvNd::set_weights(const Tensor& weights, const Tensor& bias, bool force_exact) {
  Shape shape{out_channels_, in_channels_ / geometry_.groups};
  for (auto k : geometry_.kernel) shape.push_back(k);
  if (weights.shape() != shape)
    throw ShapeError(type_name() + "::set_weights: got weights " + shape_str(weights.shape()) + ", expected " +
                     shape_str(shape));
  if (bias.defined()) {
    if (!bias_.defined()) throw ValueError(type_name() + "::set_weights: this layer has no bias");
    if (bias.shape() != Shape{out_channels_})
      throw ShapeError(type_name() + "::set_weights: got bias " + shape_str(bias.shape()) + ", expected " +
                       shape_str({out_channels_}));
  }
  NoGradGuard no_grad;
  const Tensor flat = weights.detach().contiguous().reshape({out_channels_, get_tile_size()});
  const std::int64_t per_group = out_channels_ / geometry_.groups;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const auto row0 = static_cast<std::int64_t>(g) * per_group;
    groups_[g].set_weights(flat.slice(0, row0, row0 + per_group));
  }
  if (bias.defined()) bias_.detach().copy_(bias);
  if (realistic_read_write_ && !force_exact) program_own_analog_weights();
}

std::vector<AnalogTile*> AnalogConvNd::own_analog_tiles() {
  std::vector<AnalogTile*> out;
  for (auto& group : groups_)
    for (AnalogTile* t : group.tile_array().tiles()) out.push_back(t);
  return out;
}

Tensor AnalogConvNd::forward(const Tensor& x) {
  if (x.dim() != dims_ + 2 || x.size(1) != in_channels_)
    throw ShapeError(type_name() + ": expected input [N, " + std::to_string(in_channels_) + ", " +
                     std::to_string(dims_) + " spatial dims], got " + shape_str(x.shape()));
  if (!use_indexed_.value_or(x.device().is_cuda()) || is_training()) return forward_unfolded(x);
  // Indexed: a few images at a time, each chunk's patches freed before the next.
  const std::vector<std::int64_t> spatial(x.shape().begin() + 2, x.shape().end());
  std::int64_t patches_per_image = 1;
  for (auto s : conv_output_size(spatial, geometry_)) patches_per_image *= s;
  const std::int64_t per_image = patches_per_image * in_channels_ * volume(geometry_.kernel);
  const std::int64_t images = std::max<std::int64_t>(1, indexed_chunk_elements_ / std::max<std::int64_t>(per_image, 1));
  if (images >= x.size(0)) return forward_unfolded(x);
  std::vector<Tensor> outputs;
  for (std::int64_t lo = 0; lo < x.size(0); lo += images)
    outputs.push_back(forward_unfolded(slice(x, 0, lo, std::min(x.size(0), lo + images))));
  return concat(outputs, 0);
}

void AnalogConvNd::set_use_indexed(std::optional<bool> use_indexed, std::int64_t chunk_elements) {
  if (chunk_elements < 1)
    throw ValueError(type_name() + "::set_use_indexed: chunk_elements must be >= 1, got " +
                     std::to_string(chunk_elements));
  use_indexed_ = use_indexed;
  indexed_chunk_elements_ = chunk_elements;
}

Tensor AnalogConvNd::forward_unfolded(const Tensor& x) {
  const std::vector<std::int64_t> spatial(x.shape().begin() + 2, x.shape().end());
  const std::vector<std::int64_t> out_size = conv_output_size(spatial, geometry_);
  const bool training = is_training();
  // [N*L, C_in*K]; group g's inputs are the contiguous column block g.
  const Tensor cols = im2col(x, geometry_);
  Tensor rows;
  if (groups_.size() == 1) {
    rows = groups_[0].forward(cols, training);
  } else {
    const std::int64_t width = get_tile_size();
    std::vector<Tensor> outputs;
    outputs.reserve(groups_.size());
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const auto col0 = static_cast<std::int64_t>(g) * width;
      outputs.push_back(groups_[g].forward(slice(cols, 1, col0, col0 + width).contiguous(), training));
    }
    rows = concat(outputs, 1);
  }
  if (bias_.defined()) rows = add(rows, bias_);
  return rows_to_channels(rows, x.size(0), out_size);
}

void AnalogConvNd::reseed_own_analog(Generator& gen) {
  const std::uint64_t seed = gen.next_u64();
  for (auto& core : groups_) core.reseed(seed);
}

void AnalogConvNd::program_own_analog_weights() {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].program_weights();
    register_group_programming(g);
  }
}

void AnalogConvNd::drift_own_analog_weights(double t_inference) {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].drift_weights(t_inference);
    register_group_programming(g);
  }
}

void AnalogConvNd::register_group_programming(std::size_t g) {
  std::string prefix = "g";
  prefix += std::to_string(g);
  prefix += "_";
  for (const auto& [name, t] : groups_[g].programming_buffers()) register_buffer_if_absent(prefix + name, t);
}

void AnalogConvNd::post_update() {
  for (auto& core : groups_) core.post_update_step();
}

nlohmann::json AnalogConvNd::config() const {
  return {{"in_channels", in_channels_},   {"out_channels", out_channels_},
          {"kernel_size", geometry_.kernel}, {"stride", geometry_.stride},
          {"padding", geometry_.padding},  {"dilation", geometry_.dilation},
          {"groups", geometry_.groups},    {"bias", bias_.defined()},
          {"padding_mode", "zeros"},       {"rpu_config", rpu_config_.to_json()},
          {"use_indexed", use_indexed_ ? nlohmann::json(*use_indexed_) : nlohmann::json(nullptr)},
          {"realistic_read_write", realistic_read_write_}};
}

}  // namespace aimc
