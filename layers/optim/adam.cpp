// Adam optimizer (see adam.h). One fused, contiguous loop per parameter.
#include "layers/optim/adam.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"

namespace aimc {

Adam::Adam(std::vector<Tensor> params, double lr, const AdamOptions& options)
    : Optimizer(std::move(params), lr), options_(options) {
  if (!(options.beta1 >= 0 && options.beta1 < 1))
    throw ConfigError("Adam: beta1 must be in [0, 1), got " + std::to_string(options.beta1));
  if (!(options.beta2 >= 0 && options.beta2 < 1))
    throw ConfigError("Adam: beta2 must be in [0, 1), got " + std::to_string(options.beta2));
  if (!(options.eps > 0)) throw ConfigError("Adam: eps must be > 0, got " + std::to_string(options.eps));
  if (!(options.weight_decay >= 0))
    throw ConfigError("Adam: weight_decay must be >= 0, got " + std::to_string(options.weight_decay));
}

Shape Adam::state_shape(std::size_t i, const std::string& name) const {
  if (name == "step") return {};
  if (name == "exp_avg" || name == "exp_avg_sq") return params()[i].shape();
  throw ValueError("Adam state: unknown state name '" + name + "' (expected exp_avg, exp_avg_sq or step)");
}

void Adam::step() {
  NoGradGuard no_grad;
  const auto& ps = params();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Tensor p = ps[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    check_cpu(p, "Adam.step");
    grad = grad.to(p.dtype()).contiguous();
    auto& st = state(i);
    if (!st.count("step")) {
      st["step"] = Tensor::scalar(0.0, p.dtype());
      st["exp_avg"] = Tensor::zeros(p.shape(), p.dtype());
      st["exp_avg_sq"] = Tensor::zeros(p.shape(), p.dtype());
    }
    const double t = st["step"].item() + 1.0;
    st["step"].fill_(t);
    const double bias1 = 1.0 - std::pow(options_.beta1, t);
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, t));
    Tensor m_t = st["exp_avg"], v_t = st["exp_avg_sq"];
    dispatch_float(p.dtype(), "Adam.step", [&](auto tag) {
      using T = decltype(tag);
      T* w = p.template data<T>();
      const T* g = grad.template data<T>();
      T* m = m_t.template data<T>();
      T* v = v_t.template data<T>();
      const T b1 = static_cast<T>(options_.beta1), b2 = static_cast<T>(options_.beta2);
      const T wd = static_cast<T>(options_.weight_decay), eps = static_cast<T>(options_.eps);
      const T step_size = static_cast<T>(lr() / bias1), bias2_root = static_cast<T>(bias2_sqrt);
      const std::int64_t n = p.numel();
      cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t k = lo; k < hi; ++k) {
          T d = g[k];
          if (wd != 0) d += wd * w[k];
          m[k] = b1 * m[k] + (1 - b1) * d;
          v[k] = b2 * v[k] + (1 - b2) * d * d;
          w[k] -= step_size * (m[k] / (std::sqrt(v[k]) / bias2_root + eps));
        }
      });
    });
  }
}

nlohmann::json Adam::config() const {
  return {{"lr", lr()},
          {"betas", {options_.beta1, options_.beta2}},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay}};
}

}  // namespace aimc
