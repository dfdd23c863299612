// Adam with torch.optim.Adam semantics (L2 weight decay added to the
// gradient, bias-corrected moments, eps added after the bias correction):
//   t += 1;  g = grad + weight_decay * p
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// State per parameter: "exp_avg", "exp_avg_sq" and "step" (a float scalar).
#pragma once

#include "layers/optim/optimizer.h"

namespace aimc {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
};

class Adam : public Optimizer {
 public:
  // ConfigError unless betas are in [0, 1), eps > 0, weight_decay >= 0.
  Adam(std::vector<Tensor> params, double lr = 1e-3, const AdamOptions& options = {});

  void step() override;
  std::string type_name() const override { return "Adam"; }
  nlohmann::json config() const override;
  const AdamOptions& options() const { return options_; }

 protected:
  Shape state_shape(std::size_t i, const std::string& name) const override;
  // step: a whole number >= 0; exp_avg_sq >= 0 (its square root divides).
  const char* state_value_range(const std::string& name) const override;
  bool state_value_ok(const std::string& name, double v) const override;

 private:
  AdamOptions options_;
};

}  // namespace aimc
