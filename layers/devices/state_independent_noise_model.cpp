// StateIndependentNoiseModel (aihwkit's inference/noise/custom.py). With
// g_r = g_T/g_max:
//   programming  σ_prog = prog_coeff[0] + prog_coeff[1]·g_r + prog_coeff[2]·g_r² µS (no g_max scaling),
//                g_prog = max(0, g_T + prog_noise_scale·σ_prog·ξ)
//   drift exp.   ν = |drift_nu_mean + drift_nu_std·ξ|·drift_scale (independent of g)
//   at t_inf     t = t_inf + t_0, g_d = g_prog·(t/t_0)^(−ν) (t > t_0),
//                g = max(0, g_d + (|g_d|/g_max)·read_noise_scale·√ln((t+t_read)/(2 t_read))·ξ)
// These are the PCM-family laws (kernels/analog/pcm_law.h) with constant
// drift-exponent laws and Q = 1/g_max, so the model shares their code and
// their CUDA twin; only its parameters and JSON are its own.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/json_fields.h"
#include "layers/devices/pcm_like_noise_model.h"

namespace aimc {
namespace {

struct StateIndependentParameters {
  std::vector<float> prog_coeff{0.2f, 0.0f, 0.0f};  // µS
  float prog_noise_scale = 1.0f;
  float drift_nu_mean = 0.1f;
  float drift_nu_std = 0.05f;
  float drift_scale = 1.0f;
  float t_0 = 20.0f;  // s
  float read_noise_scale = 1.0f;
  float t_read = 250e-9f;  // s
};

PCMLikeParameters as_pcm(const StateIndependentParameters& s) {
  PCMLikeParameters p;
  p.prog_coeff = s.prog_coeff;
  p.prog_coeff_g_max_reference = 0.f;  // no g_max scaling
  p.t_read = s.t_read;
  p.t_0 = s.t_0;
  p.prog_noise_scale = s.prog_noise_scale;
  p.read_noise_scale = s.read_noise_scale;
  p.drift_scale = s.drift_scale;
  return p;
}

class StateIndependentNoiseModel : public PCMLikeNoiseModel {
 public:
  StateIndependentNoiseModel(StateIndependentParameters s, std::shared_ptr<ConductanceConverter> converter)
      : PCMLikeNoiseModel(as_pcm(s), std::move(converter)), s_(std::move(s)) {
    nu_mean_ = {s_.drift_nu_mean, 0.0, s_.drift_nu_mean, s_.drift_nu_mean};
    nu_std_ = {s_.drift_nu_std, 0.0, s_.drift_nu_std, s_.drift_nu_std};
    // Q(g_r) = 1/g_max for every g_r: power 0, no floor effect, no cap.
    q_s_ = {1.0 / this->converter().g_max(), 0.0, 1.0, 1e300};
  }

  std::string type() const override { return "StateIndependentNoiseModel"; }
  nlohmann::json to_json() const override {
    auto f = config::float_to_json;
    nlohmann::json coeff = nlohmann::json::array();
    for (float v : s_.prog_coeff) coeff.push_back(f(v));
    return {{"type", type()},
            {"prog_coeff", coeff},
            {"prog_noise_scale", f(s_.prog_noise_scale)},
            {"drift_nu_mean", f(s_.drift_nu_mean)},
            {"drift_nu_std", f(s_.drift_nu_std)},
            {"drift_scale", f(s_.drift_scale)},
            {"t_0", f(s_.t_0)},
            {"read_noise_scale", f(s_.read_noise_scale)},
            {"t_read", f(s_.t_read)},
            {"g_converter", converter_json()}};
  }

 private:
  StateIndependentParameters s_;
};

}  // namespace

std::shared_ptr<NoiseModel> make_state_independent_noise_model(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  r.find("type");
  StateIndependentParameters p;
  r.read("prog_coeff", p.prog_coeff);
  r.read("prog_noise_scale", p.prog_noise_scale);
  r.read("drift_nu_mean", p.drift_nu_mean);
  r.read("drift_nu_std", p.drift_nu_std);
  r.read("drift_scale", p.drift_scale);
  r.read("t_0", p.t_0);
  r.read("read_noise_scale", p.read_noise_scale);
  r.read("t_read", p.t_read);
  auto converter = read_model_converter(r);
  r.finish();
  const config::RangeCheck c(where);
  c.at_least("drift_nu_mean", p.drift_nu_mean, 0.0);
  c.at_least("drift_nu_std", p.drift_nu_std, 0.0);
  try {
    return std::make_shared<StateIndependentNoiseModel>(p, converter);
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

}  // namespace aimc
