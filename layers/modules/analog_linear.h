// AnalogLinear: a fully connected layer whose matrix product runs on analog
// tiles (layers/tiles/). y = AnalogCore(x) + b, with the bias added digitally
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

  // An analog copy of a digital layer (same weights and bias).
  static std::shared_ptr<AnalogLinear> from_digital(const Linear& layer, const RPUConfig& rpu_config,
                                                    Generator& gen);
  // A digital Linear with this layer's (exact) weights and bias.
  std::shared_ptr<Linear> to_digital(Generator& gen) const;

  Tensor forward(const Tensor& x) override;

  // The exact logical weights [out, in] (tile weights times the digital
  // scales, a copy) and the bias.
  Tensor get_weights() const { return core_.get_weights(); }
  // realistic: read back through the noisy tiles (least squares, as aihwkit's
  // realistic read); otherwise the exact weights.
  Tensor get_weights(bool realistic) { return realistic ? core_.read_weights_realistic() : core_.get_weights(); }
  Tensor get_bias() const { return bias_; }
  void set_weights(const Tensor& weights, const Tensor& bias = Tensor());
  // realistic: the weights are then programmed onto the devices through the
  // config's noise model (eval-mode forwards use the programmed weights).
  void set_weights(const Tensor& weights, const Tensor& bias, bool realistic);

  std::vector<AnalogTile*> analog_tiles() { return core_.tile_array().tiles(); }
  const TileArray& tile_array() const { return core_.tile_array(); }
  AnalogCore& analog_core() { return core_; }
  const AnalogCore& analog_core() const { return core_; }
  const RPUConfig& rpu_config() const { return rpu_config_; }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  std::string type_name() const override { return "AnalogLinear"; }
  nlohmann::json config() const override;

 protected:
  // Module::post_update_step() (after each optimizer step): the core's weight clip / remap.
  void post_update() override { core_.post_update_step(); }
  void program_own_analog_weights() override;
  void drift_own_analog_weights(double t_inference) override;
  void reseed_own_analog(Generator& gen) override;

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
};

// tile_io_parameters(rpu_config) is declared in layers/tiles/analog_core.h.

}  // namespace aimc
