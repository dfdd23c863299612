// The ONNX importer's state (convert/onnx_io.h): a model's nodes turned into
// Graph nodes one at a time, constants folded as they come. importer.cpp
// reads the graph (initializers, inputs, node order); import_ops.cpp maps
// each operator.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/onnx/common.h"
#include "convert/onnx_io.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "layers/modules/graph.h"

namespace aimc::onnx_detail {

// The attributes of one node, with a check that each was understood.
class Attrs {
 public:
  Attrs(const onnx::NodeProto& n, std::string who) : who_(std::move(who)) {
    for (const auto& a : n.attribute()) {
      if (!map_.emplace(a.name(), &a).second) throw ConfigError(who_ + ": attribute '" + a.name() + "' given twice");
    }
  }
  const onnx::AttributeProto* find(const std::string& name) {
    seen_.insert(name);
    auto it = map_.find(name);
    return it == map_.end() ? nullptr : it->second;
  }
  std::int64_t i(const std::string& name, std::int64_t def) {
    const auto* a = find(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::INT) throw ConfigError(who_ + ": attribute '" + name + "' must be an int");
    return a->i();
  }
  double f(const std::string& name, double def) {
    const auto* a = find(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::FLOAT) throw ConfigError(who_ + ": attribute '" + name + "' must be a float");
    return a->f();
  }
  std::string s(const std::string& name, const std::string& def) {
    const auto* a = find(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::STRING)
      throw ConfigError(who_ + ": attribute '" + name + "' must be a string");
    return a->s();
  }
  std::vector<std::int64_t> ints(const std::string& name, std::vector<std::int64_t> def) {
    const auto* a = find(name);
    if (!a) return def;
    if (a->type() != onnx::AttributeProto::INTS) throw ConfigError(who_ + ": attribute '" + name + "' must be ints");
    if (a->ints_size() > 64) throw ConfigError(who_ + ": attribute '" + name + "' has too many values");
    return {a->ints().begin(), a->ints().end()};
  }
  bool has(const std::string& name) { return find(name) != nullptr; }
  // ConfigError for an attribute the op did not read.
  void finish(const std::vector<std::string>& supported) {
    for (const auto& [name, a] : map_)
      if (!seen_.count(name))
        throw ConfigError(who_ + ": attribute '" + name + "' is not supported (supported: " +
                          (supported.empty() ? "none" : join(supported)) + ")");
  }

 private:
  std::string who_;
  std::map<std::string, const onnx::AttributeProto*> map_;
  std::set<std::string> seen_;
};

class Importer {
 public:
  explicit Importer(const OnnxImportOptions& options) : options_(options) {}

  OnnxModel run(const onnx::ModelProto& model, const std::string& name);

 private:
  // Graph names.
  std::string fresh(const std::string& base) {
    std::string s = sanitize(base), out = s;
    for (int k = 1; used_.count(out); ++k) out = s + "_" + std::to_string(k);
    used_.insert(out);
    return out;
  }
  // The Graph value of v (a constant becomes a Graph constant on first use).
  std::string gname(Value& v, const std::string& hint) {
    if (!v.gname.empty()) return v.gname;
    v.gname = fresh(v.is_param ? v.init_name : hint);
    Tensor t = v.t;
    if (v.is_int || t.dtype() != DType::Float32) t = t.to(DType::Float32);
    (v.is_param ? parameters_ : constants_).emplace_back(v.gname, t.contiguous().clone());
    return v.gname;
  }
  // Runs one Graph op on the values; a node when any input is not constant.
  Value op(const std::string& op, nlohmann::json attrs, std::vector<Value*> in, const std::string& hint) {
    bool all_const = true, any_int = false;
    for (auto* v : in) {
      all_const = all_const && v->is_const;
      any_int = any_int || v->is_int;
    }
    std::vector<std::string> names;
    std::vector<Tensor> ts;
    for (std::size_t k = 0; k < in.size(); ++k) {
      names.push_back(arg_name(k));
      Tensor t = in[k]->t;
      // A constant integer read by a float op runs as float32.
      if (!all_const && in[k]->is_int) t = t.to(DType::Float32);
      ts.push_back(t);
    }
    Value out;
    {
      NoGradGuard no_grad;
      Graph g(names, {GraphNode{"n", names, {"y"}, nullptr, op, attrs}}, {"y"});
      out.t = g.forward(ts)[0].detach();
    }
    check_size(out.t);
    if (all_const) {
      out.is_const = true;
      out.is_int = any_int;
      if (any_int && op == "div") out.t = ints_tensor(to_ints(out.t), out.t.shape());
      return out;
    }
    GraphNode node;
    node.name = fresh(hint);
    for (std::size_t k = 0; k < in.size(); ++k) node.inputs.push_back(gname(*in[k], hint + "_c" + std::to_string(k)));
    out.gname = node.name;
    node.outputs = {out.gname};
    node.op = op;
    node.attributes = std::move(attrs);
    nodes_.push_back(std::move(node));
    return out;
  }
  Value module(std::shared_ptr<Module> m, Value& x, const std::string& hint) {
    m->eval();
    Value out;
    {
      NoGradGuard no_grad;
      out.t = m->forward(x.t).detach();
    }
    check_size(out.t);
    GraphNode node;
    node.name = fresh(hint);
    node.inputs = {gname(x, hint + "_in")};
    out.gname = node.name + "_out";
    used_.insert(out.gname);
    node.outputs = {out.gname};
    node.module = std::move(m);
    nodes_.push_back(std::move(node));
    return out;
  }
  // x reshaped to `shape` (concrete for this pass's batch size). The import
  // runs twice, with batch sizes 1 and 2 (run_import): a dim of a dynamic
  // reshape that differs between the passes depends on the batch and becomes
  // -1, so the graph takes any batch size wherever the model keeps its batch
  // (PyTorch's attention moves it away from dim 0).
  Value reshape_to(Value& x, Shape shape, const std::string& hint) {
    if (x.t.shape() == shape && !x.is_const) {
      note_reshape(shape);
      return x;
    }
    if (x.is_const) return op("reshape", {{"shape", shape}}, {&x}, hint);
    Shape written = shape;
    // A model declared with a fixed batch size runs once (batch 1): a reshape
    // keeping the first dim keeps it free, so the graph still takes batches.
    if (static_batch_ && written.size() > 1 && x.t.dim() > 0 && written[0] == x.t.size(0)) written[0] = -1;
    const std::size_t k = note_reshape(shape);
    if (reference_) {
      const Shape& other = (*reference_)[k];
      int free = 0;
      for (std::size_t d = 0; d < written.size(); ++d)
        if (other.size() == written.size() && other[d] != written[d]) {
          written[d] = -1;
          ++free;
        }
      if (other.size() != written.size() || free > 1)
        throw ConfigError(who_ + ": the reshape to " + ints_str(shape) + " depends on the batch size in " +
                          (free > 1 ? "several dims" : "its rank") + " (supported: at most one dim)");
    }
    if (x.t.shape() == shape) return x;
    return op("reshape", {{"shape", written}}, {&x}, hint);
  }
  // Records the target of the k-th dynamic reshape (pass 1) or checks that
  // pass 2 meets the same reshapes; returns k.
  std::size_t note_reshape(const Shape& shape) {
    const std::size_t k = reshape_count_++;
    if (!reference_) {
      reshapes_.push_back(shape);
    } else if (k >= reference_->size()) {
      throw ConfigError(who_ + ": the graph's reshapes differ between batch sizes 1 and 2 (not supported)");
    }
    return k;
  }

 public:
  std::int64_t batch_ = 1;
  bool static_batch_ = false;                    // the input declares a fixed batch size
  std::int64_t declared_batch_ = 0;              // that size
  std::vector<Shape> reshapes_;                  // pass 1: the dynamic reshapes' targets
  const std::vector<Shape>* reference_ = nullptr;  // pass 2: those of pass 1

 private:
  std::size_t reshape_count_ = 0;
  void check_size(const Tensor& t) { checked_elements(t.shape(), who_); }

  void import_node(const onnx::NodeProto& n, int opset);
  // Where, Equal, Expand and Range of constant inputs, computed at import.
  Value fold_constants(const onnx::NodeProto& n, const std::string& type);
  // ConfigError unless Gemm's C [shape] broadcasts to [M, N] one way (ONNX's rule).
  void check_gemm_c(const Shape& c, std::int64_t n_out) const {
    const bool ok = c.size() <= 2 && (c.empty() || c.back() == 1 || c.back() == n_out) &&
                    (c.size() < 2 || c[0] == 1 || (static_batch_ && c[0] == declared_batch_));
    if (!ok)
      throw ConfigError(who_ + ": C of shape " + shape_str(c) + " does not broadcast to [M, N] = [" +
                        (static_batch_ ? std::to_string(declared_batch_) : std::string("batch")) + ", " +
                        std::to_string(n_out) +
                        "] (supported: a scalar, [N], [1, N], and [M, 1], [M, N] when the input declares batch M)");
  }
  Value& in(const onnx::NodeProto& n, int k);
  bool has_in(const onnx::NodeProto& n, int k) const { return k < n.input_size() && !n.input(k).empty(); }
  std::vector<std::int64_t> const_ints(const onnx::NodeProto& n, int k, const std::string& what);

  const OnnxImportOptions& options_;
  std::map<std::string, Value> values_;
  // Identity and Dropout outputs: the name of the value they pass on, so a
  // parameter read through them stays one parameter.
  std::map<std::string, std::string> alias_;
  const std::string& resolve(const std::string& name) const {
    const auto it = alias_.find(name);
    return it == alias_.end() ? name : it->second;
  }
  std::vector<GraphNode> nodes_;
  NamedTensors constants_, parameters_;
  std::set<std::string> used_;
  std::string who_;
  Generator gen_{0};
};

}  // namespace aimc::onnx_detail
