// Activation layers (see activation.h).
#include "layers/modules/activation.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"

namespace aimc {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }
nlohmann::json LeakyReLU::config() const { return {{"negative_slope", negative_slope_}}; }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor GELU::forward(const Tensor& x) { return gelu(x); }

}  // namespace aimc
