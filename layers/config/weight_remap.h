// WeightRemapParameter: remapping of the weights into the conductance range
// after each mini-batch in hardware-aware training (REFERENCE.md §4).
// Field names and defaults as aihwkit's WeightRemapParameter.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aimc {

enum class WeightRemapType {
  None,                  // no remapping
  LayerwiseSymmetric,    // W /= max|W|, scale *= max|W| (whole tile)
  ChannelwiseSymmetric,  // the same per output row
};

// aihwkit member name ("CHANNELWISE_SYMMETRIC", ...).
const char* to_string(WeightRemapType value);

struct WeightRemapParameter {
  // Weight value mapped to the maximal conductance (normalised units).
  float remapped_wmax = 1.0f;
  // Maximal range of the scales (0 = unrestricted).
  float max_scale_range = 0.0f;
  // Reference scale used as minimal scale for the scale range.
  float max_scale_ref = 0.0f;
  // Remapping type; NONE turns remapping off.
  WeightRemapType type = WeightRemapType::None;

  // Throws ConfigError: remapped_wmax > 0; max_scale_range, max_scale_ref >= 0.
  void validate(const std::string& where = "WeightRemapParameter") const;
  nlohmann::json to_json() const;
  static WeightRemapParameter from_json(const nlohmann::json& j,
                                        const std::string& where = "WeightRemapParameter");
};

}  // namespace aimc
