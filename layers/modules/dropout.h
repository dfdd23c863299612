// Dropout: in training zeroes each element with probability p and scales the
// rest by 1/(1-p); the identity in eval. Draws from its own Generator stream
// (copied at construction), so masks are reproducible.
#pragma once

#include "engine/generator.h"
#include "layers/modules/module.h"

namespace aimc {

class Dropout : public Module {
 public:
  // p in [0, 1), else ConfigError.
  Dropout(double p, Generator gen);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  nlohmann::json config() const override;

  double p() const { return p_; }
  Generator& generator() { return gen_; }

 protected:
  void position_own_streams(std::uint64_t draw) override { gen_.set_offset(draw * kDrawStride); }

 private:
  double p_;
  Generator gen_;
};

}  // namespace aimc
