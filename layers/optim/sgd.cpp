// SGD optimizer (see sgd.h). One fused, contiguous loop per parameter.
#include "layers/optim/sgd.h"

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"
#include "kernels/optim_law.h"

namespace aimc {

SGD::SGD(std::vector<Tensor> params, double lr, const SGDOptions& options)
    : Optimizer(std::move(params), lr), options_(options) {
  if (!(options.momentum >= 0)) throw ConfigError("SGD: momentum must be >= 0, got " + std::to_string(options.momentum));
  if (!(options.dampening >= 0 && options.dampening <= 1))
    throw ConfigError("SGD: dampening must be in [0, 1], got " + std::to_string(options.dampening));
  if (!(options.weight_decay >= 0))
    throw ConfigError("SGD: weight_decay must be >= 0, got " + std::to_string(options.weight_decay));
  if (options.nesterov && (options.momentum <= 0 || options.dampening != 0))
    throw ConfigError("SGD: nesterov needs momentum > 0 and dampening 0");
}

Shape SGD::state_shape(std::size_t i, const std::string& name) const {
  if (name != "momentum_buffer")
    throw ValueError("SGD state: unknown state name '" + name + "' (expected momentum_buffer)");
  return params()[i].shape();
}

void SGD::step() {
  NoGradGuard no_grad;
  const auto& ps = params();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Tensor p = ps[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    grad = grad.to(p.dtype()).contiguous();
    const bool use_momentum = options_.momentum != 0;
    bool first = false;
    Tensor buf;
    if (use_momentum) {
      auto& st = state(i);
      auto it = st.find("momentum_buffer");
      first = it == st.end();
      if (first) it = st.emplace("momentum_buffer", Tensor::zeros(p.shape(), p.dtype(), p.device())).first;
      buf = it->second;
    }
    auto coefficients = [&](auto tag) {
      using T = decltype(tag);
      optim::SgdCoefficients<T> c;
      c.lr = static_cast<T>(this->lr());
      c.weight_decay = static_cast<T>(options_.weight_decay);
      c.momentum = static_cast<T>(options_.momentum);
      c.damp = static_cast<T>(1 - options_.dampening);
      c.use_momentum = use_momentum;
      c.first = first;
      c.nesterov = options_.nesterov;
      return c;
    };
    if (p.device().is_cuda()) {
      // The same per-element law on the GPU (kernels/cuda/optim.cu).
      if (p.dtype() != DType::Float32 || !p.is_contiguous())
        throw DeviceError(std::string("SGD.step on cuda: needs contiguous float32 parameters, got ") +
                          dtype_name(p.dtype()) + (p.is_contiguous() ? "" : " (non-contiguous)"));
      grad = grad.to(p.device());
      cuda::backend().sgd_step(coefficients(float{}), static_cast<std::size_t>(p.numel()), p.data<float>(),
                               grad.data<float>(), use_momentum ? buf.data<float>() : nullptr);
      continue;
    }
    dispatch_float(p.dtype(), "SGD.step", [&](auto tag) {
      using T = decltype(tag);
      const optim::SgdCoefficients<T> c = coefficients(tag);
      T* w = p.template data<T>();
      const T* g = grad.template data<T>();
      T* b = use_momentum ? buf.template data<T>() : nullptr;
      const std::int64_t n = p.numel();
      cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t k = lo; k < hi; ++k) optim::sgd_element(c, g[k], w[k], b ? b + k : nullptr);
      });
    });
  }
}

nlohmann::json SGD::config() const {
  return {{"lr", lr()},
          {"momentum", options_.momentum},
          {"dampening", options_.dampening},
          {"weight_decay", options_.weight_decay},
          {"nesterov", options_.nesterov}};
}

}  // namespace aimc
