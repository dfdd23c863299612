// JSON round trip and validation of IOParameters (kernels/analog/io_parameters.h),
// with aihwkit's field names and enum member names ("ABS_MAX", "ITERATIVE",
// "ONE_PASS"; aihwkit's enum values such as "AbsMax" are also read).
// Resolutions read from JSON that are > 1 are a number of steps and are stored
// as 1/steps (aihwkit presets write inp_res=254.0).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kernels/analog/io_parameters.h"

namespace aimc {

// Enum <-> aihwkit member name. from-name throws ConfigError listing the allowed names.
const char* to_string(NoiseManagementType value);
const char* to_string(BoundManagementType value);
const char* to_string(WeightNoiseType value);
const char* to_string(AnalogMVType value);

// All fields, aihwkit names, enums by member name.
nlohmann::json to_json(const IOParameters& io);
// Missing fields keep their defaults; unknown fields and wrong types throw
// ConfigError naming `where`.field. Validates the result.
IOParameters io_parameters_from_json(const nlohmann::json& j,
                                     const std::string& where = "IOParameters");

// Throws ConfigError "<prefix>.<field> = <value> is invalid: allowed <range>":
// finite values; inp_bound > 0 and == 1 when noise management is on;
// resolutions <= 0 (off) or in (0, 1]; out_bound <= 0 (no bound) only with
// out_res <= 0; noise strengths, nm_thres, ir_drop >= 0; asymmetries in [-1, 1];
// ir_drop_g_ratio > 0; max_bm_factor >= 1; max_bm_res > 0; slope_calibration,
// v_offset_std, r_series, w_read_asymmetry_dtod >= 0; v_offset_w_min finite.
void validate(const IOParameters& io, const std::string& prefix = "IOParameters");

}  // namespace aimc
