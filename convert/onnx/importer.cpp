// The ONNX importer: initializers, graph inputs, node order (see importer.h).
#include "convert/onnx/importer.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "engine/ops.h"

namespace aimc {

namespace onnx_detail {

namespace {
constexpr int kMinOpset = 13, kMaxOpset = 21;
}  // namespace

Value& Importer::in(const onnx::NodeProto& n, int k) {
  if (!has_in(n, k)) throw ConfigError(who_ + ": input " + std::to_string(k) + " is required");
  return values_.at(resolve(n.input(k)));
}

std::vector<std::int64_t> Importer::const_ints(const onnx::NodeProto& n, int k, const std::string& what) {
  Value& v = in(n, k);
  if (!v.is_const)
    throw ConfigError(who_ + ": input '" + what + "' must be constant (an initializer or computable at import)");
  if (v.t.numel() > 4096) throw ConfigError(who_ + ": input '" + what + "' has too many values");
  return to_ints(v.t);
}

Value Importer::fold_constants(const onnx::NodeProto& n, const std::string& type) {
  const int arity = type == "Where" || type == "Range" ? 3 : 2;
  if (n.input_size() != arity)
    throw ConfigError(who_ + ": expected " + std::to_string(arity) + " inputs, got " + std::to_string(n.input_size()));
  std::vector<Value*> ins;
  for (int k = 0; k < arity; ++k) {
    ins.push_back(&in(n, k));
    if (!ins.back()->is_const)
      throw ConfigError(who_ + ": supported on constants only (shape arithmetic computed at import); input " +
                        std::to_string(k) + " depends on the graph input");
  }
  // Each operand in double, broadcast to `shape` (adding zeros keeps infinities and NaNs).
  auto spread = [](const Value& v, const Shape& shape) {
    return add(v.t.to(DType::Float64), Tensor::zeros(shape, DType::Float64)).contiguous().to_double_vector();
  };
  Value out;
  out.is_const = true;
  if (type == "Range") {
    for (auto* v : ins)
      if (v->t.numel() != 1) throw ConfigError(who_ + ": start, limit and delta must be scalars");
    const double start = ins[0]->t.item(), limit = ins[1]->t.item(), delta = ins[2]->t.item();
    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
      throw ConfigError(who_ + ": delta must be non-zero and start, limit, delta finite");
    const double count = std::max(std::ceil((limit - start) / delta), 0.0);
    if (count > static_cast<double>(kOnnxMaxElements))
      throw ConfigError(who_ + ": " + std::to_string(count) + " elements (at most " +
                        std::to_string(kOnnxMaxElements) + ")");
    std::vector<double> v(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<double>(i) * delta;
    out.is_int = ins[0]->is_int && ins[1]->is_int && ins[2]->is_int;
    out.t = Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
  } else if (type == "Expand") {
    if (!ins[1]->is_int || ins[1]->t.dim() != 1) throw ConfigError(who_ + ": the shape must be a 1-D integer tensor");
    const auto dims = const_ints(n, 1, "shape");
    for (auto d : dims)
      if (d < 1) throw ConfigError(who_ + ": shape " + ints_str(dims) + " has a dim below 1");
    checked_elements(dims, who_);
    const Shape shape = broadcast_shapes(ins[0]->t.shape(), Shape(dims));
    checked_elements(shape, who_);
    out.is_int = ins[0]->is_int;
    out.t = Tensor::from_vector(spread(*ins[0], shape), shape);
  } else {
    Shape shape = broadcast_shapes(ins[0]->t.shape(), ins[1]->t.shape());
    if (arity == 3) shape = broadcast_shapes(shape, ins[2]->t.shape());
    checked_elements(shape, who_);
    std::vector<std::vector<double>> v;
    for (auto* x : ins) v.push_back(spread(*x, shape));
    std::vector<double> r(v[0].size());
    for (std::size_t i = 0; i < r.size(); ++i)
      r[i] = type == "Equal" ? static_cast<double>(v[0][i] == v[1][i]) : v[0][i] != 0 ? v[1][i] : v[2][i];
    out.is_int = type == "Equal" || (ins[1]->is_int && ins[2]->is_int);
    out.t = Tensor::from_vector(r, shape);
  }
  if (!out.is_int) out.t = out.t.to(type == "Where" ? ins[1]->t.dtype() : ins[0]->t.dtype());
  return out;
}

OnnxModel Importer::run(const onnx::ModelProto& model, const std::string& name) {
  int opset = -1;
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = static_cast<int>(o.version());
  if (opset < kMinOpset || opset > kMaxOpset)
    throw ConfigError(name + ": opset " + std::to_string(opset) + " of the default domain is not supported (supported: " +
                      std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                      "; re-export with opset_version in that range)");
  if (!model.has_graph()) throw ConfigError(name + ": the model has no graph");
  const onnx::GraphProto& g = model.graph();
  if (g.node_size() > kOnnxMaxNodes)
    throw ConfigError(name + ": " + std::to_string(g.node_size()) + " nodes (at most " + std::to_string(kOnnxMaxNodes) + ")");

  for (const auto& init : g.initializer()) {
    who_ = name + ": initializer '" + init.name() + "'";
    if (values_.count(init.name())) throw ConfigError(who_ + " is defined twice");
    Value v = read_tensor(init, who_);
    v.is_param = !v.is_int && v.t.numel() > 1;
    v.init_name = init.name();
    values_[init.name()] = std::move(v);
  }
  // The graph inputs (older exports list the initializers as inputs too).
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& i : g.input())
    if (!values_.count(i.name())) inputs.push_back(&i);
  if (inputs.empty()) throw ConfigError(name + ": no graph input besides the initializers");
  // One sample's shape per input: options.input_shapes, else options.input_shape for a single input.
  std::vector<std::vector<std::int64_t>> given = options_.input_shapes;
  if (given.empty() && !options_.input_shape.empty()) given.push_back(options_.input_shape);
  if (!given.empty() && given.size() != inputs.size())
    throw ConfigError(name + ": " + std::to_string(given.size()) + " input shapes given for " +
                      std::to_string(inputs.size()) + " graph inputs (give one per input, in the file's order)");
  for (const auto* input : inputs) {
    const auto& tt = input->type().tensor_type();
    if (input->type().has_tensor_type() && tt.has_shape() && tt.shape().dim_size() > 0 &&
        tt.shape().dim(0).has_dim_value()) {
      static_batch_ = true;
      declared_batch_ = tt.shape().dim(0).dim_value();
    }
  }
  std::vector<std::string> in_names;
  std::vector<std::vector<std::int64_t>> samples;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const onnx::ValueInfoProto& input = *inputs[k];
    who_ = name + ": graph input '" + input.name() + "'";
    std::vector<std::int64_t> sample = given.empty() ? std::vector<std::int64_t>{} : given[k];
    if (!input.type().has_tensor_type()) throw ConfigError(who_ + " is not a tensor");
    const auto& tt = input.type().tensor_type();
    if (tt.elem_type() != onnx::TensorProto::FLOAT)
      throw ConfigError(who_ + ": element type " + dtype_label(tt.elem_type()) + " is not supported (supported: float)");
    if (tt.has_shape()) {
      std::vector<std::int64_t> declared;
      bool fixed = true;
      for (int d = 1; d < tt.shape().dim_size(); ++d) {
        const auto& dim = tt.shape().dim(d);
        if (dim.has_dim_value()) {
          if (dim.dim_value() <= 0 || dim.dim_value() > kOnnxMaxDim)
            throw ConfigError(who_ + ": declared dim " + std::to_string(d) + " = " + std::to_string(dim.dim_value()) +
                              " is outside [1, " + std::to_string(kOnnxMaxDim) + "]");
          declared.push_back(dim.dim_value());
        } else {
          fixed = false;
          declared.push_back(-1);
        }
      }
      if (sample.empty()) {
        if (!fixed)
          throw ConfigError(who_ + ": the declared shape has free dims besides the batch; give the input shape "
                                   "(--input-shape)");
        sample = declared;
      } else if (sample.size() != declared.size()) {
        throw ConfigError(who_ + ": the input shape " + ints_str(sample) + " does not match the declared rank " +
                          std::to_string(declared.size() + 1) + " (batch included)");
      }
    } else if (sample.empty()) {
      throw ConfigError(who_ + ": no declared shape; give the input shape (--input-shape)");
    }
    Shape probe_shape{batch_};
    for (auto d : sample) {
      if (d <= 0 || d > kOnnxMaxDim) throw ConfigError(who_ + ": input shape " + ints_str(sample) + " has a dim outside [1, " + std::to_string(kOnnxMaxDim) + "]");
      probe_shape.push_back(d);
    }
    checked_elements(probe_shape, who_);
    in_names.push_back(fresh(input.name()));
    samples.push_back(sample);
    Value probe;  // zeros of this pass's batch size
    probe.t = Tensor::zeros(probe_shape);
    probe.gname = in_names.back();
    values_[input.name()] = std::move(probe);
  }

  // Topological order (Kahn); a dangling input or a cycle is refused.
  const int nn = g.node_size();
  auto label = [&](int i) {
    const auto& n = g.node(i);
    std::string id = "#";  // appended: "#" + to_string trips GCC 12's -Wrestrict false positive
    id += std::to_string(i);
    return name + ": node '" + (n.name().empty() ? id : n.name()) + "' (" + n.op_type() + ")";
  };
  std::map<std::string, int> producer;
  for (int i = 0; i < nn; ++i)
    for (const auto& o : g.node(i).output()) {
      if (o.empty()) continue;
      if (values_.count(o) || !producer.emplace(o, i).second)
        throw ConfigError(label(i) + ": output '" + o + "' is defined twice");
    }
  std::vector<int> missing(static_cast<std::size_t>(nn), 0);
  std::vector<std::vector<int>> consumers(static_cast<std::size_t>(nn));
  for (int i = 0; i < nn; ++i) {
    const auto& n = g.node(i);
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      throw ConfigError(label(i) + ": domain '" + n.domain() + "' is not supported (supported: the default domain)");
    for (const auto& v : n.input()) {
      if (v.empty() || values_.count(v)) continue;
      auto it = producer.find(v);
      if (it == producer.end())
        throw ConfigError(label(i) + ": input '" + v + "' is not produced by any node, initializer or graph input");
      ++missing[static_cast<std::size_t>(i)];
      consumers[static_cast<std::size_t>(it->second)].push_back(i);
    }
  }
  std::vector<int> order, ready;
  for (int i = nn - 1; i >= 0; --i)
    if (missing[static_cast<std::size_t>(i)] == 0) ready.push_back(i);
  while (!ready.empty()) {
    const int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (int c : consumers[static_cast<std::size_t>(i)])
      if (--missing[static_cast<std::size_t>(c)] == 0) ready.push_back(c);
  }
  if (static_cast<int>(order.size()) != nn)
    for (int i = 0; i < nn; ++i)
      if (missing[static_cast<std::size_t>(i)] != 0) throw ConfigError(label(i) + ": the node is on a cycle or depends on one");

  for (int i : order) {
    who_ = label(i);
    try {
      import_node(g.node(i), opset);
    } catch (const ShapeError& e) {
      throw ConfigError(who_ + ": " + e.what());
    } catch (const ValueError& e) {
      throw ConfigError(who_ + ": " + e.what());
    }
  }

  std::vector<std::string> outputs;
  for (const auto& o : g.output()) {
    auto it = values_.find(resolve(o.name()));
    if (it == values_.end()) throw ConfigError(name + ": graph output '" + o.name() + "' is not produced by any node");
    if (it->second.is_const) throw ConfigError(name + ": graph output '" + o.name() + "' is a constant");
    outputs.push_back(it->second.gname);
  }
  if (outputs.empty()) throw ConfigError(name + ": the graph has no outputs");
  OnnxModel out;
  out.graph = std::make_shared<Graph>(in_names, std::move(nodes_), outputs, constants_, parameters_);
  out.graph->eval();
  out.input_shape = samples[0];
  out.input_shapes = samples;
  out.info = {{"producer", model.producer_name() + (model.producer_version().empty() ? "" : " " + model.producer_version())},
              {"opset", opset},
              {"ir_version", model.ir_version()},
              {"nodes", nn}};
  return out;
}

}  // namespace onnx_detail

using onnx_detail::Importer;
namespace onnx = aimc_onnx;

OnnxModel import_onnx_bytes(const std::string& bytes, const OnnxImportOptions& options, const std::string& name) {
  if (static_cast<std::int64_t>(bytes.size()) > kOnnxMaxFileBytes)
    throw IoError(name + ": " + std::to_string(bytes.size()) + " bytes, more than the " +
                  std::to_string(kOnnxMaxFileBytes) + " an ONNX file can hold");
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes))
    throw IoError(name + ": not an ONNX model (protobuf parse failed: truncated or not an ONNX file)");
  // Protobuf skips unknown fields, so some other files parse: an ONNX model has a graph and an opset.
  if (!model.has_graph() && model.opset_import_size() == 0)
    throw IoError(name + ": not an ONNX model (no graph and no opset_import)");
  // Pass 1 with batch size 1 records the reshapes; pass 2 with batch size 2
  // builds the graph, freeing the dims that differ (Importer::reshape_to).
  // A model whose input declares a fixed batch size is imported once, with batch size 1.
  Importer first(options);
  OnnxModel once = first.run(model, name);
  if (first.static_batch_) return once;
  Importer second(options);
  second.batch_ = 2;
  second.reference_ = &first.reshapes_;
  return second.run(model, name);
}

OnnxModel import_onnx(const std::string& path, const OnnxImportOptions& options) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw IoError(path + ": cannot open");
  const std::streamoff size = f.tellg();
  if (size < 0) throw IoError(path + ": cannot read its size");
  if (size > kOnnxMaxFileBytes)
    throw IoError(path + ": " + std::to_string(size) + " bytes, more than the " + std::to_string(kOnnxMaxFileBytes) +
                  " an ONNX file can hold");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  f.seekg(0);
  if (!f.read(bytes.data(), size)) throw IoError(path + ": read failed");
  return import_onnx_bytes(bytes, options, path);
}

}  // namespace aimc
