// Parameter initialisers (see init.h).
#include "layers/modules/init.h"

#include <cmath>
#include <string>

#include "engine/generator.h"

namespace aimc {

std::int64_t fan_in(const Shape& s) {
  if (s.size() < 2) throw ShapeError("fan_in: needs a weight of at least 2 dims, got " + shape_str(s));
  std::int64_t f = s[1];
  for (std::size_t i = 2; i < s.size(); ++i) f *= s[i];
  return f;
}

void uniform_(Tensor& t, double low, double high, Generator& gen) {
  if (!t.is_contiguous()) throw ValueError("uniform_: tensor must be contiguous");
  if (!(low <= high)) throw ValueError("uniform_: low " + std::to_string(low) + " > high " + std::to_string(high));
  if (!t.device().is_cpu()) {
    // The generator draws on the host: the same numbers, copied over.
    Tensor host = Tensor::empty(t.shape(), t.dtype());
    uniform_(host, low, high, gen);
    t.copy_(host);
    return;
  }
  dispatch_float(t.dtype(), "uniform_", [&](auto tag) {
    using T = decltype(tag);
    gen.uniform(t.data<T>(), t.numel(), static_cast<T>(low), static_cast<T>(high));
  });
}

void kaiming_uniform_(Tensor& weight, double a, Generator& gen) {
  const std::int64_t f = fan_in(weight.shape());
  if (f <= 0) throw ShapeError("kaiming_uniform_: zero fan-in for weight " + shape_str(weight.shape()));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(f));
  uniform_(weight, -bound, bound, gen);
}

void default_layer_init_(Tensor& weight, Tensor& bias, Generator& gen) {
  kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight.shape())));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace aimc
