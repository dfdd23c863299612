// CustomDriftPCMLikeNoiseModel (aihwkit's inference/noise/custom.py): the
// PCMLikeNoiseModel with the drift-exponent mean and spread taken from tables
// over the absolute target conductance (µS): custom_drift_model =
// {"g_lst": [...] ascending, "nu_mean_lst": [...], "nu_std_lst": [...]},
// linear interpolation, constant beyond the ends (numpy.interp). ν =
// |μ(g_T) + σ(g_T)·ξ|·drift_scale. Programming, drift and read noise are the
// PCM laws. The converter's [g_min, g_max] must lie inside the table range.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/cuda/backend.h"
#include "layers/config/json_fields.h"
#include "layers/devices/pcm_like_noise_model.h"

namespace aimc {
namespace {

class CustomDriftPCMLikeNoiseModel : public PCMLikeNoiseModel {
 public:
  CustomDriftPCMLikeNoiseModel(PCMLikeParameters p, std::shared_ptr<ConductanceConverter> converter,
                               std::vector<float> g, std::vector<float> mean, std::vector<float> std)
      : PCMLikeNoiseModel(std::move(p), std::move(converter)), g_(std::move(g)), mean_(std::move(mean)),
        std_(std::move(std)) {
    table_.points = static_cast<int>(g_.size());
    std::copy(g_.begin(), g_.end(), table_.g);
    std::copy(mean_.begin(), mean_.end(), table_.mean);
    std::copy(std_.begin(), std_.end(), table_.std);
  }

  std::string type() const override { return "CustomDriftPCMLikeNoiseModel"; }
  nlohmann::json to_json() const override {
    nlohmann::json j = parameters_json();
    j["type"] = type();
    auto list = [](const std::vector<float>& v) {
      nlohmann::json a = nlohmann::json::array();
      for (float x : v) a.push_back(config::float_to_json(x));
      return a;
    };
    j["custom_drift_model"] = {{"g_lst", list(g_)}, {"nu_mean_lst", list(mean_)}, {"nu_std_lst", list(std_)}};
    return j;
  }

  void drift_coefficients(const float* g_target, const float* xi, std::int64_t n, float* nu) const override {
    for (std::int64_t i = 0; i < n; ++i) nu[i] = table_drift_exponent(table_, p_.drift_scale, g_target[i], xi[i]);
  }
  // The PCM programming kernel, then the exponents from the tables over its PCM ones.
  void program_cuda(const float* g_target, const float* xi_prog, const float* xi_nu, std::int64_t n, float* g_prog,
                    float* nu) const override {
    PCMLikeNoiseModel::program_cuda(g_target, xi_prog, xi_nu, n, g_prog, nu);
    cuda::backend().table_drift_exponent(table_, p_.drift_scale, g_target, static_cast<std::size_t>(n), xi_nu, nu);
  }

 private:
  std::vector<float> g_, mean_, std_;
  DriftTable table_;
};

}  // namespace

std::shared_ptr<NoiseModel> make_custom_drift_pcm_like_noise_model(const nlohmann::json& j,
                                                                   const std::string& where) {
  config::ObjectReader r(j, where);
  PCMLikeParameters p;
  PCMLikeNoiseModel::read_parameters(r, p);
  auto converter = read_model_converter(r);
  std::vector<float> g, mean, sd;
  const auto* table = r.find("custom_drift_model");
  if (table == nullptr) throw ConfigError(where + ".custom_drift_model is required ({g_lst, nu_mean_lst, nu_std_lst})");
  config::ObjectReader t(*table, r.path("custom_drift_model"));
  t.read("g_lst", g);
  t.read("nu_mean_lst", mean);
  t.read("nu_std_lst", sd);
  t.finish();
  r.finish();
  const std::string tw = r.path("custom_drift_model");
  if (g.size() < 2 || g.size() > DriftTable::kMaxPoints || mean.size() != g.size() || sd.size() != g.size())
    throw ConfigError(tw + ": g_lst, nu_mean_lst and nu_std_lst need the same length, 2 to " +
                      std::to_string(DriftTable::kMaxPoints));
  for (std::size_t i = 1; i < g.size(); ++i)
    if (!(g[i] > g[i - 1])) throw ConfigError(tw + ".g_lst must be strictly ascending");
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!(mean[i] >= 0.f) || !(sd[i] >= 0.f)) throw ConfigError(tw + ": nu_mean_lst and nu_std_lst must be >= 0");
  if (converter->g_min() < g.front() || converter->g_max() > g.back())
    throw ConfigError(tw + ".g_lst spans [" + config::format_number(g.front()) + ", " +
                      config::format_number(g.back()) + "] µS, which must cover the converter's [g_min, g_max] = [" +
                      config::format_number(converter->g_min()) + ", " + config::format_number(converter->g_max()) +
                      "]");
  try {
    return std::make_shared<CustomDriftPCMLikeNoiseModel>(p, converter, g, mean, sd);
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

}  // namespace aimc
