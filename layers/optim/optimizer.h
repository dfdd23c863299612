// Optimizer: the base of SGD, AnalogSGD and Adam.
//
// Holds the parameters to update, the learning rate and a per-parameter state
// (named tensors such as "momentum_buffer", created on the first step). Steps
// update the parameters in place without recording autograd. named_state()
// and load_state() move the state through checkpoints with keys
// "<param index>.<state name>" ("0.exp_avg").
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/tensor.h"

namespace aimc {

class Optimizer {
 public:
  // lr > 0, else ConfigError. Parameters must be defined float leaves.
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Applies one update from the current gradients; parameters without a
  // gradient are skipped.
  virtual void step() = 0;
  // Drops the gradients of all parameters.
  virtual void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);  // ConfigError unless lr >= 0
  const std::vector<Tensor>& params() const { return params_; }

  virtual std::string type_name() const = 0;
  // The hyperparameters (lr included) as JSON.
  virtual nlohmann::json config() const = 0;

  // The state tensors in a deterministic order (parameter index, then name).
  std::vector<std::pair<std::string, Tensor>> named_state() const;
  // Replaces the state with copies of `state` (keys as named_state()). Checks
  // everything first: ValueError naming a malformed key, parameter index or
  // a value out of its range (non-finite, or what state_value_range says),
  // ShapeError naming a key whose shape does not fit.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

  // Moves the state tensors (SGD momentum, Adam moments and step) to `device`
  // in place, as Module::to does for the parameters (move the model too):
  // handles stay valid. DeviceError without a usable GPU (nothing moves then).
  Optimizer& to(Device device);

 protected:
  // The state of parameter i (created empty on first use).
  std::map<std::string, Tensor>& state(std::size_t i) { return state_[i]; }
  // Expected shape of state `name` of parameter i; the parameter's shape by default.
  virtual Shape state_shape(std::size_t i, const std::string& name) const;
  // The values state `name` may hold, as a phrase for messages, and whether
  // v is one of them; every finite value by default.
  virtual const char* state_value_range(const std::string& name) const;
  virtual bool state_value_ok(const std::string& name, double v) const;

 private:
  std::vector<Tensor> params_;
  std::vector<std::map<std::string, Tensor>> state_;
  double lr_;
};

}  // namespace aimc
