// UpdateParameters (aihwkit's UpdateParameters): how the pulsed update of an
// analog tile turns x and d into pulse trains (kernels/analog/pulsed_law.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kernels/analog/pulsed_law.h"

namespace aimc {

using analog::PulseType;
// "NONE", "STOCHASTIC_COMPRESSED", "STOCHASTIC", "DETERMINISTIC_IMPLICIT", "MEAN_COUNT".
const char* to_string(PulseType value);

struct UpdateParameters {
  // Largest number of pulse slots per update (1..128: a train is at most four 32-bit words).
  int desired_bl = 31;
  // BL is desired_bl (when neither management is on).
  bool fixed_bl = true;
  PulseType pulse_type = PulseType::StochasticCompressed;
  // Resolution of the pulse probabilities (0: continuous; > 1: number of steps).
  float res = 0.f;
  // DETERMINISTIC_IMPLICIT resolutions of x and d (0: continuous).
  float x_res_implicit = 0.f;
  float d_res_implicit = 0.f;
  // Statistics of d's sparsity (aihwkit only records them; accepted, no effect).
  bool d_sparsity = false;
  // Stochastic rounding of the discretised probabilities: not implemented (false only).
  bool sto_round = false;
  // BL = ceil(lr·max|x|·max|d|/dw_min), at most desired_bl.
  bool update_bl_management = true;
  // Scale the x and d probabilities so that their largest values are equal.
  bool update_management = true;
  // Weight of d against x in update management.
  float um_grad_scale = 1.f;

  analog::UpdatePulseParams kernel_params() const;
  void validate(const std::string& where = "UpdateParameters") const;
  nlohmann::json to_json() const;
  static UpdateParameters from_json(const nlohmann::json& j, const std::string& where = "UpdateParameters");
};

}  // namespace aimc
