// PCMLikeNoiseModel (see pcm_like_noise_model.h).
#include "layers/devices/pcm_like_noise_model.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/json_fields.h"

namespace aimc {
namespace {
constexpr double kMinRelative = 1e-7;  // aihwkit's _ZERO_CLIP for g_r in the drift law
}

std::shared_ptr<ConductanceConverter> read_model_converter(config::ObjectReader& r) {
  nlohmann::json conv = nlohmann::json{{"type", "SinglePairConductanceConverter"}};
  if (const auto* v = r.find("g_converter")) conv = v->is_null() ? conv : *v;
  if (const auto* v = r.find("g_max"); v != nullptr && !v->is_null()) {
    if (!v->is_number()) throw ConfigError(r.path("g_max") + " = " + v->dump() + " is invalid: allowed a number");
    if (!conv.is_object()) throw ConfigError(r.path("g_converter") + " must be an object");
    conv["g_max"] = *v;
  }
  return make_conductance_converter(conv, r.path("g_converter"));
}

PCMLikeNoiseModel::PCMLikeNoiseModel(PCMLikeParameters p, std::shared_ptr<ConductanceConverter> converter)
    : NoiseModel(converter ? std::move(converter) : make_conductance_converter(nullptr, "g_converter")),
      p_(std::move(p)) {
  const config::RangeCheck c(type());
  if (p_.prog_coeff.empty()) c.fail("prog_coeff", "[]", "at least one coefficient");
  for (float v : p_.prog_coeff) c.finite("prog_coeff", v);
  c.at_least("prog_coeff_g_max_reference", p_.prog_coeff_g_max_reference, 0.0);
  c.greater("t_read", p_.t_read, 0.0);
  c.greater("t_0", p_.t_0, 0.0);
  c.at_least("prog_noise_scale", p_.prog_noise_scale, 0.0);
  c.at_least("read_noise_scale", p_.read_noise_scale, 0.0);
  c.at_least("drift_scale", p_.drift_scale, 0.0);
}

void PCMLikeNoiseModel::read_parameters(config::ObjectReader& r, PCMLikeParameters& p) {
  r.find("type");
  r.read("prog_coeff", p.prog_coeff);
  r.read("prog_coeff_g_max_reference", p.prog_coeff_g_max_reference);
  r.read("t_read", p.t_read);
  r.read("t_0", p.t_0);
  r.read("prog_noise_scale", p.prog_noise_scale);
  r.read("read_noise_scale", p.read_noise_scale);
  r.read("drift_scale", p.drift_scale);
}

std::shared_ptr<NoiseModel> PCMLikeNoiseModel::from_json(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  PCMLikeParameters p;
  read_parameters(r, p);
  auto converter = read_model_converter(r);
  r.finish();
  try {
    return std::make_shared<PCMLikeNoiseModel>(p, converter);
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

nlohmann::json PCMLikeNoiseModel::parameters_json() const {
  nlohmann::json coeff = nlohmann::json::array();
  for (float v : p_.prog_coeff) coeff.push_back(config::float_to_json(v));
  return nlohmann::json{{"type", type()},
                        {"prog_coeff", coeff},
                        {"prog_coeff_g_max_reference", config::float_to_json(p_.prog_coeff_g_max_reference)},
                        {"t_read", config::float_to_json(p_.t_read)},
                        {"t_0", config::float_to_json(p_.t_0)},
                        {"prog_noise_scale", config::float_to_json(p_.prog_noise_scale)},
                        {"read_noise_scale", config::float_to_json(p_.read_noise_scale)},
                        {"drift_scale", config::float_to_json(p_.drift_scale)},
                        {"g_converter", converter_json()}};
}

nlohmann::json PCMLikeNoiseModel::to_json() const { return parameters_json(); }

void PCMLikeNoiseModel::program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const {
  const double g_max = converter().g_max();
  const double unit = p_.prog_coeff_g_max_reference > 0 ? g_max / p_.prog_coeff_g_max_reference : 1.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double g_r = g_target[i] / g_max;
    double sigma = 0.0, power = 1.0;
    for (float c : p_.prog_coeff) {
      sigma += c * power;
      power *= g_r;
    }
    const double g = g_target[i] + p_.prog_noise_scale * sigma * unit * xi[i];
    g_prog[i] = static_cast<float>(std::max(0.0, g));
  }
}

void PCMLikeNoiseModel::drift_mean_std(double g_r, double& mean, double& std) const {
  const double log_g = std::log(g_r);
  mean = nu_mean_(log_g);
  std = nu_std_(log_g);
}

double LogLaw::operator()(double log_g) const { return std::clamp(a0 + a1 * log_g, lo, hi); }

double ReadLaw::operator()(double g_r) const { return std::min(coeff / std::max(std::pow(g_r, power), floor), max); }

void PCMLikeNoiseModel::drift_coefficients(const float* g_target, const float* xi, std::int64_t n,
                                           float* nu) const {
  const double g_max = converter().g_max();
  for (std::int64_t i = 0; i < n; ++i) {
    double mean, std;
    drift_mean_std(std::max(g_target[i] / g_max, kMinRelative), mean, std);
    nu[i] = static_cast<float>(std::fabs(mean + std * xi[i]) * p_.drift_scale);
  }
}

void PCMLikeNoiseModel::drift(const float* g_prog, const float* nu, double t_inference, const float* xi,
                              std::int64_t n, float* g) const {
  const double g_max = converter().g_max();
  const double t = t_inference + p_.t_0;
  const double log_ratio = std::log(t / p_.t_0);
  const double time_factor = read_noise_time_factor(t, p_.t_read) * p_.read_noise_scale;
  for (std::int64_t i = 0; i < n; ++i) {
    const double gp = g_prog[i];
    const double gd = t > p_.t_0 ? gp * std::exp(-static_cast<double>(nu[i]) * log_ratio) : gp;
    double out = gd;
    if (time_factor > 0.0) {
      out = gd + std::fabs(gd) * q_s_(std::fabs(gp) / g_max) * time_factor * xi[i];
    }
    g[i] = static_cast<float>(std::max(0.0, out));
  }
}

std::shared_ptr<NoiseModel> make_pcm_like_noise_model(const nlohmann::json& j, const std::string& where) {
  return PCMLikeNoiseModel::from_json(j, where);
}

}  // namespace aimc
