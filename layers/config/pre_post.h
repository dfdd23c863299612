// PrePostProcessingParameter and InputRangeParameter: digital processing around
// the tile, i.e. the learned input range (clip x to ±r, divide by r before the
// tile, multiply after). REFERENCE.md §3. Field names and defaults as aihwkit's
// parameters/pre_post.py. Input ranges are in the units of the layer input.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace aimc {

struct InputRangeParameter {
  // Learn / apply an input range; false = no input clipping at all.
  bool enable = false;
  // Train the range with its gradient (otherwise it stays at its calibrated value).
  bool learn_input_range = true;
  // Initial input range r.
  float init_value = 3.0f;
  // Number of first training batches that set r from data (0 = off).
  int init_from_data = 100;
  // r ← (r·k + init_std_alpha·std(x)) / (k + 1) during the data initialisation.
  float init_std_alpha = 3.0f;
  // Decay added to the range gradient (decay·r) when few inputs are clipped.
  float decay = 0.001f;
  // The decay applies only when more than this fraction of inputs is inside the range.
  float input_min_percentage = 0.95f;
  // Increase the range when the output clips (needs noise and bound management NONE).
  bool manage_output_clipping = false;
  // manage_output_clipping acts when less than this fraction of outputs is unclipped.
  float output_min_percentage = 0.95f;
  // Scale of the range gradient (its learning-rate factor).
  float gradient_scale = 1.0f;
  // Make the range gradient relative to the current range (scaled by r).
  bool gradient_relative = true;
  // Free-form note for post-training calibration ("" = none; JSON null).
  std::string calibration_info;

  // Throws ConfigError: init_value > 0, init_from_data >= 0, init_std_alpha > 0,
  // decay >= 0, percentages in [0, 1], gradient_scale >= 0.
  void validate(const std::string& where = "InputRangeParameter") const;
  nlohmann::json to_json() const;
  static InputRangeParameter from_json(const nlohmann::json& j,
                                       const std::string& where = "InputRangeParameter");
};

struct PrePostProcessingParameter {
  InputRangeParameter input_range;

  void validate(const std::string& where = "PrePostProcessingParameter") const;
  nlohmann::json to_json() const;
  static PrePostProcessingParameter from_json(
      const nlohmann::json& j, const std::string& where = "PrePostProcessingParameter");
};

}  // namespace aimc
