// Finite-difference gradient checker (float64, central differences).
//
// f maps the inputs to one output tensor. The checker reduces the output to
// the scalar L = sum(f(x) * R) with a fixed random R (so every output element
// matters), runs backward for the analytic gradients dL/dx, and compares each
// input element with (L(x + eps) - L(x - eps)) / (2 eps).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace aimc {

struct GradCheckResult {
  bool ok = true;
  double max_abs_error = 0;  // largest |analytic - numeric|
  std::string message;       // where the worst mismatch is
};

// inputs must be float64 leaves; those with requires_grad are checked.
// An element passes if |a - n| <= atol + rtol * |n|.
GradCheckResult grad_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-6,
                           double rtol = 1e-4);

}  // namespace aimc
