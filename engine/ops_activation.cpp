// Activation functions: relu, leaky_relu, sigmoid, tanh, gelu (exact erf
// form), and erf itself. Elementwise with the laws of
// kernels/engine/elementwise_law.h on the input's device; NaN inputs give NaN outputs.
#include "engine/autograd.h"
#include "engine/elementwise.h"
#include "engine/ops.h"

namespace aimc {
namespace {
using detail::binary;
using detail::unary;
using engine_law::Binary;
using engine_law::Unary;
}  // namespace

Tensor relu(const Tensor& x) {
  Tensor out = unary<Unary::relu>(x, "relu");
  return record(out, "relu", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::relu_grad>(g, xd, "relu backward")};
  });
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  Tensor out = unary<Unary::leaky_relu>(x, "leaky_relu", negative_slope);
  return record(out, "leaky_relu", {x}, [xd = x.detach(), negative_slope](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::leaky_relu_grad>(g, xd, "leaky_relu backward", negative_slope)};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = unary<Unary::sigmoid>(x, "sigmoid");
  return record(out, "sigmoid", {x}, [yd = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::sigmoid_grad>(g, yd, "sigmoid backward")};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = unary<Unary::tanh>(x, "tanh");
  return record(out, "tanh", {x}, [yd = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::tanh_grad>(g, yd, "tanh backward")};
  });
}

Tensor erf(const Tensor& x) {
  // erf'(x) = 2 / sqrt(pi) exp(-x^2).
  Tensor out = unary<Unary::erf>(x, "erf");
  return record(out, "erf", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::erf_grad>(g, xd, "erf backward")};
  });
}

Tensor gelu(const Tensor& x) {
  // gelu(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; gelu'(x) = Phi(x) + x phi(x).
  Tensor out = unary<Unary::gelu>(x, "gelu");
  return record(out, "gelu", {x}, [xd = x.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::gelu_grad>(g, xd, "gelu backward")};
  });
}

}  // namespace aimc
