// Graph: a module that runs a directed acyclic graph of operations over named
// values, with any number of inputs and outputs (an imported ONNX model, a
// residual network written out by hand).
//
//   inputs     names of the values given to forward(), in order
//   constants  named tensors (buffers of the graph, saved in its state dict)
//   parameters named tensors trained with the graph (its own parameters, e.g.
//              an imported LayerNorm's scale and bias), values like constants
//   nodes      each reads named values and writes named values, and is either
//              - a module node: a child Module (Linear, Conv2d, BatchNorm2d,
//                AnalogLinear, a Sequential, ...) with one input and one
//                output; registered under the node's name, so its parameters
//                read "<node>.weight", or
//              - an op node: a parameter-free op given by name, with a JSON
//                object of attributes (see below); one output
//   outputs    names of the values forward() returns, in order
//
// Construction checks the graph and finds the order to run it in (the given
// order where it is already topological): a duplicate value name (an input,
// constant or node output defined twice), an input that no value provides,
// a cycle, an unknown op, bad attributes or a wrong number of inputs or
// outputs throw ConfigError naming the node. forward() runs the nodes with
// autograd, so gradients reach the inputs, the children's parameters, the
// graph's own parameters and the constants as for any module. Module nodes are ordinary children:
// parameters(), state dicts, convert_to_analog (replace_child),
// realistic reads, program/drift and reseed_analog work on a Graph as on a
// Sequential.
//
// Ops (inputs; attributes with defaults):
//   add, sub, mul, div (a, b; numpy broadcasting)
//   matmul (a [*, M, K], b [*, K, N]; batched, as numpy's matmul)
//   linear (x [*, in], weight [out, in][, bias [out]])
//   relu, sigmoid, tanh, gelu, neg, exp, sqrt, erf, identity (x)
//   pow (x; exponent, required)
//   slice (x; axis, start, end: required, as engine slice: end exclusive)
//   conv_transpose (x, weight[, bias]; stride, padding, dilation,
//                   output_padding: ints per spatial dim, default 1/0/1/0;
//                   groups, default 1, with weight [C_in, C_out / groups,
//                   *kernel] as PyTorch's)
//   leaky_relu (x; negative_slope 0.01)
//   softmax, log_softmax (x; axis -1)
//   reshape (x; shape: ints, one -1 allowed)
//   flatten (x; start_dim 1, end_dim -1)
//   transpose (x; perm: a permutation of the dims)
//   concat (x1, x2, ...; axis 0)
//   sum, mean (x; axes: ints (all when absent), keepdim false)
//   global_avg_pool (x [N, C, *S] -> [N, C])
//
// config(): {"inputs": [...], "outputs": [...], "constants": [{"name",
// "shape", "dtype"}], "parameters": [the same; only when there are any],
// "nodes": [{"name", "inputs", "outputs", "op",
// "attributes"} or {"name", "inputs", "outputs", "module": {"type",
// "config"}}]}; module_from_config (module_factory.h) reads it back, the
// constants' and parameters' values then come from the state dict.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/module.h"

namespace aimc {

class ModuleBuilder;

struct GraphNode {
  std::string name;
  std::vector<std::string> inputs, outputs;
  // A module node: the child (one input, one output). Null for an op node.
  std::shared_ptr<Module> module;
  // An op node: the op's name and its attributes (a JSON object).
  std::string op;
  nlohmann::json attributes = nlohmann::json::object();
};

class Graph : public Module {
 public:
  // Constants and parameters must be float32 or float64 tensors; their names
  // are values of the graph and buffer or parameter names (no '.').
  // Parameters are registered with register_parameter (trainable leaves).
  Graph(std::vector<std::string> inputs, std::vector<GraphNode> nodes, std::vector<std::string> outputs,
        NamedTensors constants = {}, NamedTensors parameters = {});

  // The outputs for the inputs (both in declaration order); ValueError when
  // the number of inputs is wrong.
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs);
  // A graph of one input and one output (ValueError otherwise).
  Tensor forward(const Tensor& x) override;

  const std::vector<std::string>& input_names() const { return inputs_; }
  const std::vector<std::string>& output_names() const { return outputs_; }
  // The nodes as given (not in run order).
  const std::vector<GraphNode>& nodes() const { return nodes_; }
  // The node indices in the order forward() runs them.
  const std::vector<std::size_t>& run_order() const { return order_; }

  // Also replaces the module node of that name (model conversion).
  void replace_child(const std::string& name, std::shared_ptr<Module> module) override;
  std::string type_name() const override { return "Graph"; }
  nlohmann::json config() const override;

  // The factory's builder (module_factory.h): a Graph from config().
  static std::shared_ptr<Graph> from_config(const nlohmann::json& config, const std::string& where,
                                            ModuleBuilder& builder);
  // The op names an op node may use.
  static std::vector<std::string> op_names();

  // An op ready to run: the output from the inputs.
  using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

 private:
  struct Step {
    std::vector<std::size_t> inputs;  // value ids
    std::size_t output;               // value id
    std::vector<std::size_t> release; // value ids whose last use this is
  };

  std::vector<std::string> inputs_, outputs_;
  std::vector<GraphNode> nodes_;
  // The registered buffers, then the registered parameters (value ids follow the inputs in this order).
  std::vector<std::pair<std::string, Tensor>> constants_;
  std::size_t num_buffers_ = 0;  // constants_[0, num_buffers_) are buffers, the rest parameters
  std::vector<std::size_t> order_;
  std::vector<OpFn> ops_;          // per node; empty for module nodes
  std::vector<Step> steps_;        // per node
  std::size_t num_values_ = 0;
  std::vector<std::size_t> output_ids_;
};

}  // namespace aimc
