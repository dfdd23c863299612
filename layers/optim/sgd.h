// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, with
// torch.optim.SGD semantics:
//   g = grad + weight_decay * p
//   b = g (first step), else b = momentum * b + (1 - dampening) * g
//   g = nesterov ? g + momentum * b : b          (when momentum != 0)
//   p -= lr * g
// State per parameter: "momentum_buffer" (only with momentum != 0).
#pragma once

#include "layers/optim/optimizer.h"

namespace aimc {

struct SGDOptions {
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  // ConfigError for negative values or nesterov without momentum / with dampening.
  SGD(std::vector<Tensor> params, double lr, const SGDOptions& options = {});

  void step() override;
  std::string type_name() const override { return "SGD"; }
  nlohmann::json config() const override;
  const SGDOptions& options() const { return options_; }

 protected:
  Shape state_shape(std::size_t i, const std::string& name) const override;

 private:
  SGDOptions options_;
};

}  // namespace aimc
