// Flatten layer (see flatten.h).
#include "layers/modules/flatten.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"

namespace aimc {

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim_, end_dim_); }
nlohmann::json Flatten::config() const { return {{"start_dim", start_dim_}, {"end_dim", end_dim_}}; }

}  // namespace aimc
