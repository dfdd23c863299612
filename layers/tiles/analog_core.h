// AnalogCore: the digital periphery around one TileArray, shared by
// AnalogLinear and AnalogConv (REFERENCE.md sections 2-3). For a batch of
// input rows x [M, in] (layer-input units) it computes
//
//   v = clip(x, ±r) / r            input range r (pre_post.input_range.enable)
//   z = TileArray(v)               analog MVM on the tiles (stored weights W_t)
//   y = z · r · s · a              s: weight-scaling (mapping) scales, a: learned out scaling
//
// and returns y [M, out] (no bias). The logical weights are W = a·s·W_t.
//
// Weight scaling (mapping.weight_scaling_omega > 0): set_weights(W) stores
// W_t = W / s with s = max|W| / omega (per output row with
// weight_scaling_columnwise; 0 -> 1), kept as the buffer "mapping_scales".
// The tile-weight gradient is the logical one divided by s (aihwkit's
// TorchInferenceTile: autograd gradient of W_t divided by s²), so one SGD
// step moves the logical weights as it would move an unscaled layer's.
//
// Learned out scaling (mapping.learn_out_scaling): parameter "out_scaling",
// [1] or [out] (out_scaling_columnwise), initialised to 1 and reset to 1 by
// set_weights (aihwkit's set_scales); its gradient is the autograd one.
//
// Input range (aihwkit InferenceTile): one scalar r per core, parameter
// "input_range" [1] when learn_input_range, else a buffer of that name.
// During the first init_from_data training batches (with std(x) > 0),
// r ← (r·k + init_std_alpha·std(x))/(k+1) with the unbiased std over the whole
// batch; k is the buffer "input_range_update_idx". Gradient (REFERENCE.md
// section 3), with dxc the gradient w.r.t. the clipped input:
//   g_r = gradient_scale·(r if gradient_relative)·(Σ min(0, dxc·[x ≥ r]) − Σ max(0, dxc·[x ≤ −r]))
//         + decay·r·[mean(|x| < r) > input_min_percentage]
// and x gets dxc where |x| ≤ r, 0 where clipped. The ·r after the tiles and
// the /r before them carry no gradient to r (aihwkit InferenceTile).
// Note: aihwkit applies gradient_scale only when gradient_relative (a bug:
// its documentation says it scales the gradient); we always apply it.
// A mapped layer (more than one tile) keeps one range per tile, as aihwkit's
// TileModuleArray: "input_range_<r>_<c>" [1], and "input_range_update_idx"
// [tiles]; tile (r, c) reads clip(x_c, ±r_rc)/r_rc of its input slice x_c
// (data-initialised from that slice), its output is scaled by r_rc before
// the row sums, and r_rc gets the gradient above from its own tile.
//
// Hardware-aware training (InferenceRPUConfig): in training (or in eval with
// modifier.enable_during_test) each tile runs its forward and backward on a
// modified copy of its weights (layers/tiles/weight_transforms.h; the stored
// weights stay clean and receive the gradient). post_update_step(), called
// after every optimizer step, applies the weight clip to every tile and then
// the remap to the whole [out, in] tile matrix, folding the remap scales into
// "mapping_scales" (which then exists, [1] or [out], even with omega = 0).
//
// Lightning-style forward (TorchInferenceRPUConfig, aihwkit-lightning
// conventions): forward() runs lightning_forward (layers/tiles/lightning_forward.h)
// on the tiles' stored weights instead of TileArray::forward; the tiles only
// store the weights. With the input range enabled there is one range per tile
// column, "input_range_<c>" [1] (parameter when learned, else buffer), each
// data-initialised from its own input slice as above, and
// "input_range_update_idx" is [columns]. The config's weight clip is applied
// by post_update_step() to the whole [out, in] matrix, as lightning (not per
// tile); a modifier with enable_during_test is turned off with a warning on
// stderr when the core is built; weight scaling and learned out scaling are
// not part of this convention (ConfigError).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "layers/config/rpu_config.h"
#include "layers/tiles/lightning_forward.h"
#include "layers/tiles/tile_array.h"
#include "layers/tiles/weight_transforms.h"

namespace aimc {

// The mapping and pre/post-processing parameters of any RPU config family.
const MappingParameter& rpu_mapping(const RPUConfig& rpu_config);
const PrePostProcessingParameter& rpu_pre_post(const RPUConfig& rpu_config);
// The largest tile a layer is mapped onto, {max_out, max_in} (0: no limit):
// the mapping's max sizes with tile_array_class "TileModuleArray", none
// (one tile of the layer's full size) with tile_array_class null.
std::pair<int, int> tile_size_limits(const RPUConfig& rpu_config);

// The forward and backward IOParameters a config gives its tiles (exact for
// FloatingPointRPUConfig); ConfigError for what analog layers cannot do yet
// (TorchInferenceRPUConfig without with_core_periphery, digital_bias = false, weight_scaling_lr_compensation,
// manage_output_clipping, weight clip / modifier / remap). Without
// with_core_periphery (a layer on bare TileArrays) also ConfigError for
// weight scaling, learned out scaling and input ranges, which need AnalogCore.
std::pair<IOParameters, IOParameters> tile_io_parameters(const RPUConfig& rpu_config,
                                                         bool with_core_periphery = false);

// Devices: the core computes where its tiles are (Module::to moves them with
// its ranges and scales). On a GPU, forward, backward and post_update_step
// run there (TileArray's CUDA path, the CUDA input-range kernels, the weight
// transforms' CUDA twins; host scalars such as r come over as one small
// copy); so does the lightning-style forward (the differentiable op of
// lightning_forward.h with its CUDA pieces; without gradients the fused
// kernel).
class AnalogCore {
 public:
  using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

  // Tiles as TileArray(grid, tile_io_parameters(rpu_config), seed, first_tile_id);
  // the stored weights start at 0, the scales at 1, r at init_value.
  AnalogCore(const TileGrid& grid, const RPUConfig& rpu_config, std::uint64_t seed,
             std::uint64_t first_tile_id = 0);

  // x_rows [M, in] float32 -> [M, out], differentiable w.r.t. x_rows, the
  // tile weights, input_range (when learned) and out_scaling. training: train
  // mode (input-range data initialisation, tiles' is_test = !training).
  Tensor forward(const Tensor& x_rows, bool training);

  // Logical weights [out, in]: out_scaling · mapping_scales · W_t (a copy).
  Tensor get_weights() const;
  // The same, read the way hardware would: each tile's matrix estimated by
  // least squares from its noisy forward (layers/tiles/realistic_read.h).
  // Advances the tiles' forward noise streams. CPU only (DeviceError on a GPU).
  Tensor read_weights_realistic();
  // Stores W (see the file comment): recomputes the mapping scales when
  // omega > 0 and resets out_scaling to 1.
  void set_weights(const Tensor& weights);

  // Inference programming of every tile (InferenceRPUConfig with a noise
  // model; nothing otherwise): see AnalogTile and layers/tiles/tile_programming.h.
  // set_weights and post_update_step forget the programming.
  void program_weights();
  void drift_weights(double t_inference);
  // The programming state of every tile programmed so far,
  // "tile_<r>_<c>_<name>" (TileProgramming::buffers()); the owning Module
  // registers these after programming (register_buffer_if_absent).
  NamedTensorList programming_buffers() const;
  // A new chip (AnalogTile::reseed on every tile with this seed) and the
  // core's own streams (modifier, lightning) restarted.
  void reseed(std::uint64_t seed);
  // Every stream of the core's passes at draw · stride blocks: the tiles'
  // forward and backward counters, the weight modifier's and the lightning
  // forward's (Module::position_streams).
  void position_streams(std::uint64_t draw, std::uint64_t stride);

  // Called by the layer after each optimizer step; runs the function given to
  // The config's weight clip and remap (see the file comment), then the
  // function given to set_post_update_step, if any.
  void post_update_step();
  void set_post_update_step(std::function<void(AnalogCore&)> fn) { post_update_step_ = std::move(fn); }

  // Trainable tensors, to be registered by the owning Module in this order:
  // "tile_<r>_<c>" (every tile's stored weights), "input_range" (when enabled
  // and learned; lightning: "input_range_<c>" per tile column), "out_scaling"
  // (when learn_out_scaling).
  NamedTensorList parameters() const;
  // State: every tile's state entries, "tile_<r>_<c>_<name>" (AnalogTile::state()),
  // "mapping_scales" (omega > 0), "input_range" (enabled, not learned),
  // "input_range_update_idx" (enabled).
  NamedTensorList buffers() const;

  TileArray& tile_array() { return tiles_; }
  const TileArray& tile_array() const { return tiles_; }
  std::int64_t out_size() const { return tiles_.out_size(); }
  std::int64_t in_size() const { return tiles_.in_size(); }
  const MappingParameter& mapping() const { return mapping_; }
  const InputRangeParameter& input_range_parameter() const { return input_range_param_; }
  // Undefined when the feature is off.
  const Tensor& input_range() const { return input_range_; }
  const Tensor& input_range_update_idx() const { return input_range_update_idx_; }
  const Tensor& mapping_scales() const { return mapping_scales_; }
  const Tensor& out_scaling() const { return out_scaling_; }
  // TorchInferenceRPUConfig: the lightning-style forward is used.
  bool lightning() const { return lightning_; }
  // Per-tile input ranges (mapped InferenceRPUConfig layers, row-major over
  // the grid) or per tile column (lightning); empty when off or single.
  const std::vector<Tensor>& input_ranges() const { return input_ranges_; }

 private:
  void init_input_range_from_data(const Tensor& x);
  // The state-dict name of input_ranges_[i].
  std::string input_range_name(std::size_t i) const;
  // w [out, in] tile units -> logical units (rows times mapping scales and out scaling).
  Tensor apply_digital_scales(Tensor w) const;

  TileArray tiles_;
  MappingParameter mapping_;
  InputRangeParameter input_range_param_;
  Tensor input_range_;             // [1]
  Tensor input_range_update_idx_;  // [1], batches used for the data initialisation
  Tensor mapping_scales_;          // [1] or [out]
  Tensor out_scaling_;             // [1] or [out]
  WeightClipParameter clip_;
  WeightModifierParameter modifier_;
  WeightRemapParameter remap_;
  std::uint64_t modifier_counter_ = 0;  // Philox blocks used by the modifier so far
  std::function<void(AnalogCore&)> post_update_step_;
  bool lightning_ = false;
  TorchInferenceRPUConfig lightning_config_;
  std::vector<Tensor> input_ranges_;   // one [1] per tile (mapped) or tile column (lightning)
  std::uint64_t lightning_counter_ = 0;  // Philox blocks used by the lightning forward
};

}  // namespace aimc
