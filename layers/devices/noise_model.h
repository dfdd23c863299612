// NoiseModel: an inference device model (REFERENCE.md section 5, aihwkit's
// inference/noise): programming noise, the drift exponents drawn at
// programming, and drift plus read noise at an inference time. The laws act
// element-wise on conductances (µS) produced by the model's
// ConductanceConverter; the random normals come from the caller (one per
// element, drawn from the tile's counter-based streams), so a law is a pure
// function and the same on every device and thread count.
//
// Models are plug-ins: a registry by type name builds one from JSON
// (make_noise_model); a new model is one new file plus its registration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/devices/conductance_converter.h"

namespace aimc {

class NoiseModel {
 public:
  explicit NoiseModel(std::shared_ptr<ConductanceConverter> converter);
  virtual ~NoiseModel() = default;

  virtual std::string type() const = 0;
  // Every parameter plus "type" and "g_converter".
  virtual nlohmann::json to_json() const = 0;
  const ConductanceConverter& converter() const { return *converter_; }

  // g_prog[i] from the target g_target[i] and a normal xi[i].
  virtual void program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const = 0;
  // Drift exponent nu[i] (drawn once, at programming, from the target).
  virtual void drift_coefficients(const float* g_target, const float* xi, std::int64_t n, float* nu) const = 0;
  // Standard normals per element that drift() takes (planes xi[p·n + i]).
  virtual int drift_normals() const { return 1; }
  // The conductance read t_inference seconds after programming: drift of
  // g_prog with exponent nu, then read noise with the normals xi.
  virtual void drift(const float* g_prog, const float* nu, double t_inference, const float* xi, std::int64_t n,
                     float* g) const = 0;

  // The same laws on a GPU through their CUDA twins (kernels/cuda/
  // device_noise.cu), every pointer a device array: program_cuda is program
  // (normals xi_prog) and drift_coefficients (normals xi_nu) in one call,
  // drift_cuda is drift (xi: drift_normals() planes of n). True when the
  // model has them; the tile then programs and drifts where its weights are.
  // False (the default): the tile copies its state to the host for these
  // steps (AnalogTile::on_host).
  virtual bool runs_on_gpu() const { return false; }
  virtual void program_cuda(const float* g_target, const float* xi_prog, const float* xi_nu, std::int64_t n,
                            float* g_prog, float* nu) const;
  virtual void drift_cuda(const float* g_prog, const float* nu, double t_inference, const float* xi, std::int64_t n,
                          float* g) const;

 protected:
  // "g_converter" of to_json().
  nlohmann::json converter_json() const { return converter_->to_json(); }

 private:
  std::shared_ptr<ConductanceConverter> converter_;
};

// sqrt(max(0, ln((t + t_read) / (2·t_read)))): the time factor of 1/f read noise.
double read_noise_time_factor(double t, double t_read);

using NoiseModelFactory =
    std::function<std::shared_ptr<NoiseModel>(const nlohmann::json& j, const std::string& where)>;

// Builds a model from {"type": name, ...}; ConfigError naming `where` for an
// unknown type (listing the known ones), a bad field or a bad value.
std::shared_ptr<NoiseModel> make_noise_model(const nlohmann::json& j, const std::string& where = "noise_model");
// Adds a model type (a plug-in); ConfigError if the name is taken.
void register_noise_model(const std::string& type, NoiseModelFactory factory);
std::vector<std::string> noise_model_types();

}  // namespace aimc
