// Module: the base class of every layer and container.
//
// A module owns named parameters (trainable leaves, requires_grad set),
// named buffers (state that is saved but not trained, e.g. BatchNorm running
// statistics) and named child modules, all kept in registration order. Names
// of nested entries are dotted paths ("features.0.weight"), as in PyTorch, so
// a state dict reads the same in both. Tensors are handles: a subclass keeps
// its own handle to a registered tensor, and load_state_dict copies values in
// place so those handles stay valid.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/tensor.h"

namespace aimc {

class AnalogTile;

class Generator;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Training mode of this module and all its descendants.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Registration; names are unique within one module and contain no '.'.
  // register_parameter sets requires_grad on t (a leaf) and returns it.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  // Registers t unless this module already has a buffer of that name (state
  // that appears after construction, e.g. programmed conductances).
  void register_buffer_if_absent(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Recursive, in registration order (own entries first, then each child).
  std::vector<Tensor> parameters() const;
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  // Replaces the direct child `name` (model conversion); ValueError if absent.
  // Containers that keep their own handles to children override it to update them.
  virtual void replace_child(const std::string& name, std::shared_ptr<Module> module);
  // Direct children only.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::int64_t num_parameters() const;  // total number of parameter elements

  // Parameters then buffers, each in named_parameters()/named_buffers() order.
  NamedTensors state_dict() const;
  // Copies the values into this module's tensors in place (dtype converted).
  // Every entry is checked before anything changes: with strict, a missing or
  // unexpected key throws ValueError naming it; a shape mismatch always throws
  // ShapeError naming the key and both shapes; a repeated key throws ValueError.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  // Drops the gradients of all parameters.
  void zero_grad();

  // Moves every parameter (with its gradient) and every buffer of this module
  // and its descendants to `device` IN PLACE (Tensor::move_to_): the handles
  // that layers, tiles and optimizers hold stay valid and follow. The buffers
  // hold all the state a checkpoint saves: tile states (stream counters,
  // noise-management values, chip seeds), programmed conductances and drift
  // state, device-model hidden parameters, batch-norm statistics. A tied
  // tensor moves once. DeviceError without a usable GPU or for an index other
  // than 0 (nothing moves then); running out of GPU memory part way leaves
  // the tensors moved so far on the GPU (cpu() brings them back).
  Module& to(Device device);
  Module& cuda(int index = 0) { return to(Device::cuda(index)); }
  Module& cpu() { return to(Device::cpu()); }
  // The device of the first parameter or buffer (cpu for a module with none).
  Device device() const;

  // Called after every optimizer step (hardware-aware training: weight clip
  // and remap on analog tiles). Runs post_update() on this module and every
  // descendant.
  void post_update_step();

  // Inference on analog hardware (REFERENCE.md section 5), on this module and
  // every descendant, in eval mode only (ValueError in training mode, as
  // aihwkit). program_analog_weights() programs every analog tile's weights
  // onto its devices; drift_analog_weights(t) reads them t seconds after
  // programming with fresh read noise (programming first where needed).
  // Layers without a noise model ignore both.
  void program_analog_weights();
  void drift_analog_weights(double t_inference);

  // A new chip for every analog layer: layer k (in module order) gets the
  // k-th draw of Generator(seed, kAnalogConversionStream), as a conversion with
  // that seed would give it; noise streams restart and programming is
  // forgotten. Weights and trained scales stay. Repeats of an inference
  // experiment use this to sample chips.
  void reseed_analog(std::uint64_t seed);

  // Data-parallel training (tools/training/trainer.h): puts every random
  // stream a training step draws from (analog tiles' forward and backward
  // noise, hardware-aware weight modifiers, dropout masks) at a position
  // that depends on `draw` only, draw · kDrawStride Philox blocks into the
  // stream, so the step's shard number `draw` gets the same numbers whichever
  // process runs it and whatever ran before. Each position leaves 2^36
  // blocks (2^38 float32 values) to the shard's passes.
  static constexpr std::uint64_t kDrawStride = std::uint64_t(1) << 36;
  void position_streams(std::uint64_t draw);

  // Every analog tile of this module and its descendants, in module order.
  std::vector<AnalogTile*> analog_tiles();

  virtual std::string type_name() const = 0;
  // The constructor arguments as JSON (no tensors); {} by default. Containers
  // include their children's {"type", "config"}, so module_from_config
  // (module_factory.h) rebuilds the whole tree from {"type", "config"}.
  virtual nlohmann::json config() const;

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  // This module's own post-update work (nothing by default).
  virtual void post_update() {}
  // This module's own part of program_analog_weights / drift_analog_weights.
  virtual void program_own_analog_weights() {}
  virtual void drift_own_analog_weights(double /*t_inference*/) {}
  virtual void reseed_own_analog(Generator& /*gen*/) {}
  // This module's own part of position_streams (nothing by default).
  virtual void position_own_streams(std::uint64_t /*draw*/) {}
  // This module's own analog tiles (none by default).
  virtual std::vector<AnalogTile*> own_analog_tiles() { return {}; }

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool buffers, NamedTensors& out) const;
  // Throws ValueError naming `what` when in training mode.
  void require_eval(const char* what) const;
  void reseed_analog(Generator& gen);

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace aimc
