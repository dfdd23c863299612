// Central-difference gradient checker (see grad_check.h).
#include "engine/grad_check.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"

namespace aimc {

GradCheckResult grad_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, double eps, double atol, double rtol) {
  for (const auto& t : inputs)
    if (t.defined() && t.dtype() != DType::Float64)
      throw ValueError("grad_check: inputs must be float64, got " + std::string(dtype_name(t.dtype())));
  for (const auto& t : inputs)
    if (t.defined()) t.impl()->grad.reset();

  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = f(inputs);
  }
  Generator gen(12345, 99);
  const Tensor weights = gen.normal(probe.shape(), 0.0, 1.0, DType::Float64);
  auto scalar_loss = [&](const std::vector<Tensor>& xs) { return sum(mul(f(xs), weights)); };

  Tensor loss = scalar_loss(inputs);
  if (!loss.requires_grad()) throw ValueError("grad_check: output does not depend on any input that requires grad");
  loss.backward();

  GradCheckResult result;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    if (!x.is_contiguous()) throw ValueError("grad_check: inputs must be contiguous");
    const Tensor g = x.grad();
    const std::vector<double> analytic = g.defined() ? g.to_double_vector() : std::vector<double>(x.numel(), 0.0);
    double* p = x.data<double>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const double saved = p[i];
      double plus, minus;
      {
        NoGradGuard no_grad;
        p[i] = saved + eps;
        plus = scalar_loss(inputs).item();
        p[i] = saved - eps;
        minus = scalar_loss(inputs).item();
        p[i] = saved;
      }
      const double numeric = (plus - minus) / (2 * eps);
      const double err = std::abs(analytic[i] - numeric);
      if (err > result.max_abs_error) result.max_abs_error = err;
      if (err > atol + rtol * std::abs(numeric) && result.ok) {
        result.ok = false;
        std::ostringstream o;
        o << "input " << k << " element " << i << ": analytic " << analytic[i] << " vs numeric " << numeric;
        result.message = o.str();
      }
    }
  }
  for (const auto& t : inputs)
    if (t.defined()) t.impl()->grad.reset();
  return result;
}

}  // namespace aimc
