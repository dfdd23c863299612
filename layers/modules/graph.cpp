// Graph module (see graph.h).
#include "layers/modules/graph.h"

#include <algorithm>
#include <map>
#include <queue>
#include <set>
#include <utility>

#include "engine/error.h"
#include "engine/ops.h"
#include "layers/config/json_fields.h"
#include "layers/modules/module_factory.h"

namespace aimc {

using config::ObjectReader;

namespace {

// Arity of an op: [min, max] inputs.
struct OpSpec {
  std::size_t min_inputs, max_inputs;
  // The op from its attributes (read with r; finish() is called after).
  std::function<Graph::OpFn(ObjectReader& r)> make;
};

template <Tensor (*F)(const Tensor&, const Tensor&)>
OpSpec binary() {
  return {2, 2, [](ObjectReader&) -> Graph::OpFn { return [](const std::vector<Tensor>& x) { return F(x[0], x[1]); }; }};
}

template <Tensor (*F)(const Tensor&)>
OpSpec unary() {
  return {1, 1, [](ObjectReader&) -> Graph::OpFn { return [](const std::vector<Tensor>& x) { return F(x[0]); }; }};
}

Tensor identity_op(const Tensor& x) { return x; }

// A transposed convolution of `groups` groups (weight [C_in, C_out/groups,
// *kernel], as PyTorch's): each group's channels through the engine's
// conv_transpose, the outputs concatenated along the channels.
Tensor grouped_conv_transpose(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvGeometry& g,
                              const std::vector<std::int64_t>& output_padding, std::int64_t groups) {
  if (x.dim() < 3 || w.dim() < 3 || x.size(1) % groups != 0 || w.size(0) != x.size(1))
    throw ShapeError("Graph conv_transpose: input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                     " with groups " + std::to_string(groups) +
                     " (need C_in divisible by groups and weight [C_in, C_out/groups, *kernel])");
  const std::int64_t cin = x.size(1) / groups, cout = w.size(1);
  std::vector<Tensor> outs;
  for (std::int64_t k = 0; k < groups; ++k)
    outs.push_back(conv_transpose(slice(x, 1, k * cin, (k + 1) * cin), slice(w, 0, k * cin, (k + 1) * cin),
                                  bias.defined() ? slice(bias, 0, k * cout, (k + 1) * cout) : Tensor(), g,
                                  output_padding));
  return concat(outs, 1);
}

std::vector<std::int64_t> all_axes(const Tensor& x) {
  std::vector<std::int64_t> axes;
  for (std::int64_t d = 0; d < x.dim(); ++d) axes.push_back(d);
  return axes;
}

const std::map<std::string, OpSpec>& op_table() {
  static const std::map<std::string, OpSpec> table = {
      {"add", binary<add>()},
      {"sub", binary<sub>()},
      {"mul", binary<mul>()},
      {"div", binary<div>()},
      {"matmul", binary<matmul>()},
      {"linear", {2, 3, [](ObjectReader&) -> Graph::OpFn {
                    return [](const std::vector<Tensor>& x) { return linear(x[0], x[1], x.size() > 2 ? x[2] : Tensor()); };
                  }}},
      {"relu", unary<relu>()},
      {"sigmoid", unary<sigmoid>()},
      {"tanh", unary<tanh>()},
      {"gelu", unary<gelu>()},
      {"neg", unary<neg>()},
      {"exp", unary<exp>()},
      {"sqrt", unary<sqrt>()},
      {"erf", unary<erf>()},
      {"pow", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                 double exponent = 1.0;
                 r.require("exponent");
                 r.read("exponent", exponent);
                 return [exponent](const std::vector<Tensor>& x) { return pow_scalar(x[0], exponent); };
               }}},
      {"conv_transpose", {2, 3, [](ObjectReader& r) -> Graph::OpFn {
                            ConvGeometry g;
                            std::vector<std::int64_t> output_padding;
                            std::int64_t groups = 1;
                            r.read("stride", g.stride);
                            r.read("padding", g.padding);
                            r.read("dilation", g.dilation);
                            r.read("output_padding", output_padding);
                            r.read("groups", groups);
                            if (groups < 1)
                              throw ConfigError(r.path("groups") + " = " + std::to_string(groups) +
                                                " is invalid: allowed >= 1");
                            return [g, output_padding, groups](const std::vector<Tensor>& x) {
                              const Tensor bias = x.size() > 2 ? x[2] : Tensor();
                              if (groups == 1) return conv_transpose(x[0], x[1], bias, g, output_padding);
                              return grouped_conv_transpose(x[0], x[1], bias, g, output_padding, groups);
                            };
                          }}},
      {"slice", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                   std::int64_t axis = 0, start = 0, end = 0;
                   r.require("axis");
                   r.require("start");
                   r.require("end");
                   r.read("axis", axis);
                   r.read("start", start);
                   r.read("end", end);
                   return [axis, start, end](const std::vector<Tensor>& x) { return slice(x[0], axis, start, end); };
                 }}},
      {"identity", unary<identity_op>()},
      {"global_avg_pool", unary<global_avg_pool>()},
      {"leaky_relu", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                        double slope = 0.01;
                        r.read("negative_slope", slope);
                        return [slope](const std::vector<Tensor>& x) { return leaky_relu(x[0], slope); };
                      }}},
      {"softmax", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                     std::int64_t axis = -1;
                     r.read("axis", axis);
                     return [axis](const std::vector<Tensor>& x) { return softmax(x[0], axis); };
                   }}},
      {"log_softmax", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                         std::int64_t axis = -1;
                         r.read("axis", axis);
                         return [axis](const std::vector<Tensor>& x) { return log_softmax(x[0], axis); };
                       }}},
      {"reshape", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                     std::vector<std::int64_t> shape;
                     r.require("shape");
                     r.read("shape", shape);
                     return [shape](const std::vector<Tensor>& x) { return reshape(x[0], Shape(shape)); };
                   }}},
      {"flatten", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                     std::int64_t start = 1, end = -1;
                     r.read("start_dim", start);
                     r.read("end_dim", end);
                     return [start, end](const std::vector<Tensor>& x) { return flatten(x[0], start, end); };
                   }}},
      {"transpose", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                       std::vector<std::int64_t> perm;
                       r.require("perm");
                       r.read("perm", perm);
                       std::vector<std::int64_t> sorted = perm;
                       std::sort(sorted.begin(), sorted.end());
                       for (std::size_t i = 0; i < sorted.size(); ++i)
                         if (sorted[i] != static_cast<std::int64_t>(i))
                           throw ConfigError(r.path("perm") + ": expected a permutation of 0..n-1, got " +
                                             nlohmann::json(perm).dump());
                       return [perm](const std::vector<Tensor>& x) {
                         if (x[0].dim() != static_cast<std::int64_t>(perm.size()))
                           throw ShapeError("Graph transpose: perm " + nlohmann::json(perm).dump() + " for input " +
                                            shape_str(x[0].shape()));
                         return permute(x[0], perm);
                       };
                     }}},
      {"concat", {1, 1024, [](ObjectReader& r) -> Graph::OpFn {
                    std::int64_t axis = 0;
                    r.read("axis", axis);
                    return [axis](const std::vector<Tensor>& x) { return concat(x, axis); };
                  }}},
      {"sum", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                 std::vector<std::int64_t> axes;
                 bool keepdim = false, all = r.find("axes") == nullptr;
                 r.read("axes", axes);
                 r.read("keepdim", keepdim);
                 return [axes, keepdim, all](const std::vector<Tensor>& x) {
                   if (all && !keepdim) return sum(x[0]);
                   return sum(x[0], all ? all_axes(x[0]) : axes, keepdim);
                 };
               }}},
      {"mean", {1, 1, [](ObjectReader& r) -> Graph::OpFn {
                  std::vector<std::int64_t> axes;
                  bool keepdim = false, all = r.find("axes") == nullptr;
                  r.read("axes", axes);
                  r.read("keepdim", keepdim);
                  return [axes, keepdim, all](const std::vector<Tensor>& x) {
                    if (all && !keepdim) return mean(x[0]);
                   return mean(x[0], all ? all_axes(x[0]) : axes, keepdim);
                  };
                }}},
  };
  return table;
}

std::string node_label(const GraphNode& node) { return "Graph node '" + node.name + "'"; }

// An array of strings at r's key (required).
std::vector<std::string> read_names(ObjectReader& r, const char* key) {
  r.require(key);
  const nlohmann::json& v = *r.find(key);
  if (!v.is_array()) throw ConfigError(r.path(key) + ": expected an array of strings, got " + v.dump());
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) throw ConfigError(r.path(key) + ": expected an array of strings, got " + v.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

std::vector<std::string> Graph::op_names() {
  std::vector<std::string> out;
  for (const auto& [name, spec] : op_table()) out.push_back(name);
  return out;
}

Graph::Graph(std::vector<std::string> inputs, std::vector<GraphNode> nodes, std::vector<std::string> outputs,
             NamedTensors constants, NamedTensors parameters)
    : inputs_(std::move(inputs)), outputs_(std::move(outputs)), nodes_(std::move(nodes)) {
  // Value ids: inputs, then constants, then node outputs in node order.
  std::map<std::string, std::size_t> value_id;
  std::vector<std::ptrdiff_t> producer;  // node index per value, -1 for inputs and constants
  auto define = [&](const std::string& value, std::ptrdiff_t node, const std::string& who) {
    if (value.empty()) throw ConfigError(who + ": a value name is empty");
    if (!value_id.emplace(value, value_id.size()).second)
      throw ConfigError(who + ": value '" + value + "' is defined twice (value names must be unique)");
    producer.push_back(node);
  };
  for (const auto& name : inputs_) define(name, -1, "Graph input");
  auto hold = [&](NamedTensors& tensors, bool trainable) {
    const std::string kind = trainable ? "Graph parameter '" : "Graph constant '";
    for (auto& [name, t] : tensors) {
      define(name, -1, kind + name + "'");
      if (!t.defined() || (t.dtype() != DType::Float32 && t.dtype() != DType::Float64))
        throw ConfigError(kind + name + "': expected a float32 or float64 tensor");
      try {
        constants_.emplace_back(name, trainable ? register_parameter(name, t) : register_buffer(name, t));
      } catch (const ValueError& e) {
        throw ConfigError(kind + name + "': " + e.what());
      }
    }
  };
  hold(constants, false);
  num_buffers_ = constants_.size();
  hold(parameters, true);
  std::set<std::string> node_names;
  ops_.resize(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    GraphNode& node = nodes_[i];
    const std::string who = node_label(node);
    if (node.name.empty()) throw ConfigError("Graph node " + std::to_string(i) + ": the name is empty");
    if (!node_names.insert(node.name).second) throw ConfigError(who + ": the node name is used twice");
    if (node.outputs.size() != 1)
      throw ConfigError(who + ": expected 1 output, got " + std::to_string(node.outputs.size()));
    if (node.module) {
      if (!node.op.empty()) throw ConfigError(who + ": a node is either a module or an op, not both");
      if (node.inputs.size() != 1)
        throw ConfigError(who + ": a module node takes 1 input, got " + std::to_string(node.inputs.size()));
      try {
        add_child(node.name, node.module);
      } catch (const ValueError& e) {
        throw ConfigError(who + ": " + e.what());
      }
    } else {
      const auto it = op_table().find(node.op);
      if (it == op_table().end()) {
        std::string known;
        for (const auto& n : op_names()) known += (known.empty() ? "" : ", ") + n;
        throw ConfigError(who + ": unknown op '" + node.op + "' (known ops: " + known + ")");
      }
      const OpSpec& spec = it->second;
      if (node.inputs.size() < spec.min_inputs || node.inputs.size() > spec.max_inputs)
        throw ConfigError(who + ": op '" + node.op + "' takes " + std::to_string(spec.min_inputs) +
                          (spec.max_inputs == spec.min_inputs ? "" : " to " + std::to_string(spec.max_inputs)) +
                          " inputs, got " + std::to_string(node.inputs.size()));
      if (node.attributes.is_null()) node.attributes = nlohmann::json::object();
      ObjectReader r(node.attributes, who + ".attributes");
      ops_[i] = spec.make(r);
      r.finish();
    }
    define(node.outputs[0], static_cast<std::ptrdiff_t>(i), who);
  }
  num_values_ = value_id.size();

  // Kahn's algorithm, smallest node index first: the given order when it is
  // already topological.
  std::vector<std::size_t> missing(nodes_.size(), 0);
  std::vector<std::vector<std::size_t>> consumers(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    for (const auto& value : nodes_[i].inputs) {
      const auto it = value_id.find(value);
      if (it == value_id.end())
        throw ConfigError(node_label(nodes_[i]) + ": input '" + value +
                          "' is not a graph input, constant or node output");
      const std::ptrdiff_t p = producer[it->second];
      if (p >= 0) {
        ++missing[i];
        consumers[static_cast<std::size_t>(p)].push_back(i);
      }
    }
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (missing[i] == 0) ready.push(i);
  while (!ready.empty()) {
    const std::size_t i = ready.top();
    ready.pop();
    order_.push_back(i);
    for (std::size_t c : consumers[i])
      if (--missing[c] == 0) ready.push(c);
  }
  if (order_.size() != nodes_.size())
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (missing[i] != 0) throw ConfigError(node_label(nodes_[i]) + ": the node is on a cycle or depends on one");

  for (const auto& name : outputs_) {
    const auto it = value_id.find(name);
    if (it == value_id.end()) throw ConfigError("Graph output '" + name + "' is not a value of the graph");
    output_ids_.push_back(it->second);
  }
  if (outputs_.empty()) throw ConfigError("Graph: at least one output is needed");

  // Steps, and the last use of every value so forward() can drop it early.
  steps_.resize(nodes_.size());
  std::vector<std::ptrdiff_t> last_use(num_values_, -1);
  for (std::size_t k = 0; k < order_.size(); ++k) {
    Step& s = steps_[order_[k]];
    for (const auto& value : nodes_[order_[k]].inputs) {
      s.inputs.push_back(value_id.at(value));
      last_use[s.inputs.back()] = static_cast<std::ptrdiff_t>(k);
    }
    s.output = value_id.at(nodes_[order_[k]].outputs[0]);
  }
  for (std::size_t id : output_ids_) last_use[id] = -1;  // outputs are kept
  for (std::size_t v = inputs_.size(); v < num_values_; ++v)
    if (v >= inputs_.size() + constants_.size() && last_use[v] >= 0)
      steps_[order_[static_cast<std::size_t>(last_use[v])]].release.push_back(v);
}

std::vector<Tensor> Graph::forward(const std::vector<Tensor>& inputs) {
  if (inputs.size() != inputs_.size())
    throw ValueError("Graph::forward: expected " + std::to_string(inputs_.size()) + " inputs, got " +
                     std::to_string(inputs.size()));
  std::vector<Tensor> values(num_values_);
  for (std::size_t i = 0; i < inputs.size(); ++i) values[i] = inputs[i];
  for (std::size_t c = 0; c < constants_.size(); ++c) values[inputs_.size() + c] = constants_[c].second;
  std::vector<Tensor> args;
  for (std::size_t i : order_) {
    const Step& s = steps_[i];
    args.clear();
    for (std::size_t v : s.inputs) args.push_back(values[v]);
    values[s.output] = nodes_[i].module ? nodes_[i].module->forward(args[0]) : ops_[i](args);
    for (std::size_t v : s.release) values[v] = Tensor();
  }
  std::vector<Tensor> out;
  for (std::size_t id : output_ids_) out.push_back(values[id]);
  return out;
}

Tensor Graph::forward(const Tensor& x) {
  if (inputs_.size() != 1 || outputs_.size() != 1)
    throw ValueError("Graph::forward(x): the graph has " + std::to_string(inputs_.size()) + " inputs and " +
                     std::to_string(outputs_.size()) + " outputs; call forward({...}) instead");
  return forward(std::vector<Tensor>{x})[0];
}

void Graph::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  Module::replace_child(name, module);  // checks the name
  for (auto& node : nodes_)
    if (node.module && node.name == name) node.module = std::move(module);
}

nlohmann::json Graph::config() const {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& node : nodes_) {
    nlohmann::json n = {{"name", node.name}, {"inputs", node.inputs}, {"outputs", node.outputs}};
    if (node.module) {
      n["module"] = module_architecture(*node.module);
    } else {
      n["op"] = node.op;
      n["attributes"] = node.attributes;
    }
    nodes.push_back(std::move(n));
  }
  nlohmann::json constants = nlohmann::json::array(), parameters = nlohmann::json::array();
  for (std::size_t c = 0; c < constants_.size(); ++c) {
    const auto& [name, t] = constants_[c];
    (c < num_buffers_ ? constants : parameters)
        .push_back({{"name", name}, {"shape", t.shape()}, {"dtype", dtype_name(t.dtype())}});
  }
  nlohmann::json out = {{"inputs", inputs_}, {"outputs", outputs_}, {"constants", constants}, {"nodes", nodes}};
  if (!parameters.empty()) out["parameters"] = parameters;  // configs of graphs without them read as before
  return out;
}

std::shared_ptr<Graph> Graph::from_config(const nlohmann::json& config, const std::string& where,
                                          ModuleBuilder& builder) {
  ObjectReader r(config, where);
  std::vector<std::string> inputs = read_names(r, "inputs");
  std::vector<std::string> outputs = read_names(r, "outputs");
  const nlohmann::json* constants_json = r.find("constants");
  const nlohmann::json* parameters_json = r.find("parameters");
  r.require("nodes");
  const nlohmann::json& nodes_json = *r.find("nodes");
  r.finish();

  // Zero tensors of the listed names, shapes and dtypes (values come from the state dict).
  auto read_tensors = [&](const nlohmann::json* list, const char* key) {
    NamedTensors out;
    if (list == nullptr) return out;
    if (!list->is_array())
      throw ConfigError(r.path(key) + ": expected an array of {\"name\", \"shape\", \"dtype\"}");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string at = r.path(key) + "[" + std::to_string(i) + "]";
      ObjectReader c((*list)[i], at);
      std::string name, dtype = "float32";
      std::vector<std::int64_t> shape;
      c.require("name");
      c.require("shape");
      c.read("name", name);
      c.read("shape", shape);
      c.read("dtype", dtype);
      c.finish();
      if (dtype != "float32" && dtype != "float64")
        throw ConfigError(c.path("dtype") + " = '" + dtype + "' is invalid: allowed float32, float64");
      for (auto d : shape)
        if (d < 0) throw ConfigError(c.path("shape") + ": sizes must be >= 0, got " + nlohmann::json(shape).dump());
      // Zero dims count as 1: a [0, 2^40, 2^40] would pass as empty, yet its strides overflow.
      std::vector<std::int64_t> counted = shape;
      for (auto& d : counted) d = std::max<std::int64_t>(d, 1);
      builder.charge(counted, c.path("shape"));
      out.emplace_back(name, Tensor::zeros(Shape(shape), dtype == "float32" ? DType::Float32 : DType::Float64));
    }
    return out;
  };
  NamedTensors constants = read_tensors(constants_json, "constants");
  NamedTensors parameters = read_tensors(parameters_json, "parameters");

  if (!nodes_json.is_array()) throw ConfigError(r.path("nodes") + ": expected an array of nodes");
  std::vector<GraphNode> nodes;
  for (std::size_t i = 0; i < nodes_json.size(); ++i) {
    const std::string at = r.path("nodes") + "[" + std::to_string(i) + "]";
    ObjectReader n(nodes_json[i], at);
    GraphNode node;
    n.require("name");
    n.read("name", node.name);
    node.inputs = read_names(n, "inputs");
    node.outputs = read_names(n, "outputs");
    const nlohmann::json* module = n.find("module");
    const nlohmann::json* op = n.find("op");
    const nlohmann::json* attributes = n.find("attributes");
    n.finish();
    if ((module == nullptr) == (op == nullptr))
      throw ConfigError(at + ": expected exactly one of \"module\" and \"op\"");
    if (module != nullptr) {
      if (attributes != nullptr) throw ConfigError(n.path("attributes") + ": only op nodes have attributes");
      node.module = builder.build(*module, n.path("module"));
    } else {
      if (!op->is_string()) throw ConfigError(n.path("op") + ": expected a string, got " + op->dump());
      node.op = op->get<std::string>();
      if (attributes != nullptr) {
        if (!attributes->is_object()) throw ConfigError(n.path("attributes") + ": expected an object");
        node.attributes = *attributes;
      }
    }
    nodes.push_back(std::move(node));
  }
  try {
    return std::make_shared<Graph>(std::move(inputs), std::move(nodes), std::move(outputs), std::move(constants),
                                   std::move(parameters));
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
}

}  // namespace aimc
