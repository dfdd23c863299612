// Dropout layer (see dropout.h).
#include "layers/modules/dropout.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"

namespace aimc {

Dropout::Dropout(double p, Generator gen) : p_(p), gen_(gen) {
  if (!(p >= 0 && p < 1)) throw ConfigError("Dropout: p must be in [0, 1), got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), gen_); }

nlohmann::json Dropout::config() const { return {{"p", p_}}; }

}  // namespace aimc
