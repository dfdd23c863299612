// Optimizer base: parameter checks, gradients, state transfer (see optimizer.h).
#include "layers/optim/optimizer.h"

#include <cmath>
#include <cstdlib>

namespace aimc {

Optimizer::Optimizer(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  if (!(lr >= 0)) throw ConfigError("optimizer: lr must be >= 0, got " + std::to_string(lr));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined()) throw ValueError("optimizer: parameter " + std::to_string(i) + " is undefined");
    check_float(p, "optimizer");
    if (!p.is_leaf()) throw ValueError("optimizer: parameter " + std::to_string(i) + " is not a leaf tensor");
    if (!p.is_contiguous()) throw ValueError("optimizer: parameter " + std::to_string(i) + " is not contiguous");
  }
  state_.resize(params_.size());
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0)) throw ConfigError("optimizer: lr must be >= 0, got " + std::to_string(lr));
  lr_ = lr;
}

Shape Optimizer::state_shape(std::size_t i, const std::string&) const { return params_[i].shape(); }

const char* Optimizer::state_value_range(const std::string&) const { return "a finite value"; }

bool Optimizer::state_value_ok(const std::string&, double v) const { return std::isfinite(v); }

std::vector<std::pair<std::string, Tensor>> Optimizer::named_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (std::size_t i = 0; i < state_.size(); ++i)
    for (const auto& [name, t] : state_[i]) out.emplace_back(std::to_string(i) + "." + name, t);
  return out;
}

Optimizer& Optimizer::to(Device device) {
  for (auto& per_param : state_)
    for (auto& [name, t] : per_param) t.move_to_(device);
  return *this;
}

void Optimizer::load_state(const std::vector<std::pair<std::string, Tensor>>& state) {
  std::vector<std::map<std::string, Tensor>> fresh(params_.size());
  for (const auto& [key, value] : state) {
    const auto dot = key.find('.');
    char* end = nullptr;
    const unsigned long long index = dot == std::string::npos ? 0 : std::strtoull(key.c_str(), &end, 10);
    if (dot == std::string::npos || dot == 0 || end != key.c_str() + dot || dot + 1 == key.size())
      throw ValueError(type_name() + " state: malformed key '" + key + "' (expected '<param index>.<name>')");
    if (index >= params_.size())
      throw ValueError(type_name() + " state: key '" + key + "' names parameter " + std::to_string(index) +
                       " but there are " + std::to_string(params_.size()));
    const std::string name = key.substr(dot + 1);
    if (!value.defined()) throw ValueError(type_name() + " state: value of '" + key + "' is undefined");
    const Shape expected = state_shape(index, name);
    if (value.shape() != expected)
      throw ShapeError(type_name() + " state: shape mismatch for '" + key + "': " + shape_str(value.shape()) +
                       " vs expected " + shape_str(expected));
    if (fresh[index].count(name)) throw ValueError(type_name() + " state: key '" + key + "' appears twice");
    const std::vector<double> values = value.to(DType::Float64).to_double_vector();
    for (std::size_t k = 0; k < values.size(); ++k)
      if (!std::isfinite(values[k]) || !state_value_ok(name, values[k]))
        throw ValueError(type_name() + " state: '" + key + "' element " + std::to_string(k) + " is " +
                         std::to_string(values[k]) + ", expected " + state_value_range(name));
    fresh[index][name] = value.detach().to(params_[index].dtype()).to(params_[index].device()).clone();
  }
  state_ = std::move(fresh);
}

}  // namespace aimc
