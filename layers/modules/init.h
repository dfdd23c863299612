// Parameter initialisers (PyTorch's defaults). All draw from a Generator
// passed in, so a model built twice from the same seed is bitwise identical.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace aimc {

class Generator;

// Fan-in of a weight [out, in, *kernel]: in * prod(kernel). ShapeError below 2-D.
std::int64_t fan_in(const Shape& weight_shape);

// Fills a contiguous CPU float tensor in place (not recorded).
void uniform_(Tensor& t, double low, double high, Generator& gen);

// Kaiming-uniform as torch.nn.init.kaiming_uniform_ (fan_in mode, leaky_relu
// gain): U(-b, b) with b = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in). With
// a = sqrt(5) (PyTorch's default for Linear/Conv) b = 1/sqrt(fan_in).
void kaiming_uniform_(Tensor& weight, double a, Generator& gen);

// PyTorch's default layer initialisation: weight kaiming_uniform_(a=sqrt(5)),
// then bias (if defined) U(-1/sqrt(fan_in), 1/sqrt(fan_in)); weight drawn first.
void default_layer_init_(Tensor& weight, Tensor& bias, Generator& gen);

}  // namespace aimc
