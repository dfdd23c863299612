// AnalogLinear: a fully connected layer whose matrix product runs on analog
// tiles (layers/tiles/). y = AnalogCore(x) + b for x [*, in] (leading dims
// are one batch of rows), with the bias added digitally
// (mapping.digital_bias). The weight matrix [out, in] is cut into tiles by the
// RPU config's mapping (max_input_size / max_output_size); every tile is a
// complete crossbar with its own periphery and noise. The core adds the
// digital periphery: input range, weight scaling, learned out scaling.
//
// Supported RPU configs: InferenceRPUConfig (forward/backward IOParameters)
// and FloatingPointRPUConfig (exact float tiles). Clip/modifier/remap and
// TorchInferenceRPUConfig are not implemented yet and raise ConfigError
// (see tile_io_parameters in layers/tiles/analog_core.h).
#pragma once

#include <cstdint>
#include <memory>

#include "layers/config/rpu_config.h"
#include "layers/modules/linear.h"
#include "layers/modules/module.h"
#include "layers/tiles/analog_core.h"

namespace aimc {

class Generator;

class AnalogLinear : public Module {
 public:
  // Weights drawn like Linear's (PyTorch default init) from gen; the tiles'
  // noise streams are seeded from gen too.
  AnalogLinear(std::int64_t in_features, std::int64_t out_features, bool bias, const RPUConfig& rpu_config,
               Generator& gen);

  // An analog copy of a digital layer (same weights and bias); with
  // realistic_read_write the weights are written realistically (programmed).
  static std::shared_ptr<AnalogLinear> from_digital(const Linear& layer, const RPUConfig& rpu_config,
                                                    Generator& gen, bool realistic_read_write = false);
  // A digital Linear with this layer's weights (get_weights(), so read
  // realistically with realistic_read_write) and bias.
  std::shared_ptr<Linear> to_digital(Generator& gen, bool force_exact = false);

  Tensor forward(const Tensor& x) override;

  // Weights as aihwkit's layers read and write them: with the layer's
  // realistic_read_write flag (off by default) get_weights reads back through
  // the noisy tiles (least squares, realistic_weights()) and set_weights
  // programs the devices through the config's noise model (eval-mode
  // forwards then use the programmed weights); force_exact overrides the flag.
  // Units: logical weights [out, in] (tile weights times the digital scales).
  Tensor get_weights(bool force_exact = false) {
    return realistic_read_write_ && !force_exact ? realistic_weights() : exact_weights();
  }
  void set_weights(const Tensor& weights, const Tensor& bias = Tensor(), bool force_exact = false);
  bool realistic_read_write() const { return realistic_read_write_; }
  void set_realistic_read_write(bool on) { realistic_read_write_ = on; }
  // The exact weights (a copy) and the realistic read, whatever the flag.
  Tensor exact_weights() const { return core_.get_weights(); }
  Tensor realistic_weights() { return core_.read_weights_realistic(); }
  Tensor get_bias() const { return bias_; }

  const TileArray& tile_array() const { return core_.tile_array(); }
  AnalogCore& analog_core() { return core_; }
  const AnalogCore& analog_core() const { return core_; }
  const RPUConfig& rpu_config() const { return rpu_config_; }
  // aihwkit's analog_tile_class: what this layer's tiles are.
  AnalogTileClass analog_tile_class() const { return rpu_config_.tile_class(); }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  std::string type_name() const override { return "AnalogLinear"; }
  nlohmann::json config() const override;

 protected:
  // Module::post_update_step() (after each optimizer step): the core's weight clip / remap.
  void post_update() override { core_.post_update_step(); }
  std::vector<AnalogTile*> own_analog_tiles() override { return core_.tile_array().tiles(); }
  void program_own_analog_weights() override;
  void drift_own_analog_weights(double t_inference) override;
  void reseed_own_analog(Generator& gen) override;
  void position_own_streams(std::uint64_t draw) override { core_.position_streams(draw, kDrawStride); }

 private:
  struct InitialValues {
    Tensor weight, bias;
    std::uint64_t tile_seed;
  };
  static InitialValues draw_initial_values(std::int64_t in_features, std::int64_t out_features, bool bias,
                                           Generator& gen);
  AnalogLinear(std::int64_t in_features, std::int64_t out_features, const RPUConfig& rpu_config,
               const InitialValues& init);
  AnalogLinear(std::int64_t in_features, std::int64_t out_features, bool bias, const RPUConfig& rpu_config,
               std::uint64_t tile_seed);

  std::int64_t in_features_, out_features_;
  RPUConfig rpu_config_;
  AnalogCore core_;
  Tensor bias_;
  bool realistic_read_write_ = false;
};

// tile_io_parameters(rpu_config) is declared in layers/tiles/analog_core.h.

// aihwkit's AnalogLinearMapped: the same class (see AnalogConv2dMapped).
using AnalogLinearMapped = AnalogLinear;

}  // namespace aimc
