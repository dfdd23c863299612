// NoiseModel base, the time factor of read noise, and the model registry.
#include "layers/devices/noise_model.h"

#include <algorithm>
#include <cmath>

#include "layers/devices/registry.h"

namespace aimc {

// Factories of the built-in models (one file each).
std::shared_ptr<NoiseModel> make_pcm_like_noise_model(const nlohmann::json& j, const std::string& where);
std::shared_ptr<NoiseModel> make_custom_drift_pcm_like_noise_model(const nlohmann::json& j,
                                                                   const std::string& where);
std::shared_ptr<NoiseModel> make_state_independent_noise_model(const nlohmann::json& j, const std::string& where);
std::shared_ptr<NoiseModel> make_reram_cmo_noise_model(const nlohmann::json& j, const std::string& where);
std::shared_ptr<NoiseModel> make_generic_noise_model(const nlohmann::json& j, const std::string& where);

NoiseModel::NoiseModel(std::shared_ptr<ConductanceConverter> converter) : converter_(std::move(converter)) {
  if (!converter_) throw ConfigError("noise model: the conductance converter is missing");
}

void NoiseModel::program_cuda(const float*, const float*, const float*, std::int64_t, float*, float*) const {
  throw DeviceError(type() + " has no CUDA kernels; its tiles program on the host");
}
void NoiseModel::drift_cuda(const float*, const float*, double, const float*, std::int64_t, float*) const {
  throw DeviceError(type() + " has no CUDA kernels; its tiles drift on the host");
}

double read_noise_time_factor(double t, double t_read) {
  // Below t_read the logarithm is negative: no 1/f noise accumulated yet (and no NaN).
  return std::sqrt(std::max(0.0, std::log((t + t_read) / (2.0 * t_read))));
}

namespace {
devices::Registry<NoiseModelFactory>& registry() {
  static devices::Registry<NoiseModelFactory> r(
      "noise model", {{"PCMLikeNoiseModel", make_pcm_like_noise_model},
                      {"CustomDriftPCMLikeNoiseModel", make_custom_drift_pcm_like_noise_model},
                      {"StateIndependentNoiseModel", make_state_independent_noise_model},
                      {"ReRamCMONoiseModel", make_reram_cmo_noise_model},
                      {"GenericNoiseModel", make_generic_noise_model}});
  return r;
}
}  // namespace

std::shared_ptr<NoiseModel> make_noise_model(const nlohmann::json& j, const std::string& where) {
  return registry().get(j, where)(j, where);
}

void register_noise_model(const std::string& type, NoiseModelFactory factory) {
  registry().add(type, std::move(factory));
}

std::vector<std::string> noise_model_types() { return registry().names(); }

}  // namespace aimc
