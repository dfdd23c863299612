// AnalogLinear: a fully connected layer whose matrix product runs on analog
// tiles (layers/tiles/). y = TileArray(x) + b, with the bias added digitally
// (mapping.digital_bias). The weight matrix [out, in] is cut into tiles by the
// RPU config's mapping (max_input_size / max_output_size); every tile is a
// complete crossbar with its own periphery and noise.
//
// Supported RPU configs: InferenceRPUConfig (forward/backward IOParameters)
// and FloatingPointRPUConfig (exact float tiles). Weight scaling, input
// ranges, clip/modifier/remap and TorchInferenceRPUConfig are not
// implemented yet and raise ConfigError when requested.
#pragma once

#include <cstdint>
#include <memory>

#include "layers/config/rpu_config.h"
#include "layers/modules/linear.h"
#include "layers/modules/module.h"
#include "layers/tiles/tile_array.h"

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

  // The exact weights [out, in] held by the tiles (a copy) and the bias.
  Tensor get_weights() const { return tiles_.get_weights(); }
  Tensor get_bias() const { return bias_; }
  void set_weights(const Tensor& weights, const Tensor& bias = Tensor());

  std::vector<AnalogTile*> analog_tiles() { return tiles_.tiles(); }
  const TileArray& tile_array() const { return tiles_; }
  const RPUConfig& rpu_config() const { return rpu_config_; }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  std::string type_name() const override { return "AnalogLinear"; }
  nlohmann::json config() const override;

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
  TileArray tiles_;
  Tensor bias_;
};

// The forward and backward IOParameters a config gives its tiles (exact for
// FloatingPointRPUConfig); ConfigError for what AnalogLinear cannot do yet.
std::pair<IOParameters, IOParameters> tile_io_parameters(const RPUConfig& rpu_config);

}  // namespace aimc
