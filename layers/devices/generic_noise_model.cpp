// GenericNoiseModel: a device model written in JSON, for devices that follow
// the PCM-like shape of laws with other numbers. With g_r = g_T/g_max:
//   programming  σ_prog = Σ_k prog_coeff[k]·g_r^k · g_max/prog_coeff_g_max_reference µS
//                (reference 0: no scaling), g_prog = max(0, g_T + prog_noise_scale·σ_prog·ξ)
//   drift exp.   ν = |μ + σ·ξ|·drift_scale with μ = clamp(a0 + a1·ln g_r, min, max) from
//                "drift_mean" {"coeff": [a0, a1], "min", "max"} and σ likewise from "drift_std"
//   read noise   Q = min(read.coeff / max((|g_prog|/g_max)^read.power, read.floor), read.max),
//                g = max(0, g_d + |g_d|·read_noise_scale·Q·√ln((t+t_read)/(2 t_read))·ξ)
//   drift        g_d = g_prog·(t/t_0)^(−ν), t = t_inf + t_0
// Every default equals PCMLikeNoiseModel, which it then reproduces exactly.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/json_fields.h"
#include "layers/devices/pcm_like_noise_model.h"

namespace aimc {
namespace {

class GenericNoiseModel : public PCMLikeNoiseModel {
 public:
  GenericNoiseModel(PCMLikeParameters p, std::shared_ptr<ConductanceConverter> converter, LogLaw mean, LogLaw sd,
                    ReadLaw read)
      : PCMLikeNoiseModel(std::move(p), std::move(converter)) {
    nu_mean_ = mean;
    nu_std_ = sd;
    q_s_ = read;
  }
  std::string type() const override { return "GenericNoiseModel"; }
  nlohmann::json to_json() const override {
    nlohmann::json j = parameters_json();
    j["type"] = type();
    auto law = [](const LogLaw& l) { return nlohmann::json{{"coeff", {l.a0, l.a1}}, {"min", l.lo}, {"max", l.hi}}; };
    j["drift_mean"] = law(nu_mean_);
    j["drift_std"] = law(nu_std_);
    j["read"] = {{"coeff", q_s_.coeff}, {"power", q_s_.power}, {"floor", q_s_.floor}, {"max", q_s_.max}};
    return j;
  }

};

// A number field read as double (so written defaults read back exactly).
void read_number(config::ObjectReader& r, const char* key, double& out) {
  const auto* v = r.find(key);
  if (v == nullptr) return;
  if (!v->is_number()) throw ConfigError(r.path(key) + " = " + v->dump() + " is invalid: allowed a number");
  out = v->get<double>();
}

LogLaw read_log_law(config::ObjectReader& parent, const char* key, LogLaw law) {
  const auto* v = parent.find(key);
  if (v == nullptr) return law;
  config::ObjectReader r(*v, parent.path(key));
  if (const auto* c = r.find("coeff")) {
    if (!c->is_array() || c->size() != 2 || !(*c)[0].is_number() || !(*c)[1].is_number())
      throw ConfigError(parent.path(key) + ".coeff must be [a0, a1] (a0 + a1·ln g_r)");
    law.a0 = (*c)[0].get<double>();
    law.a1 = (*c)[1].get<double>();
  }
  read_number(r, "min", law.lo);
  read_number(r, "max", law.hi);
  r.finish();
  if (!(law.lo >= 0) || !(law.hi >= law.lo))
    throw ConfigError(parent.path(key) + ": need 0 <= min <= max, got min " + config::format_number(law.lo) +
                      ", max " + config::format_number(law.hi));
  return law;
}

}  // namespace

std::shared_ptr<NoiseModel> make_generic_noise_model(const nlohmann::json& j, const std::string& where) {
  config::ObjectReader r(j, where);
  PCMLikeParameters p;
  PCMLikeNoiseModel::read_parameters(r, p);
  auto converter = read_model_converter(r);
  const PCMLikeNoiseModel pcm;  // the defaults
  const LogLaw mean = read_log_law(r, "drift_mean", pcm.nu_mean());
  const LogLaw sd = read_log_law(r, "drift_std", pcm.nu_std());
  ReadLaw read;
  if (const auto* v = r.find("read")) {
    config::ObjectReader rr(*v, r.path("read"));
    read_number(rr, "coeff", read.coeff);
    read_number(rr, "power", read.power);
    read_number(rr, "floor", read.floor);
    read_number(rr, "max", read.max);
    rr.finish();
    if (!(read.coeff >= 0) || !(read.floor > 0) || !(read.max >= 0))
      throw ConfigError(r.path("read") + ": need coeff >= 0, floor > 0, max >= 0");
  }
  r.finish();
  try {
    return std::make_shared<GenericNoiseModel>(p, converter, mean, sd, read);
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

}  // namespace aimc
