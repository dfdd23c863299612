// Adam optimizer (see adam.h). One fused, contiguous loop per parameter.
#include "layers/optim/adam.h"

#include <cmath>
#include <cstdint>

#if __has_include(<experimental/simd>)
#include <experimental/simd>
#define AIMC_ADAM_SIMD 1
#endif

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"
#include "kernels/optim_law.h"

namespace aimc {
namespace {

using optim::AdamCoefficients;

// The update of elements [0, n) of one parameter; the scalar form of the
// vector loop below (kernels/optim_law.h, also the CUDA kernel's), used for
// its remainder and where no SIMD is available.
template <class T>
void adam_update_scalar(const AdamCoefficients<T>& c, std::int64_t n, T* __restrict w, const T* __restrict g,
                        T* __restrict m, T* __restrict v) {
  for (std::int64_t k = 0; k < n; ++k) optim::adam_element(c, g[k], w[k], m[k], v[k]);
}

// The same update with explicit SIMD vectors: std::sqrt keeps the loop scalar
// (it may set errno), while the vector sqrt and division are exact IEEE
// operations, so every element gets the same formula either way.
template <class T>
void adam_update(const AdamCoefficients<T>& c, std::int64_t n, T* w, const T* g, T* m, T* v) {
  std::int64_t k = 0;
#ifdef AIMC_ADAM_SIMD
  namespace stdx = std::experimental;
  using Vec = stdx::native_simd<T>;
  constexpr std::int64_t width = static_cast<std::int64_t>(Vec::size());
  const auto unaligned = stdx::element_aligned;
  for (; k + width <= n; k += width) {
    Vec d(g + k, unaligned), wk(w + k, unaligned), mk(m + k, unaligned), vk(v + k, unaligned);
    if (c.weight_decay != 0) d += c.weight_decay * wk;
    mk = c.beta1 * mk + (1 - c.beta1) * d;
    vk = c.beta2 * vk + (1 - c.beta2) * d * d;
    wk -= c.step_size * (mk / (stdx::sqrt(vk) / c.bias2_root + c.eps));
    mk.copy_to(m + k, unaligned);
    vk.copy_to(v + k, unaligned);
    wk.copy_to(w + k, unaligned);
  }
#endif
  adam_update_scalar(c, n - k, w + k, g + k, m + k, v + k);
}

}  // namespace

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

const char* Adam::state_value_range(const std::string& name) const {
  if (name == "step") return "a whole number >= 0";
  if (name == "exp_avg_sq") return "a finite value >= 0";
  return "a finite value";
}

bool Adam::state_value_ok(const std::string& name, double v) const {
  if (name == "step") return v >= 0 && v == std::floor(v);
  if (name == "exp_avg_sq") return v >= 0;
  return true;
}

void Adam::step() {
  NoGradGuard no_grad;
  const auto& ps = params();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Tensor p = ps[i];
    Tensor grad = p.grad();
    if (!grad.defined()) continue;
    grad = grad.to(p.dtype()).contiguous();
    auto& st = state(i);
    if (!st.count("step")) {
      st["step"] = Tensor::zeros({}, p.dtype(), p.device());
      st["exp_avg"] = Tensor::zeros(p.shape(), p.dtype(), p.device());
      st["exp_avg_sq"] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    const double t = st["step"].item() + 1.0;
    st["step"].fill_(t);
    const double bias1 = 1.0 - std::pow(options_.beta1, t);
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, t));
    Tensor m_t = st["exp_avg"], v_t = st["exp_avg_sq"];
    auto coefficients = [&](auto tag) {
      using T = decltype(tag);
      AdamCoefficients<T> c;
      c.beta1 = static_cast<T>(options_.beta1);
      c.beta2 = static_cast<T>(options_.beta2);
      c.weight_decay = static_cast<T>(options_.weight_decay);
      c.eps = static_cast<T>(options_.eps);
      c.step_size = static_cast<T>(lr() / bias1);
      c.bias2_root = static_cast<T>(bias2_sqrt);
      return c;
    };
    if (p.device().is_cuda()) {
      // The same per-element law on the GPU (kernels/cuda/optim.cu).
      if (p.dtype() != DType::Float32 || !p.is_contiguous())
        throw DeviceError(std::string("Adam.step on cuda: needs contiguous float32 parameters, got ") +
                          dtype_name(p.dtype()) + (p.is_contiguous() ? "" : " (non-contiguous)"));
      grad = grad.to(p.device());
      cuda::backend().adam_step(coefficients(float{}), static_cast<std::size_t>(p.numel()), p.data<float>(),
                                grad.data<float>(), m_t.data<float>(), v_t.data<float>());
      continue;
    }
    dispatch_float(p.dtype(), "Adam.step", [&](auto tag) {
      using T = decltype(tag);
      const AdamCoefficients<T> c = coefficients(tag);
      T* w = p.template data<T>();
      const T* g = grad.template data<T>();
      T* m = m_t.template data<T>();
      T* v = v_t.template data<T>();
      // Chunks of at least 16384 elements, a multiple of 64 (so of any SIMD
      // width): a small parameter runs in one call; the split depends on n only.
      const std::int64_t n = p.numel();
      const std::int64_t grain = (cpu::grain_for(n, 1 << 14) + 63) / 64 * 64;
      cpu::parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) {
        adam_update(c, hi - lo, w + lo, g + lo, m + lo, v + lo);
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
