// The built-in conductance converters (aihwkit's inference/converter/
// conductance.py) and the converter registry. n weights of one tile; the
// scale is taken over the whole tile. Units: µS.
//   SinglePair   s = (g_max − g_min)/max|W|; g± = clamp(±s·W, 0, g_max − g_min) + g_min
//   NPair(f)     s = Σf_k·(g_max − g_min)/max|W|; pair k carries what the
//                pairs before it could not: g±_k = clamp((relu(±sW) − lb_k)/f_k + g_min,
//                g_min, g_max), lb_k = Σ_{j<k} f_j·(g_max − g_min); W = Σ f_k(g⁺_k − g⁻_k)/s
//   DualPair(f)  NPair with two pairs
//   CustomPair   NPair whose pair conductances follow the tables g_lst
//                (linear interpolation over weights spaced evenly on ±max|W|)
//   SingleDevice s = (g_max − g_min)/(max W − min W); g = (W − min W)·s + g_min
// max|W| (and max W − min W) are floored at 1e-7 so an all-zero tile converts.
#include "layers/devices/conductance_converter.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/analog/conductance_law.h"
#include "kernels/cuda/backend.h"
#include "layers/config/json_fields.h"
#include "layers/devices/registry.h"

namespace aimc {
namespace {

constexpr float kMinRange = 1e-7f;  // aihwkit's _ZERO_CLIP

float abs_max(const float* w, std::int64_t n) {
  float m = 0.f;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(w[i]));
  return std::max(m, kMinRange);
}

nlohmann::json float_list(const std::vector<float>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (float x : v) out.push_back(config::float_to_json(x));
  return out;
}

void check_range(const std::string& where, float g_min, float g_max) {
  const config::RangeCheck c(where);
  c.at_least("g_min", g_min, 0.0);
  c.greater("g_max", g_max, g_min);
}

// N pairs with factors f (NPair, DualPair).
class NPairConverter : public ConductanceConverter {
 public:
  NPairConverter(std::string type, std::vector<float> f, float g_max, float g_min)
      : type_(std::move(type)), f_(std::move(f)), g_max_(g_max), g_min_(g_min) {}
  std::string type() const override { return type_; }
  nlohmann::json to_json() const override {
    nlohmann::json j{{"type", type_},
                     {"g_max", config::float_to_json(g_max_)},
                     {"g_min", config::float_to_json(g_min_)}};
    if (type_ != "SinglePairConductanceConverter") j["f_lst"] = float_list(f_);
    return j;
  }
  int num_devices() const override { return 2 * static_cast<int>(f_.size()); }
  int num_params() const override { return 1; }
  float g_max() const override { return g_max_; }
  float g_min() const override { return g_min_; }

  void to_conductances(const float* w, std::int64_t n, float* g, float* params) const override {
    const PairLaw l = law();
    params[0] = scale(w, n);
    for (int d = 0; d < num_devices(); ++d)
      for (std::int64_t i = 0; i < n; ++i) g[d * n + i] = pair_conductance(l, params[0], w[i], d);
  }
  void to_weights(const float* g, std::int64_t n, const float* params, float* w) const override {
    const PairLaw l = law();
    for (std::int64_t i = 0; i < n; ++i) w[i] = pair_weight(l, params[0], g, n, i);
  }
  bool runs_on_gpu() const override { return true; }
  void to_conductances_cuda(const float* w_host, const float* w_device, std::int64_t n, float* g,
                            float* params) const override {
    params[0] = scale(w_host, n);
    cuda::backend().pair_to_conductances(law(), params[0], w_device, static_cast<std::size_t>(n), g);
  }
  void to_weights_cuda(const float* g, std::int64_t n, const float* params, float* w) const override {
    cuda::backend().pair_to_weights(law(), params[0], g, static_cast<std::size_t>(n), w);
  }
  // The element maps' parameters (shared with the CUDA twins).
  PairLaw law() const {
    PairLaw l;
    l.pairs = static_cast<int>(f_.size());
    for (int k = 0; k < l.pairs; ++k) l.f[k] = f_[k];
    l.g_min = g_min_;
    l.g_max = g_max_;
    return l;
  }

 protected:
  std::string type_;
  std::vector<float> f_;
  float g_max_, g_min_;

 private:
  // s = Σf_k·(g_max − g_min)/max|W| (µS per weight unit).
  float scale(const float* w, std::int64_t n) const {
    const PairLaw l = law();
    double total = 0.0;
    for (float f : f_) total += f * (l.g_max - l.g_min);
    return static_cast<float>(total / abs_max(w, n));
  }
};

// Pairs whose conductances follow tables: g_lst[2k], g_lst[2k+1] at L weights
// spaced evenly on [−max|W|, max|W|].
class CustomPairConverter : public NPairConverter {
 public:
  CustomPairConverter(std::vector<float> f, std::vector<std::vector<float>> g_lst, float g_max, float g_min)
      : NPairConverter("CustomPairConductanceConverter", std::move(f), g_max, g_min), g_lst_(std::move(g_lst)) {
    // The combined weight (µS) of each table point.
    const std::size_t points = g_lst_[0].size();
    w_us_.assign(points, 0.0);
    for (std::size_t k = 0; k < f_.size(); ++k)
      for (std::size_t p = 0; p < points; ++p) w_us_[p] += f_[k] * (g_lst_[2 * k][p] - g_lst_[2 * k + 1][p]);
    for (double v : w_us_) w_us_max_ = std::max(w_us_max_, std::fabs(v));
  }
  nlohmann::json to_json() const override {
    nlohmann::json j = NPairConverter::to_json();
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : g_lst_) tables.push_back(float_list(t));
    j["g_lst"] = tables;
    return j;
  }
  void to_conductances(const float* w, std::int64_t n, float* g, float* params) const override {
    const double m = abs_max(w, n);
    params[0] = static_cast<float>(w_us_max_ / m);
    const PairTables t = tables();
    for (int d = 0; d < t.devices; ++d)
      for (std::int64_t i = 0; i < n; ++i) g[d * n + i] = table_conductance(t, m, w[i], d);
  }
  void to_conductances_cuda(const float* w_host, const float* w_device, std::int64_t n, float* g,
                            float* params) const override {
    const double m = abs_max(w_host, n);
    params[0] = static_cast<float>(w_us_max_ / m);
    cuda::backend().table_to_conductances(tables(), m, w_device, static_cast<std::size_t>(n), g);
  }
  // The tables as the plain struct the element map and its CUDA twin take.
  PairTables tables() const {
    PairTables t;
    t.devices = static_cast<int>(g_lst_.size());
    t.points = static_cast<int>(g_lst_[0].size());
    for (int d = 0; d < t.devices; ++d) std::copy(g_lst_[d].begin(), g_lst_[d].end(), t.g[d]);
    return t;
  }

 private:
  std::vector<std::vector<float>> g_lst_;
  std::vector<double> w_us_;
  double w_us_max_ = 0.0;
};

class SingleDeviceConverter : public ConductanceConverter {
 public:
  SingleDeviceConverter(float g_max, float g_min) : g_max_(g_max), g_min_(g_min) {}
  std::string type() const override { return "SingleDeviceConductanceConverter"; }
  nlohmann::json to_json() const override {
    return {{"type", type()}, {"g_max", config::float_to_json(g_max_)}, {"g_min", config::float_to_json(g_min_)}};
  }
  int num_devices() const override { return 1; }
  int num_params() const override { return 2; }  // scale ratio, min W
  float g_max() const override { return g_max_; }
  float g_min() const override { return g_min_; }
  void to_conductances(const float* w, std::int64_t n, float* g, float* params) const override {
    conversion_params(w, n, params);
    for (std::int64_t i = 0; i < n; ++i) g[i] = single_conductance(g_min_, params[0], params[1], w[i]);
  }
  void to_weights(const float* g, std::int64_t n, const float* params, float* w) const override {
    for (std::int64_t i = 0; i < n; ++i) w[i] = single_weight(g_min_, params[0], params[1], g[i]);
  }
  bool runs_on_gpu() const override { return true; }
  void to_conductances_cuda(const float* w_host, const float* w_device, std::int64_t n, float* g,
                            float* params) const override {
    conversion_params(w_host, n, params);
    cuda::backend().single_to_conductances(g_min_, params[0], params[1], w_device, static_cast<std::size_t>(n), g);
  }
  void to_weights_cuda(const float* g, std::int64_t n, const float* params, float* w) const override {
    cuda::backend().single_to_weights(g_min_, params[0], params[1], g, static_cast<std::size_t>(n), w);
  }

 private:
  // params[0] = (g_max − g_min)/(max W − min W) (µS per weight unit), params[1] = min W.
  void conversion_params(const float* w, std::int64_t n, float* params) const {
    float lo = n > 0 ? w[0] : 0.f, hi = lo;
    for (std::int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
    }
    const double s = (static_cast<double>(g_max_) - g_min_) / std::max(hi - lo, kMinRange);
    params[0] = static_cast<float>(s);
    params[1] = lo;
  }

  float g_max_, g_min_;
};

std::vector<float> read_f_lst(config::ObjectReader& r, const std::string& where, std::size_t required_size) {
  std::vector<float> f;
  r.read("f_lst", f);
  if (f.empty()) throw ConfigError(where + ".f_lst is required (the significance factor of each pair)");
  if (f.size() > static_cast<std::size_t>(PairLaw::kMaxPairs))
    throw ConfigError(where + ".f_lst has " + std::to_string(f.size()) + " pairs; at most " +
                      std::to_string(PairLaw::kMaxPairs) + " are supported");
  if (required_size > 0 && f.size() != required_size)
    throw ConfigError(where + ".f_lst must have " + std::to_string(required_size) + " entries, got " +
                      std::to_string(f.size()));
  for (float v : f)
    if (!(v > 0.f) || !std::isfinite(v)) throw ConfigError(where + ".f_lst entries must be finite and > 0");
  return f;
}

ConductanceConverterFactory n_pair(const char* type, float default_g_max, std::size_t pairs, bool has_f) {
  return [=](const nlohmann::json& j, const std::string& where) -> std::shared_ptr<ConductanceConverter> {
    config::ObjectReader r(j, where);
    r.find("type");
    float g_max = default_g_max, g_min = 0.f;
    r.read("g_max", g_max);
    r.read("g_min", g_min);
    std::vector<float> f = has_f ? read_f_lst(r, where, pairs) : std::vector<float>{1.f};
    r.finish();
    check_range(where, g_min, g_max);
    return std::make_shared<NPairConverter>(type, f, g_max, g_min);
  };
}

std::shared_ptr<ConductanceConverter> custom_pair(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  r.find("type");
  float g_max = 25.f, g_min = 0.f;
  r.read("g_max", g_max);
  r.read("g_min", g_min);
  const std::vector<float> f = read_f_lst(r, where, 0);
  std::vector<std::vector<float>> g_lst;
  if (const auto* v = r.find("g_lst")) {
    try {
      g_lst = v->get<std::vector<std::vector<float>>>();
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(where + ".g_lst must be a list of lists of numbers");
    }
  }
  r.finish();
  check_range(where, g_min, g_max);
  if (g_lst.size() != 2 * f.size())
    throw ConfigError(where + ".g_lst must hold 2 tables per pair (" + std::to_string(2 * f.size()) + "), got " +
                      std::to_string(g_lst.size()));
  for (const auto& t : g_lst) {
    if (t.size() < 2 || t.size() != g_lst[0].size() || t.size() > static_cast<std::size_t>(PairTables::kMaxPoints))
      throw ConfigError(where + ".g_lst tables must have the same length, 2 to " +
                        std::to_string(PairTables::kMaxPoints));
    for (float g : t)
      if (!(g >= g_min && g <= g_max))
        throw ConfigError(where + ".g_lst value " + config::format_number(g) + " is outside [g_min, g_max]");
  }
  auto conv = std::make_shared<CustomPairConverter>(f, g_lst, g_max, g_min);
  // aihwkit's invertibility test: W = linspace(−1, 1, 5) must come back within 1e-4.
  const std::vector<float> w{-1.f, -0.5f, 0.f, 0.5f, 1.f};
  std::vector<float> g(w.size() * conv->num_devices()), back(w.size());
  float params[1];
  conv->to_conductances(w.data(), 5, g.data(), params);
  conv->to_weights(g.data(), 5, params, back.data());
  for (std::size_t i = 0; i < w.size(); ++i)
    if (std::fabs(back[i] - w[i]) > 1e-4f)
      throw ConfigError(where + ".g_lst is not invertible: weight " + config::format_number(w[i]) +
                        " comes back as " + config::format_number(back[i]));
  return conv;
}

std::shared_ptr<ConductanceConverter> single_device(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  r.find("type");
  float g_max = 88.199997f, g_min = 9.0f;  // aihwkit's ReRAM-CMO range
  r.read("g_max", g_max);
  r.read("g_min", g_min);
  r.finish();
  check_range(where, g_min, g_max);
  return std::make_shared<SingleDeviceConverter>(g_max, g_min);
}

devices::Registry<ConductanceConverterFactory>& registry() {
  static devices::Registry<ConductanceConverterFactory> r(
      "conductance converter",
      {{"SinglePairConductanceConverter", n_pair("SinglePairConductanceConverter", 25.f, 1, false)},
       {"DualPairConductanceConverter", n_pair("DualPairConductanceConverter", 25.f, 2, true)},
       {"NPairConductanceConverter", n_pair("NPairConductanceConverter", 25.f, 0, true)},
       {"CustomPairConductanceConverter", custom_pair},
       {"SingleDeviceConductanceConverter", single_device}});
  return r;
}

}  // namespace

void ConductanceConverter::to_conductances_cuda(const float*, const float*, std::int64_t, float*, float*) const {
  throw DeviceError(type() + " has no CUDA conversion; its tiles program on the host");
}
void ConductanceConverter::to_weights_cuda(const float*, std::int64_t, const float*, float*) const {
  throw DeviceError(type() + " has no CUDA conversion; its tiles program on the host");
}

std::shared_ptr<ConductanceConverter> make_conductance_converter(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return make_conductance_converter(nlohmann::json{{"type", "SinglePairConductanceConverter"}}, where);
  return registry().get(j, where)(j, where);
}

void register_conductance_converter(const std::string& type, ConductanceConverterFactory factory) {
  registry().add(type, std::move(factory));
}

std::vector<std::string> conductance_converter_types() { return registry().names(); }

}  // namespace aimc
