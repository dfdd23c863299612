// Activation functions: relu, leaky_relu, sigmoid, tanh, gelu (exact erf
// form), and erf itself. Elementwise, parallel over fixed chunks; NaN inputs give NaN outputs.
#include <cmath>

#include "engine/autograd.h"
#include "engine/elementwise.h"
#include "engine/ops.h"

namespace aimc {

Tensor relu(const Tensor& x) {
  Tensor out = detail::map_unary(x, "relu", [](auto v) { return v <= decltype(v)(0) ? decltype(v)(0) : v; });
  return record(out, "relu", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, xd, "relu backward", [](auto gv, auto v) {
      return v > decltype(v)(0) ? gv : decltype(v)(0);
    })};
  });
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  Tensor out = detail::map_unary(x, "leaky_relu", [negative_slope](auto v) {
    return v > decltype(v)(0) ? v : v * static_cast<decltype(v)>(negative_slope);
  });
  return record(out, "leaky_relu", {x}, [xd = x.detach(), negative_slope](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, xd, "leaky_relu backward", [negative_slope](auto gv, auto v) {
      return v > decltype(v)(0) ? gv : gv * static_cast<decltype(v)>(negative_slope);
    })};
  });
}

Tensor sigmoid(const Tensor& x) {
  // Stable on both sides: never exponentiates a large positive number.
  // Branch-free (the signs of pre-activations are random): e = exp(-|v|),
  // then 1/(1 + e) for v >= 0 and e/(1 + e) below.
  Tensor out = detail::map_unary(x, "sigmoid", [](auto v) {
    using T = decltype(v);
    const T e = std::exp(-std::abs(v));
    const T numerator = v >= T(0) ? T(1) : e;
    return numerator / (T(1) + e);
  });
  return record(out, "sigmoid", {x}, [yd = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, yd, "sigmoid backward", [](auto gv, auto y) {
      return gv * y * (decltype(y)(1) - y);
    })};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = detail::map_unary(x, "tanh", [](auto v) { return std::tanh(v); });
  return record(out, "tanh", {x}, [yd = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, yd, "tanh backward", [](auto gv, auto y) {
      return gv * (decltype(y)(1) - y * y);
    })};
  });
}

Tensor erf(const Tensor& x) {
  // erf'(x) = 2 / sqrt(pi) exp(-x^2).
  Tensor out = detail::map_unary(x, "erf", [](auto v) { return std::erf(v); });
  return record(out, "erf", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, xd, "erf backward", [](auto gv, auto v) {
      using T = decltype(v);
      return gv * T(M_2_SQRTPI) * std::exp(-v * v);
    })};
  });
}

Tensor gelu(const Tensor& x) {
  // gelu(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; gelu'(x) = Phi(x) + x phi(x).
  Tensor out = detail::map_unary(x, "gelu", [](auto v) {
    using T = decltype(v);
    return T(0.5) * v * (T(1) + std::erf(v * T(M_SQRT1_2)));
  });
  return record(out, "gelu", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{detail::map_binary(g, xd, "gelu backward", [](auto gv, auto v) {
      using T = decltype(v);
      const T cdf = T(0.5) * (T(1) + std::erf(v * T(M_SQRT1_2)));
      const T pdf = std::exp(T(-0.5) * v * v) * T(0.5 * M_2_SQRTPI * M_SQRT1_2);  // 1/sqrt(2 pi)
      return gv * (cdf + v * pdf);
    })};
  });
}

}  // namespace aimc
