// AnalogConv1d / AnalogConv2d / AnalogConv3d and their ...Mapped forms:
// convolutions whose matrix
// products run on analog tiles (layers/tiles/). The input is unfolded with
// im2col into rows [N*L, C_in*prod(kernel)] (one row per output position);
// group g's column block goes through its own TileArray holding the weights
// [C_out/groups, (C_in/groups)*prod(kernel)], the groups' outputs are
// concatenated, the bias is added digitally (mapping.digital_bias) and the
// rows are folded back into [N, C_out, *out].
//
// Mapping, as aihwkit: the plain classes (what convert_to_analog makes) split
// a group's unfolded weight matrix by element, as a linear layer does
// (Conv2d(21, 8, 5), max_input_size 512: inputs [263, 262]); the Mapped
// classes (convert_to_analog_mapped) split along whole input channels, so the
// prod(kernel) weights of one channel stay on one tile ([275, 250]), with a
// ConfigError when one channel's kernel exceeds mapping.max_input_size.
// Tile parameters are named "g{group}_tile_{r}_{c}"; the bias "bias".
//
// Supported RPU configs: as AnalogLinear (tile_io_parameters).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  // channel_split: the Mapped classes' split along whole input channels.
  AnalogConvNd(int dims, std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const ConvOptions& options, const RPUConfig& rpu_config, Generator& gen, bool channel_split = false);

  // An analog copy of a digital convolution (same geometry, weights and bias);
  // only the tiles' noise seed is drawn from gen.
  // With realistic_read_write the weights are written realistically (programmed);
  // with channel_split the copy is the Mapped form.
  static std::shared_ptr<AnalogConvNd> from_digital(const ConvNd& layer, const RPUConfig& rpu_config,
                                                    Generator& gen, bool realistic_read_write = false,
                                                    bool channel_split = false);
  // A digital ConvNd with this layer's weights (get_weights()) and bias.
  std::shared_ptr<ConvNd> to_digital(Generator& gen, bool force_exact = false);

  Tensor forward(const Tensor& x) override;

  // aihwkit's use_indexed: how patches reach the tiles. Explicit (false)
  // unfolds the whole batch (im2col) once; indexed (true) unfolds and runs
  // the batch a few images at a time in eval mode, so at most about
  // chunk_elements (floats) of patches exist at once whatever the batch
  // (training always unfolds the whole batch: one weight modifier and one
  // input-range update per batch). The analog periphery acts per patch, so
  // noise-free results are the same; the noise is drawn per call, so noisy
  // outputs differ in their draws, not in their statistics. Default
  // (nullopt), as aihwkit: explicit on the CPU, indexed on CUDA (decided per
  // forward by the input's device, so a layer moved with Module::to follows).
  void set_use_indexed(std::optional<bool> use_indexed, std::int64_t chunk_elements = std::int64_t(1) << 22);
  // What a forward on the layer's current device uses.
  bool use_indexed() const { return use_indexed_.value_or(device().is_cuda()); }

  // Weights [C_out, C_in/groups, *kernel] and bias [C_out] (optional), read
  // and written as AnalogLinear's: realistically with the layer's
  // realistic_read_write flag unless force_exact.
  Tensor get_weights(bool force_exact = false) {
    return realistic_read_write_ && !force_exact ? realistic_weights() : exact_weights();
  }
  void set_weights(const Tensor& weights, const Tensor& bias = Tensor(), bool force_exact = false);
  bool realistic_read_write() const { return realistic_read_write_; }
  void set_realistic_read_write(bool on) { realistic_read_write_ = on; }
  // The exact weights held by the tiles (a copy) and the realistic read.
  Tensor exact_weights() const;
  Tensor realistic_weights();
  Tensor get_bias() const { return bias_; }  // undefined without bias

  // All tiles, group by group.
  const std::vector<AnalogCore>& analog_cores() const { return groups_; }  // one per group
  // The tile input size of one group: (C_in/groups) * prod(kernel).
  std::int64_t get_tile_size() const;

  const RPUConfig& rpu_config() const { return rpu_config_; }
  // aihwkit's analog_tile_class: what this layer's tiles are.
  AnalogTileClass analog_tile_class() const { return rpu_config_.tile_class(); }
  int spatial_dims() const { return dims_; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const ConvGeometry& geometry() const { return geometry_; }

  // True for the Mapped classes (tiles split along whole input channels).
  bool channel_split() const { return channel_split_; }

  std::string type_name() const override {
    return "AnalogConv" + std::to_string(dims_) + "d" + (channel_split_ ? "Mapped" : "");
  }
  nlohmann::json config() const override;

 protected:
  void post_update() override;
  std::vector<AnalogTile*> own_analog_tiles() override;
  void program_own_analog_weights() override;
  void drift_own_analog_weights(double t_inference) override;
  void reseed_own_analog(Generator& gen) override;
  void position_own_streams(std::uint64_t draw) override {
    for (auto& core : groups_) core.position_streams(draw, kDrawStride);
  }

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
  AnalogConvNd(const InitialValues& init, const RPUConfig& rpu_config, bool channel_split);
  AnalogConvNd(const ConvNd& layer, const RPUConfig& rpu_config, std::uint64_t tile_seed, bool channel_split);
  ConvOptions options() const;

  int dims_;
  bool channel_split_;
  std::int64_t in_channels_, out_channels_;
  ConvGeometry geometry_;
  RPUConfig rpu_config_;
  std::vector<AnalogCore> groups_;
  Tensor bias_;
  bool realistic_read_write_ = false;
  std::optional<bool> use_indexed_;
  std::int64_t indexed_chunk_elements_ = std::int64_t(1) << 22;

  // The explicit path on a batch of images.
  Tensor forward_unfolded(const Tensor& x);
};

// The plain classes: tiles split by element (aihwkit's AnalogConv1d/2d/3d).
template <int Dims, bool ChannelSplit>
class AnalogConv : public AnalogConvNd {
 public:
  AnalogConv(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel, const RPUConfig& rpu_config,
             Generator& gen, const ConvOptions& options = {})
      : AnalogConvNd(Dims, in_channels, out_channels, kernel, options, rpu_config, gen, ChannelSplit) {}
};
using AnalogConv1d = AnalogConv<1, false>;
using AnalogConv2d = AnalogConv<2, false>;
using AnalogConv3d = AnalogConv<3, false>;

// aihwkit's AnalogConv1dMapped / 2dMapped / 3dMapped: tiles split along whole
// input channels. (AnalogLinearMapped is AnalogLinear: a linear layer splits
// by element either way.)
using AnalogConv1dMapped = AnalogConv<1, true>;
using AnalogConv2dMapped = AnalogConv<2, true>;
using AnalogConv3dMapped = AnalogConv<3, true>;

}  // namespace aimc
