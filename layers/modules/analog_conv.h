// AnalogConv1d / AnalogConv2d / AnalogConv3d: convolutions whose matrix
// products run on analog tiles (layers/tiles/). The input is unfolded with
// im2col into rows [N*L, C_in*prod(kernel)] (one row per output position);
// group g's column block goes through its own TileArray holding the weights
// [C_out/groups, (C_in/groups)*prod(kernel)], the groups' outputs are
// concatenated, the bias is added digitally (mapping.digital_bias) and the
// rows are folded back into [N, C_out, *out].
//
// Mapping (REFERENCE.md section 2): a group's input side is split along whole
// input channels (the prod(kernel) weights of one channel stay on one tile);
// ConfigError when one channel's kernel exceeds mapping.max_input_size.
// Tile parameters are named "g{group}_tile_{r}_{c}"; the bias "bias".
//
// Supported RPU configs: as AnalogLinear (tile_io_parameters).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/conv.h"
#include "layers/modules/module.h"
#include "layers/tiles/analog_core.h"

namespace aimc {

class Generator;

class AnalogConvNd : public Module {
 public:
  // Weights drawn like ConvNd's (PyTorch default init) from gen, then the
  // tiles' noise seed. dims: 1, 2 or 3. ConfigError on bad arguments, a
  // padding_mode other than "zeros", or a config the tiles cannot run.
  AnalogConvNd(int dims, std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const ConvOptions& options, const RPUConfig& rpu_config, Generator& gen);

  // An analog copy of a digital convolution (same geometry, weights and bias);
  // only the tiles' noise seed is drawn from gen.
  static std::shared_ptr<AnalogConvNd> from_digital(const ConvNd& layer, const RPUConfig& rpu_config,
                                                    Generator& gen);
  // A digital ConvNd with this layer's (exact) weights and bias.
  std::shared_ptr<ConvNd> to_digital(Generator& gen) const;

  Tensor forward(const Tensor& x) override;

  // The exact weights [C_out, C_in/groups, *kernel] held by the tiles (a copy).
  Tensor get_weights() const;
  // realistic: read back through the noisy tiles (least squares).
  Tensor get_weights(bool realistic);
  Tensor get_bias() const { return bias_; }  // undefined without bias
  // weights [C_out, C_in/groups, *kernel]; bias [C_out] (optional).
  void set_weights(const Tensor& weights, const Tensor& bias = Tensor());
  // realistic: the weights are then programmed onto the devices through the
  // config's noise model (eval-mode forwards use the programmed weights).
  void set_weights(const Tensor& weights, const Tensor& bias, bool realistic);

  // All tiles, group by group.
  std::vector<AnalogTile*> analog_tiles();
  const std::vector<AnalogCore>& analog_cores() const { return groups_; }  // one per group
  // The tile input size of one group: (C_in/groups) * prod(kernel).
  std::int64_t get_tile_size() const;

  const RPUConfig& rpu_config() const { return rpu_config_; }
  int spatial_dims() const { return dims_; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const ConvGeometry& geometry() const { return geometry_; }

  std::string type_name() const override { return "AnalogConv" + std::to_string(dims_) + "d"; }
  nlohmann::json config() const override;

 protected:
  void post_update() override;
  void program_own_analog_weights() override;
  void drift_own_analog_weights(double t_inference) override;
  void reseed_own_analog(Generator& gen) override;

 private:
  // Registers group g's programming state as "g<g>_tile_<r>_<c>_<name>".
  void register_group_programming(std::size_t g);
  // [C_out, C_in/groups, *kernel] from each group's [C_out/groups, tile size] matrix.
  Tensor assemble_weights(const std::function<Tensor(std::size_t group)>& group_weights) const;
  // A digital layer with the initial weights (ConvNd checks the arguments
  // and draws them) and the tiles' noise seed, drawn in that order.
  struct InitialValues {
    std::shared_ptr<ConvNd> layer;
    std::uint64_t tile_seed;
  };
  static InitialValues draw_initial_values(int dims, std::int64_t in_channels, std::int64_t out_channels,
                                           const Sizes& kernel, const ConvOptions& options, Generator& gen);
  AnalogConvNd(const InitialValues& init, const RPUConfig& rpu_config);
  AnalogConvNd(const ConvNd& layer, const RPUConfig& rpu_config, std::uint64_t tile_seed);
  ConvOptions options() const;

  int dims_;
  std::int64_t in_channels_, out_channels_;
  ConvGeometry geometry_;
  RPUConfig rpu_config_;
  std::vector<AnalogCore> groups_;
  Tensor bias_;
};

class AnalogConv1d : public AnalogConvNd {
 public:
  AnalogConv1d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const RPUConfig& rpu_config, Generator& gen, const ConvOptions& options = {})
      : AnalogConvNd(1, in_channels, out_channels, kernel, options, rpu_config, gen) {}
};

class AnalogConv2d : public AnalogConvNd {
 public:
  AnalogConv2d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const RPUConfig& rpu_config, Generator& gen, const ConvOptions& options = {})
      : AnalogConvNd(2, in_channels, out_channels, kernel, options, rpu_config, gen) {}
};

class AnalogConv3d : public AnalogConvNd {
 public:
  AnalogConv3d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const RPUConfig& rpu_config, Generator& gen, const ConvOptions& options = {})
      : AnalogConvNd(3, in_channels, out_channels, kernel, options, rpu_config, gen) {}
};

}  // namespace aimc
