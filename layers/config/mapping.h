// MappingParameter: how a logical weight matrix is mapped onto physical tiles
// (tile size limits, digital bias, weight scaling, learned output scales).
// Field names and defaults as aihwkit's MappingParameter (REFERENCE.md §2).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aimc {

struct MappingParameter {
  // The bias is added digitally after the analog MVM (not stored on the crossbar).
  bool digital_bias = true;
  // > 0: the tile stores W / s with s = max|W| / omega (0 = no weight scaling).
  float weight_scaling_omega = 0.0f;
  // Weight scaling per output row instead of per tile.
  bool weight_scaling_columnwise = false;
  // Divide the learning rate by the mapping scales instead of the gradient.
  bool weight_scaling_lr_compensation = false;
  // Add a learned output gain per tile (or per output with out_scaling_columnwise).
  bool learn_out_scaling = false;
  // The learned output gain is per output row instead of a scalar.
  bool out_scaling_columnwise = false;
  // Largest tile input size (columns); larger layers are split; 0 = no split.
  int max_input_size = 512;
  // Largest tile output size (rows); larger layers are split; 0 = no split.
  int max_output_size = 512;

  // Throws ConfigError naming `where`.field, its value and the allowed range
  // (max sizes >= min_size; aihwkit: 0, aihwkit-lightning also -1).
  void validate(const std::string& where = "MappingParameter", int min_size = 0) const;
  nlohmann::json to_json() const;
  // Missing fields keep defaults; unknown fields / wrong types throw ConfigError.
  static MappingParameter from_json(const nlohmann::json& j,
                                    const std::string& where = "MappingParameter");
  // The same with other defaults and minimum max sizes (aihwkit-lightning's -1).
  static MappingParameter from_json(const nlohmann::json& j, const std::string& where,
                                    const MappingParameter& defaults, int min_size);
};

}  // namespace aimc
