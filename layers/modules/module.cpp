// Module registration, traversal and state dicts (see module.h).
#include "layers/modules/module.h"

#include <cmath>

#include "engine/generator.h"

#include <unordered_set>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"

namespace aimc {

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw ValueError(std::string(what) + " name '" + name + "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    throw ValueError(std::string(what) + " name '" + name + "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name, "parameter");
  if (!t.defined()) throw ValueError("parameter '" + name + "' is undefined");
  check_float(t, "register_parameter");
  t.set_requires_grad(true);
  parameters_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  if (!t.defined()) throw ValueError("buffer '" + name + "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  if (!module) throw ValueError("module '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

std::vector<AnalogTile*> Module::analog_tiles() {
  std::vector<AnalogTile*> out = own_analog_tiles();
  for (auto& [name, child] : children_) {
    const auto tiles = child->analog_tiles();
    out.insert(out.end(), tiles.begin(), tiles.end());
  }
  return out;
}

void Module::post_update_step() {
  post_update();
  for (auto& [name, child] : children_) child->post_update_step();
}

void Module::require_eval(const char* what) const {
  if (training_)
    throw ValueError(std::string(what) + " needs eval mode (call eval() first): the programmed weights are an "
                     "inference-time state");
}

void Module::program_analog_weights() {
  require_eval("program_analog_weights");
  program_own_analog_weights();
  for (auto& [name, child] : children_) child->program_analog_weights();
}

void Module::drift_analog_weights(double t_inference) {
  require_eval("drift_analog_weights");
  if (!(t_inference >= 0.0) || !std::isfinite(t_inference))
    throw ValueError("drift_analog_weights: t_inference must be a finite number of seconds >= 0, got " +
                     std::to_string(t_inference));
  drift_own_analog_weights(t_inference);
  for (auto& [name, child] : children_) child->drift_analog_weights(t_inference);
}

void Module::reseed_analog(std::uint64_t seed) {
  Generator gen(seed, 3);  // convert/models.h: kAnalogConversionStream
  reseed_analog(gen);
}

void Module::position_streams(std::uint64_t draw) {
  position_own_streams(draw);
  for (auto& [name, child] : children_) child->position_streams(draw);
}

void Module::reseed_analog(Generator& gen) {
  reseed_own_analog(gen);
  for (auto& [name, child] : children_) child->reseed_analog(gen);
}

void Module::register_buffer_if_absent(const std::string& name, Tensor t) {
  for (const auto& entry : buffers_)
    if (entry.first == name) return;
  register_buffer(name, std::move(t));
}

void Module::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  if (!module) throw ValueError("replace_child: module '" + name + "' is null");
  for (auto& [n, child] : children_)
    if (n == name) {
      child = std::move(module);
      return;
    }
  throw ValueError("replace_child: no child named '" + name + "'");
}

void Module::collect(const std::string& prefix, bool buffers, NamedTensors& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  // A tensor registered twice (tied weights) is listed once, as in PyTorch,
  // so an optimizer steps it once.
  std::vector<Tensor> out;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& entry : named_parameters())
    if (seen.insert(entry.second.impl()).second) out.push_back(entry.second);
  return out;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", false, out);
  collect("", true, out);
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors own = state_dict();
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < own.size(); ++i) index[own[i].first] = i;

  // Validate everything first so a failed load changes nothing.
  std::vector<std::pair<std::size_t, const Tensor*>> plan;
  std::vector<bool> seen(own.size(), false);
  for (const auto& [key, value] : state) {
    auto it = index.find(key);
    if (it == index.end()) {
      if (strict) throw ValueError("load_state_dict: unexpected key '" + key + "' for " + type_name());
      continue;
    }
    if (seen[it->second]) throw ValueError("load_state_dict: key '" + key + "' appears twice");
    seen[it->second] = true;
    if (!value.defined()) throw ValueError("load_state_dict: value of '" + key + "' is undefined");
    const Tensor& target = own[it->second].second;
    if (value.shape() != target.shape())
      throw ShapeError("load_state_dict: shape mismatch for '" + key + "': checkpoint " +
                       shape_str(value.shape()) + " vs model " + shape_str(target.shape()));
    plan.emplace_back(it->second, &value);
  }
  if (strict)
    for (std::size_t i = 0; i < own.size(); ++i)
      if (!seen[i]) throw ValueError("load_state_dict: missing key '" + own[i].first + "' for " + type_name());

  NoGradGuard no_grad;
  for (auto& [i, value] : plan) own[i].second.copy_(*value);
}

Module& Module::to(Device device) {
  const NamedTensors all = state_dict();
  // Views and tied tensors share a storage: each moves once. The first move
  // checks the device (Tensor::move_to_), so an unusable GPU moves nothing.
  std::unordered_set<const Storage*> moved;
  auto move = [&](const Tensor& t) {
    if (t.defined() && moved.insert(t.storage().get()).second) t.detach().move_to_(device);
  };
  for (const auto& [name, t] : all) {
    move(t);
    move(t.grad());
  }
  return *this;
}

Device Module::device() const {
  const NamedTensors all = state_dict();
  return all.empty() ? Device::cpu() : all.front().second.device();
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

nlohmann::json Module::config() const { return nlohmann::json::object(); }

}  // namespace aimc
