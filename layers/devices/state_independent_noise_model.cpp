// StateIndependentNoiseModel (aihwkit's inference/noise/custom.py). With
// g_r = g_T/g_max:
//   programming  σ_prog = prog_coeff[0] + prog_coeff[1]·g_r + prog_coeff[2]·g_r² µS (no g_max scaling),
//                g_prog = max(0, g_T + prog_noise_scale·σ_prog·ξ)
//   drift exp.   ν = |drift_nu_mean + drift_nu_std·ξ|·drift_scale (independent of g)
//   at t_inf     t = t_inf + t_0, g_d = g_prog·(t/t_0)^(−ν) (t > t_0),
//                g = max(0, g_d + (|g_d|/g_max)·read_noise_scale·√ln((t+t_read)/(2 t_read))·ξ)
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

class StateIndependentNoiseModel : public NoiseModel {
 public:
  StateIndependentNoiseModel(StateIndependentParameters p, std::shared_ptr<ConductanceConverter> converter)
      : NoiseModel(std::move(converter)), p_(std::move(p)) {}

  std::string type() const override { return "StateIndependentNoiseModel"; }
  nlohmann::json to_json() const override {
    auto f = config::float_to_json;
    nlohmann::json coeff = nlohmann::json::array();
    for (float v : p_.prog_coeff) coeff.push_back(f(v));
    return {{"type", type()},
            {"prog_coeff", coeff},
            {"prog_noise_scale", f(p_.prog_noise_scale)},
            {"drift_nu_mean", f(p_.drift_nu_mean)},
            {"drift_nu_std", f(p_.drift_nu_std)},
            {"drift_scale", f(p_.drift_scale)},
            {"t_0", f(p_.t_0)},
            {"read_noise_scale", f(p_.read_noise_scale)},
            {"t_read", f(p_.t_read)},
            {"g_converter", converter_json()}};
  }

  void program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const override {
    const double g_max = converter().g_max();
    for (std::int64_t i = 0; i < n; ++i) {
      const double g_r = g_target[i] / g_max;
      double sigma = 0.0, power = 1.0;
      for (float c : p_.prog_coeff) {
        sigma += c * power;
        power *= g_r;
      }
      g_prog[i] = static_cast<float>(std::max(0.0, g_target[i] + p_.prog_noise_scale * sigma * xi[i]));
    }
  }
  void drift_coefficients(const float*, const float* xi, std::int64_t n, float* nu) const override {
    for (std::int64_t i = 0; i < n; ++i)
      nu[i] = static_cast<float>(std::fabs(double(p_.drift_nu_mean) + double(p_.drift_nu_std) * xi[i]) *
                                 p_.drift_scale);
  }
  void drift(const float* g_prog, const float* nu, double t_inference, const float* xi, std::int64_t n,
             float* g) const override {
    const double g_max = converter().g_max();
    const double t = t_inference + p_.t_0;
    const double log_ratio = std::log(t / p_.t_0);
    const double read = read_noise_time_factor(t, p_.t_read) * p_.read_noise_scale;
    for (std::int64_t i = 0; i < n; ++i) {
      const double gd = t > p_.t_0 ? g_prog[i] * std::exp(-static_cast<double>(nu[i]) * log_ratio) : g_prog[i];
      g[i] = static_cast<float>(std::max(0.0, gd + std::fabs(gd) / g_max * read * xi[i]));
    }
  }

 private:
  StateIndependentParameters p_;
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
  for (float v : p.prog_coeff) c.finite("prog_coeff", v);
  c.at_least("prog_noise_scale", p.prog_noise_scale, 0.0);
  c.at_least("drift_nu_mean", p.drift_nu_mean, 0.0);
  c.at_least("drift_nu_std", p.drift_nu_std, 0.0);
  c.at_least("drift_scale", p.drift_scale, 0.0);
  c.greater("t_0", p.t_0, 0.0);
  c.at_least("read_noise_scale", p.read_noise_scale, 0.0);
  c.greater("t_read", p.t_read, 0.0);
  return std::make_shared<StateIndependentNoiseModel>(p, converter);
}

}  // namespace aimc
