// WeightModifierParameter: noise / quantisation applied to the weights used in
// the training forward pass (hardware-aware training; the stored weights stay
// clean). REFERENCE.md §4. Field names and defaults as aihwkit's
// WeightModifierParameter; the *_PER_CHANNEL variants other than
// DISCRETIZE_PER_CHANNEL are aihwkit-lightning's. Weights are in normalised
// units; a = max|W| (per row for per-channel types) when rel_to_actual_wmax,
// otherwise assumed_wmax.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc {

enum class WeightModifierType {
  None,                            // weights unchanged
  Discretize,                      // w = a·round(w/(a·res))·res
  DiscretizePerChannel,            // Discretize with a per output row
  MultNormal,                      // w += w·std_dev·a·ξ
  AddNormal,                       // w += std_dev·a·ξ
  AddNormalPerChannel,             // AddNormal with a per output row
  DiscretizeAddNormal,             // Discretize, then AddNormal
  DiscretizeAddNormalPerChannel,   // both per output row
  DoReFa,                          // DoReFa discretisation (res, dorefa_clip)
  Poly,                            // w += a·std_dev·(c0 + c1|w|/a + c2(w/a)² ...)·ξ
  PCMNoise,                        // PCM programming / drift noise in weight units
  ProgNoise,                       // Poly noise that keeps the weight's sign
  DropConnect,                     // only drop connect (pdrop)
  Copy,                            // legacy: no modification, pdrop still applied
};

// aihwkit member name ("ADD_NORMAL", ...).
const char* to_string(WeightModifierType value);

struct WeightModifierParameter {
  // σ of the added noise relative to a (AddNormal, MultNormal, Poly, ...).
  float std_dev = 0.0f;
  // Draw new noise for every sample of the batch (instead of once per batch).
  bool per_batch_sample = false;
  // Discretisation resolution relative to a (Discretize*, DoReFa); 0 = off.
  float res = 0.0f;
  // Stochastic rounding for the discretisation.
  bool sto_round = false;
  // DoReFa clip parameter.
  float dorefa_clip = 0.6f;
  // Drop-connect probability (combinable with every type).
  float pdrop = 0.0f;
  // Keep modifying the weights in evaluation mode.
  bool enable_during_test = false;
  // a = max|W| of the actual weights (true) or assumed_wmax (false).
  bool rel_to_actual_wmax = true;
  // a when rel_to_actual_wmax is false.
  float assumed_wmax = 1.0f;
  // Leave the last column (an analog bias) unmodified.
  bool copy_last_column = false;
  // Polynomial coefficients c0, c1, c2, ... for Poly / ProgNoise.
  std::vector<float> coeffs = {0.0105392f, 0.0768f, -0.046925f};
  // Modifier type.
  WeightModifierType type = WeightModifierType::None;
  // Maximal conductance in µS (PCMNoise, ProgNoise).
  float g_max = 25.0f;
  // PCMNoise: conductance threshold below which a device counts as zero (µS).
  float pcm_zero_thres = 0.0f;
  // PCMNoise: inference time in seconds.
  float pcm_t_inference = 0.0f;
  // PCMNoise: probability of a device being at reset.
  float pcm_prob_at_reset = 0.0f;
  // PCMNoise: probability of a device being at g_max.
  float pcm_prob_at_gmax = 0.0f;
  // PCMNoise: probability of a device being at a random value.
  float pcm_prob_at_random = 0.0f;
  // PCMNoise: programming-to-first-read time in seconds.
  float pcm_t0 = 20.0f;

  // Throws ConfigError naming field, value and range (std_dev >= 0; res <= 0
  // or in (0, 1], > 0 for the discretising types; pdrop in [0, 1); ...).
  void validate(const std::string& where = "WeightModifierParameter") const;
  nlohmann::json to_json() const;
  // JSON res > 1 is a number of steps, stored as 1/steps.
  static WeightModifierParameter from_json(const nlohmann::json& j,
                                           const std::string& where = "WeightModifierParameter");
};

}  // namespace aimc
