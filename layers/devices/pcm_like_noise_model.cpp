// PCMLikeNoiseModel (see pcm_like_noise_model.h).
#include "layers/devices/pcm_like_noise_model.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/cuda/backend.h"
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
  // Not type(): a virtual call here would name the base for every model built on this one.
  const config::RangeCheck c("noise model");
  if (p_.prog_coeff.empty() || p_.prog_coeff.size() > PcmLaw::kMaxCoeff)
    c.fail("prog_coeff", std::to_string(p_.prog_coeff.size()) + " coefficients",
           "1 to " + std::to_string(PcmLaw::kMaxCoeff) + " coefficients");
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

PcmLaw PCMLikeNoiseModel::law() const {
  PcmLaw l;
  l.prog_terms = static_cast<int>(p_.prog_coeff.size());
  for (int k = 0; k < l.prog_terms; ++k) l.prog_coeff[k] = p_.prog_coeff[k];
  l.g_max = converter().g_max();
  l.prog_unit = p_.prog_coeff_g_max_reference > 0 ? l.g_max / p_.prog_coeff_g_max_reference : 1.0;
  l.prog_noise_scale = p_.prog_noise_scale;
  l.drift_scale = p_.drift_scale;
  const double mean[4] = {nu_mean_.a0, nu_mean_.a1, nu_mean_.lo, nu_mean_.hi};
  const double std[4] = {nu_std_.a0, nu_std_.a1, nu_std_.lo, nu_std_.hi};
  std::copy(mean, mean + 4, l.nu_mean);
  std::copy(std, std + 4, l.nu_std);
  l.q_coeff = q_s_.coeff;
  l.q_power = q_s_.power;
  l.q_floor = q_s_.floor;
  l.q_max = q_s_.max;
  return l;
}

PcmDriftTime PCMLikeNoiseModel::drift_time(double t_inference) const {
  const double t = t_inference + p_.t_0;
  return {std::log(t / p_.t_0), t > p_.t_0, read_noise_time_factor(t, p_.t_read) * p_.read_noise_scale};
}

void PCMLikeNoiseModel::program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const {
  const PcmLaw l = law();
  for (std::int64_t i = 0; i < n; ++i) g_prog[i] = pcm_program(l, g_target[i], xi[i]);
}

void PCMLikeNoiseModel::drift_coefficients(const float* g_target, const float* xi, std::int64_t n,
                                           float* nu) const {
  const PcmLaw l = law();
  for (std::int64_t i = 0; i < n; ++i) nu[i] = pcm_drift_exponent(l, g_target[i], xi[i]);
}

void PCMLikeNoiseModel::drift(const float* g_prog, const float* nu, double t_inference, const float* xi,
                              std::int64_t n, float* g) const {
  const PcmLaw l = law();
  const PcmDriftTime t = drift_time(t_inference);
  for (std::int64_t i = 0; i < n; ++i) g[i] = pcm_read(l, t, g_prog[i], nu[i], xi[i]);
}

void PCMLikeNoiseModel::program_cuda(const float* g_target, const float* xi_prog, const float* xi_nu, std::int64_t n,
                                     float* g_prog, float* nu) const {
  cuda::backend().pcm_program(law(), g_target, static_cast<std::size_t>(n), xi_prog, xi_nu, g_prog, nu);
}

void PCMLikeNoiseModel::drift_cuda(const float* g_prog, const float* nu, double t_inference, const float* xi,
                                   std::int64_t n, float* g) const {
  cuda::backend().pcm_drift(law(), drift_time(t_inference), g_prog, nu, xi, static_cast<std::size_t>(n), g);
}

std::shared_ptr<NoiseModel> make_pcm_like_noise_model(const nlohmann::json& j, const std::string& where) {
  return PCMLikeNoiseModel::from_json(j, where);
}

}  // namespace aimc
