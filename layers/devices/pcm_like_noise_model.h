// PCMLikeNoiseModel (REFERENCE.md section 5; Nandakumar 2019 / Joshi 2020
// PCM data, aihwkit's inference/noise/pcm.py). With g_r = g_T / g_max:
//   programming  σ_prog = Σ_k prog_coeff[k]·g_r^k · (g_max/reference) µS,
//                g_prog = max(0, g_T + prog_noise_scale·σ_prog·ξ)
//   drift exp.   μ_ν = clamp(−0.0155·ln g_r + 0.0244, 0.049, 0.1),
//                σ_ν = clamp(−0.0125·ln g_r − 0.0059, 0.008, 0.045),
//                ν = |μ_ν + σ_ν·ξ|·drift_scale  (g_r floored at 1e-7)
//   at t_inf     t = t_inf + t_0; g_d = g_prog·(t/t_0)^(−ν) (t > t_0),
//                Q_s = min(0.0088 / max((|g_prog|/g_max)^0.65, 1e-3), 0.2),
//                g = max(0, g_d + |g_d|·read_noise_scale·Q_s·√ln((t+t_read)/(2 t_read))·ξ)
// Note: aihwkit's code adds 0.244 (not 0.0244) in μ_ν, which pins μ_ν at 0.1
// for every g_r ≤ 1; we use the published 0.0244 (REFERENCE.md check values).
// The drift-exponent law is shared with CustomDriftPCMLikeNoiseModel, which
// replaces μ_ν, σ_ν by tables.
#pragma once

#include <memory>
#include <vector>

#include "kernels/analog/pcm_law.h"
#include "layers/devices/noise_model.h"

namespace aimc::config {
class ObjectReader;
}

namespace aimc {

struct PCMLikeParameters {
  std::vector<float> prog_coeff{0.26348f, 1.9650f, -1.1731f};  // µS at g_max = prog_coeff_g_max_reference
  float prog_coeff_g_max_reference = 25.0f;  // µS; σ_prog scales with g_max / this (0: no scaling)
  float t_read = 250e-9f;  // s
  float t_0 = 20.0f;       // s
  float prog_noise_scale = 1.0f;
  float read_noise_scale = 1.0f;
  float drift_scale = 1.0f;
};

// clamp(a0 + a1·ln g_r, lo, hi): the form of the PCM drift-exponent laws.
struct LogLaw {
  double a0, a1, lo, hi;
};
// min(coeff / max(g_r^power, floor), max): the form of the PCM read-noise Q_s.
struct ReadLaw {
  double coeff = 0.0088, power = 0.65, floor = 1e-3, max = 0.2;
};

class PCMLikeNoiseModel : public NoiseModel {
 public:
  explicit PCMLikeNoiseModel(PCMLikeParameters p = {}, std::shared_ptr<ConductanceConverter> converter = nullptr);
  // JSON: the PCMLikeParameters fields, "g_converter" and an optional "g_max"
  // (sets the converter's g_max, as aihwkit's g_max argument).
  static std::shared_ptr<NoiseModel> from_json(const nlohmann::json& j, const std::string& where);

  std::string type() const override { return "PCMLikeNoiseModel"; }
  nlohmann::json to_json() const override;
  const PCMLikeParameters& parameters() const { return p_; }
  // The laws as the plain struct the element functions and the CUDA twins take.
  PcmLaw law() const;
  // ln(t/t_0), t > t_0 and the read-noise time factor at t_inference.
  PcmDriftTime drift_time(double t_inference) const;

  // The PCMLikeParameters fields of a model's JSON (shared with the models
  // built on this one).
  static void read_parameters(config::ObjectReader& r, PCMLikeParameters& p);
  nlohmann::json parameters_json() const;
  const LogLaw& nu_mean() const { return nu_mean_; }
  const LogLaw& nu_std() const { return nu_std_; }
  const ReadLaw& q_s() const { return q_s_; }

  void program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const override;
  void drift_coefficients(const float* g_target, const float* xi, std::int64_t n, float* nu) const override;
  void drift(const float* g_prog, const float* nu, double t_inference, const float* xi, std::int64_t n,
             float* g) const override;
  // cuda::pcm_program and cuda::pcm_drift (the laws of kernels/analog/pcm_law.h).
  bool runs_on_gpu() const override { return true; }
  void program_cuda(const float* g_target, const float* xi_prog, const float* xi_nu, std::int64_t n, float* g_prog,
                    float* nu) const override;
  void drift_cuda(const float* g_prog, const float* nu, double t_inference, const float* xi, std::int64_t n,
                  float* g) const override;

 protected:

  PCMLikeParameters p_;
  LogLaw nu_mean_{0.0244, -0.0155, 0.049, 0.1};
  LogLaw nu_std_{-0.0059, -0.0125, 0.008, 0.045};
  ReadLaw q_s_;
};

// Reads "g_converter" and the optional "g_max" override of a model's JSON.
std::shared_ptr<ConductanceConverter> read_model_converter(config::ObjectReader& r);

}  // namespace aimc
