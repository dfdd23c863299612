// WeightClipParameter: clipping of the weights after each optimizer step in
// hardware-aware training (REFERENCE.md §4). Field names and defaults as
// aihwkit's WeightClipParameter; LAYER_GAUSSIAN_PER_CHANNEL is aihwkit-lightning's.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aimc {

enum class WeightClipType {
  None,                     // no clipping
  FixedValue,               // clip to ±fixed_value
  LayerGaussian,            // clip to ±sigma·std(W) of the whole tile
  AverageChannelMax,        // clip to the mean over rows of the row max|W|
  LayerGaussianPerChannel,  // clip each row to ±sigma·std(row) (lightning)
};

// aihwkit member name ("FIXED_VALUE", ...).
const char* to_string(WeightClipType value);

struct WeightClipParameter {
  // Clip value for FIXED_VALUE; if > 0 it also caps the other types (aihwkit).
  float fixed_value = -1.0f;
  // Multiple of the weight standard deviation for the gaussian types.
  float sigma = 2.5f;
  // Clipping type; NONE turns clipping off.
  WeightClipType type = WeightClipType::None;

  // Throws ConfigError: FIXED_VALUE needs fixed_value > 0; the LAYER_GAUSSIAN
  // types need sigma > 0.
  void validate(const std::string& where = "WeightClipParameter") const;
  nlohmann::json to_json() const;
  static WeightClipParameter from_json(const nlohmann::json& j,
                                       const std::string& where = "WeightClipParameter");
};

}  // namespace aimc
