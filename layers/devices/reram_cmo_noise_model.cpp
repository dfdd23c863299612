// ReRamCMONoiseModel (aihwkit's inference/noise/reram.py; REFERENCE.md
// section 5): a single device per weight (SingleDeviceConductanceConverter,
// default [9, 88.2] µS), conductances in µS, t = t_inference in seconds:
//   programming  g_prog = g_T + prog_noise_scale·(c0 + c1·g_T)·ξ, (c0, c1) by
//                acceptance_range: 0.002 → (0.00081107, 0.00106879),
//                0.02 → (0.0112185391, 0.01129027418); or "prog_coeff": [c0, c1]
//   at t > 0     g_d = g_prog + m0·ln t·drift_scale + (s0·ln t + s1)·drift_scale·ξ₁
//                (m0 = −0.08900206, (s0, s1) = (0.04201137, 0.41183342)),
//                σ_read = 0.0277316483·log10(g_d)·√ln((t + t_read)/(2 t_read)), t_read = 1 µs,
//                g = clamp(g_d + read_noise_scale·σ_read·ξ₂, g_min, g_max)
//   at t = 0     g = g_prog (not clamped, as aihwkit)
// The spread s0·ln t + s1 is added in µS, as aihwkit's code does.
// Notes: aihwkit's default acceptance_range 0.02 is not a key of its table
// and silently selects the 0.2 % coefficients; here 0.02 means 2 %, as
// documented. log10 is taken of max(g_d, 1e-7) so a collapsed device reads
// without NaN. The drift exponents are unused (this model drifts additively).
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/analog/reram_law.h"
#include "kernels/cuda/backend.h"
#include "layers/config/json_fields.h"
#include "layers/devices/pcm_like_noise_model.h"

namespace aimc {
namespace {

struct ReRamCMOParameters {
  float acceptance_range = 0.02f;
  std::vector<float> prog_coeff;  // [c0, c1]; empty: from acceptance_range
  float prog_noise_scale = 1.0f;
  float read_noise_scale = 1.0f;
  float drift_scale = 1.0f;
  float decay_mean = -0.08900206f;                  // µS per ln(s)
  std::vector<float> decay_std{0.04201137f, 0.41183342f};  // µS: s0·ln t + s1
  float read_coeff = 0.0277316483f;
  float t_read = 1e-6f;  // s
};

class ReRamCMONoiseModel : public NoiseModel {
 public:
  ReRamCMONoiseModel(ReRamCMOParameters p, std::shared_ptr<ConductanceConverter> converter)
      : NoiseModel(std::move(converter)), p_(std::move(p)) {
    coeff_ = p_.prog_coeff;
    if (coeff_.empty())
      coeff_ = p_.acceptance_range == 0.002f ? std::vector<float>{0.00081107f, 0.00106879f}
                                             : std::vector<float>{0.0112185391f, 0.01129027418f};
  }
  std::string type() const override { return "ReRamCMONoiseModel"; }
  nlohmann::json to_json() const override {
    auto f = config::float_to_json;
    nlohmann::json j{{"type", type()},
                     {"acceptance_range", f(p_.acceptance_range)},
                     {"prog_noise_scale", f(p_.prog_noise_scale)},
                     {"read_noise_scale", f(p_.read_noise_scale)},
                     {"drift_scale", f(p_.drift_scale)},
                     {"decay_mean", f(p_.decay_mean)},
                     {"decay_std", {f(p_.decay_std[0]), f(p_.decay_std[1])}},
                     {"read_coeff", f(p_.read_coeff)},
                     {"t_read", f(p_.t_read)},
                     {"g_converter", converter_json()}};
    if (!p_.prog_coeff.empty()) j["prog_coeff"] = {f(p_.prog_coeff[0]), f(p_.prog_coeff[1])};
    return j;
  }

  ReRamCmoLaw law() const {
    ReRamCmoLaw l;
    l.c0 = coeff_[0];
    l.c1 = coeff_[1];
    l.prog_noise_scale = p_.prog_noise_scale;
    l.g_min = converter().g_min();
    l.g_max = converter().g_max();
    return l;
  }
  ReRamCmoDriftTime drift_time(double t) const {
    if (t <= 0.0) return {};
    const double log_t = std::log(t);
    return {true, p_.decay_mean * log_t * p_.drift_scale, (p_.decay_std[0] * log_t + p_.decay_std[1]) * p_.drift_scale,
            p_.read_coeff * read_noise_time_factor(t, p_.t_read) * p_.read_noise_scale};
  }

  void program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const override {
    const ReRamCmoLaw l = law();
    for (std::int64_t i = 0; i < n; ++i) g_prog[i] = reram_program(l, g_target[i], xi[i]);
  }
  void drift_coefficients(const float*, const float*, std::int64_t n, float* nu) const override {
    std::fill(nu, nu + n, 0.f);
  }
  int drift_normals() const override { return 2; }
  void drift(const float* g_prog, const float*, double t, const float* xi, std::int64_t n, float* g) const override {
    const ReRamCmoLaw l = law();
    const ReRamCmoDriftTime dt = drift_time(t);
    for (std::int64_t i = 0; i < n; ++i) g[i] = reram_read(l, dt, g_prog[i], xi[i], xi[n + i]);
  }
  // cuda::reram_program and cuda::reram_drift (kernels/analog/reram_law.h); no exponents (ν = 0).
  bool runs_on_gpu() const override { return true; }
  void program_cuda(const float* g_target, const float* xi_prog, const float*, std::int64_t n, float* g_prog,
                    float* nu) const override {
    cuda::backend().reram_program(law(), g_target, static_cast<std::size_t>(n), xi_prog, g_prog);
    cuda::backend().fill(nu, static_cast<std::size_t>(n), 0.f);
  }
  void drift_cuda(const float* g_prog, const float*, double t, const float* xi, std::int64_t n,
                  float* g) const override {
    cuda::backend().reram_drift(law(), drift_time(t), g_prog, xi, static_cast<std::size_t>(n), g);
  }

 private:
  ReRamCMOParameters p_;
  std::vector<float> coeff_;
};

}  // namespace

std::shared_ptr<NoiseModel> make_reram_cmo_noise_model(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  r.find("type");
  ReRamCMOParameters p;
  r.read("acceptance_range", p.acceptance_range);
  r.read("prog_coeff", p.prog_coeff);
  r.read("prog_noise_scale", p.prog_noise_scale);
  r.read("read_noise_scale", p.read_noise_scale);
  r.read("drift_scale", p.drift_scale);
  r.read("decay_mean", p.decay_mean);
  r.read("decay_std", p.decay_std);
  r.read("read_coeff", p.read_coeff);
  r.read("t_read", p.t_read);
  nlohmann::json conv = nlohmann::json{{"type", "SingleDeviceConductanceConverter"}};
  if (const auto* v = r.find("g_converter"); v != nullptr && !v->is_null()) conv = *v;
  for (const char* key : {"g_max", "g_min"})
    if (const auto* v = r.find(key); v != nullptr && !v->is_null()) conv[key] = *v;
  auto converter = make_conductance_converter(conv, r.path("g_converter"));
  r.finish();
  const config::RangeCheck c(where);
  if (p.prog_coeff.empty() && p.acceptance_range != 0.002f && p.acceptance_range != 0.02f)
    c.fail("acceptance_range", config::format_number(p.acceptance_range),
           "0.002 or 0.02 (the measured tables), or give prog_coeff [c0, c1]");
  if (!p.prog_coeff.empty() && p.prog_coeff.size() != 2) c.fail("prog_coeff", "a list", "[c0, c1]");
  if (p.decay_std.size() != 2) c.fail("decay_std", "a list", "[s0, s1]");
  c.at_least("prog_noise_scale", p.prog_noise_scale, 0.0);
  c.at_least("read_noise_scale", p.read_noise_scale, 0.0);
  c.at_least("drift_scale", p.drift_scale, 0.0);
  c.greater("t_read", p.t_read, 0.0);
  return std::make_shared<ReRamCMONoiseModel>(p, converter);
}

}  // namespace aimc
