// ONNX import and export (see onnx_io.h).
#include "convert/onnx_io.h"

#include "aimc_config.h"
#include "engine/error.h"

#if AIMC_HAVE_ONNX

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "convert/onnx.pb.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "layers/modules/activation.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"

namespace aimc {

namespace onnx = aimc_onnx;

namespace {

constexpr int kMinOpset = 13, kMaxOpset = 21;

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose",
      "Div", "Dropout", "Equal", "Erf", "Exp", "Expand", "Flatten", "Gather", "Gelu", "Gemm", "GlobalAveragePool",
      "Identity", "LayerNormalization", "LeakyRelu", "LogSoftmax", "MatMul", "MaxPool", "Mod", "Mul", "Neg", "Pow",
      "Range", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt",
      "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where"};
  return ops;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : ", ") + e;
  return s;
}

std::string ints_str(const std::vector<std::int64_t>& v) { return nlohmann::json(v).dump(); }

std::int64_t checked_elements(const std::vector<std::int64_t>& dims, const std::string& who) {
  std::int64_t n = 1;
  for (auto d : dims) {
    if (d < 0 || d > kOnnxMaxDim)
      throw ConfigError(who + ": dimension " + std::to_string(d) + " is outside [0, " + std::to_string(kOnnxMaxDim) +
                        "]");
    n *= std::max<std::int64_t>(d, 1);
    if (n > kOnnxMaxElements)
      throw ConfigError(who + ": shape " + ints_str(dims) + " has more than " + std::to_string(kOnnxMaxElements) +
                        " elements");
  }
  return n;
}

// A value of the ONNX graph during import.
struct Value {
  Tensor t;              // the constant, or the value for the probe input (zeros, batch 1)
  bool is_const = false;
  bool is_int = false;   // an integer tensor (shapes, indices), held as float64
  std::string gname;     // its name in the Graph ("" for a constant no node reads yet)
  // A float initializer of more than one element (a weight or bias of the
  // source model): read by a Graph op, it becomes a trainable parameter of
  // the Graph; scalars and everything computed at import stay constants.
  bool is_param = false;
  std::string init_name;  // the initializer's name: a parameter's name in the Graph
};

std::string dtype_label(int t) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return "float";
    case onnx::TensorProto::DOUBLE: return "double";
    case onnx::TensorProto::INT64: return "int64";
    case onnx::TensorProto::INT32: return "int32";
    case onnx::TensorProto::BOOL: return "bool";
    case onnx::TensorProto::FLOAT16: return "float16";
    case onnx::TensorProto::BFLOAT16: return "bfloat16";
    case onnx::TensorProto::INT8: return "int8";
    case onnx::TensorProto::UINT8: return "uint8";
    default: return "type " + std::to_string(t);
  }
}

// "a<k>" (appended: "a" + to_string trips GCC 12's -Wrestrict false positive).
std::string arg_name(std::size_t k) {
  std::string s = "a";
  s += std::to_string(k);
  return s;
}

std::int64_t product(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

template <class T>
std::vector<T> raw_values(const std::string& raw, std::int64_t n, const std::string& who) {
  if (static_cast<std::int64_t>(raw.size()) != n * static_cast<std::int64_t>(sizeof(T)))
    throw ConfigError(who + ": raw_data holds " + std::to_string(raw.size()) + " bytes, the shape needs " +
                      std::to_string(n * static_cast<std::int64_t>(sizeof(T))));
  std::vector<T> v(static_cast<std::size_t>(n));
  if (n > 0) std::memcpy(v.data(), raw.data(), raw.size());  // ONNX stores little-endian, as x86/ARM
  return v;
}

template <class Field>
void check_count(const Field& f, std::int64_t n, const std::string& who) {
  if (static_cast<std::int64_t>(f.size()) != n)
    throw ConfigError(who + ": holds " + std::to_string(f.size()) + " values, the shape needs " + std::to_string(n));
}

// A TensorProto as a Value: float32/float64, or int64/int32/bool as integers.
Value read_tensor(const onnx::TensorProto& p, const std::string& who) {
  if (p.data_location() == onnx::TensorProto::EXTERNAL || p.external_data_size() > 0)
    throw ConfigError(who + ": external tensor data is not supported (save the model with its weights inside)");
  if (p.has_segment()) throw ConfigError(who + ": segmented tensors are not supported");
  std::vector<std::int64_t> dims(p.dims().begin(), p.dims().end());
  checked_elements(dims, who);
  const std::int64_t n = product(dims);
  const bool raw = p.has_raw_data();
  Value v;
  v.is_const = true;
  switch (p.data_type()) {
    case onnx::TensorProto::FLOAT: {
      std::vector<float> x;
      if (raw) x = raw_values<float>(p.raw_data(), n, who);
      else {
        check_count(p.float_data(), n, who);
        x.assign(p.float_data().begin(), p.float_data().end());
      }
      v.t = Tensor::from_vector(x, dims);
      return v;
    }
    case onnx::TensorProto::DOUBLE: {
      std::vector<double> x;
      if (raw) x = raw_values<double>(p.raw_data(), n, who);
      else {
        check_count(p.double_data(), n, who);
        x.assign(p.double_data().begin(), p.double_data().end());
      }
      v.t = Tensor::from_vector(x, dims);
      return v;
    }
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::BOOL: {
      std::vector<double> x;
      if (p.data_type() == onnx::TensorProto::INT64) {
        if (raw) {
          for (auto e : raw_values<std::int64_t>(p.raw_data(), n, who)) x.push_back(static_cast<double>(e));
        } else {
          check_count(p.int64_data(), n, who);
          for (auto e : p.int64_data()) x.push_back(static_cast<double>(e));
        }
      } else if (p.data_type() == onnx::TensorProto::INT32) {
        if (raw) {
          for (auto e : raw_values<std::int32_t>(p.raw_data(), n, who)) x.push_back(e);
        } else {
          check_count(p.int32_data(), n, who);
          for (auto e : p.int32_data()) x.push_back(e);
        }
      } else {
        if (raw) {
          for (auto e : raw_values<std::uint8_t>(p.raw_data(), n, who)) x.push_back(e != 0);
        } else {
          check_count(p.int32_data(), n, who);
          for (auto e : p.int32_data()) x.push_back(e != 0);
        }
      }
      v.t = Tensor::from_vector(x, dims);
      v.is_int = true;
      return v;
    }
    default:
      throw ConfigError(who + ": data type " + dtype_label(p.data_type()) +
                        " is not supported (supported: float, double, int64, int32, bool)");
  }
}

std::vector<std::int64_t> to_ints(const Tensor& t) {
  Tensor c = t.to(DType::Float64).contiguous();
  const double* d = c.data<double>();
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    const double x = d[i];
    // Shapes and indices are exact in a double up to 2^53; INT64_MAX (Slice's "to the end") saturates.
    out.push_back(x >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                              : x <= -9.2e18 ? std::numeric_limits<std::int64_t>::min()
                                             : static_cast<std::int64_t>(x));
  }
  return out;
}

Tensor ints_tensor(const std::vector<std::int64_t>& v, const Shape& shape) {
  std::vector<double> d(v.begin(), v.end());
  return Tensor::from_vector(d, shape);
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "v_" + out;
  return out;
}

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

std::int64_t norm_axis(std::int64_t axis, std::int64_t rank, const std::string& who) {
  if (axis < -rank || axis >= std::max<std::int64_t>(rank, 1))
    throw ConfigError(who + ": axis " + std::to_string(axis) + " is outside [" + std::to_string(-rank) + ", " +
                      std::to_string(rank - 1) + "]");
  return axis < 0 ? axis + rank : axis;
}

// Symmetric pads [begin..., end...] as one per-dim padding.
std::vector<std::int64_t> symmetric_pads(const std::vector<std::int64_t>& pads, std::size_t dims,
                                         const std::string& who) {
  if (pads.empty()) return std::vector<std::int64_t>(dims, 0);
  if (pads.size() != 2 * dims) throw ConfigError(who + ": pads " + ints_str(pads) + " must have 2 values per dim");
  std::vector<std::int64_t> p(dims);
  for (std::size_t d = 0; d < dims; ++d) {
    if (pads[d] != pads[d + dims] || pads[d] < 0)
      throw ConfigError(who + ": pads " + ints_str(pads) +
                        " are not supported (only equal, non-negative padding at both ends of a dim)");
    p[d] = pads[d];
  }
  return p;
}

void load(Module& m, const std::map<std::string, Tensor>& values) {
  NamedTensors state = m.state_dict();
  for (auto& [k, t] : state) {
    auto it = values.find(k);
    if (it != values.end()) t = it->second.to(DType::Float32).contiguous();
  }
  m.load_state_dict(state);
}

void Importer::import_node(const onnx::NodeProto& n, int opset) {
  const std::string& type = n.op_type();
  Attrs a(n, who_);
  const std::string hint = n.name().empty() ? (n.output_size() > 0 ? n.output(0) : type) : n.name();
  auto set_out = [&](int k, Value v) {
    if (k < n.output_size() && !n.output(k).empty()) values_[n.output(k)] = std::move(v);
  };
  auto unary = [&](const std::string& opname) {
    a.finish({});
    set_out(0, op(opname, nlohmann::json::object(), {&in(n, 0)}, hint));
  };
  auto only_outputs = [&](int k) {
    for (int j = k; j < n.output_size(); ++j)
      if (!n.output(j).empty())
        throw ConfigError(who_ + ": output " + std::to_string(j) + " is not supported (only the first " +
                          std::to_string(k) + ")");
  };
  only_outputs(type == "Split" ? n.output_size() : 1);

  auto pass_on = [&] {
    in(n, 0);  // checks it is given
    if (n.output_size() > 0 && !n.output(0).empty()) alias_[n.output(0)] = resolve(n.input(0));
  };
  if (type == "Identity") {
    a.finish({});
    pass_on();
  } else if (type == "Dropout") {
    a.f("ratio", 0.5);
    a.i("seed", 0);
    if (has_in(n, 2) && to_ints(in(n, 2).t) != std::vector<std::int64_t>{0})
      throw ConfigError(who_ + ": training_mode must be false (inference import)");
    a.finish({"ratio", "seed"});
    pass_on();
  } else if (type == "Constant") {
    Value v;
    if (const auto* t = a.find("value")) {
      if (t->type() != onnx::AttributeProto::TENSOR) throw ConfigError(who_ + ": attribute 'value' must be a tensor");
      v = read_tensor(t->t(), who_ + " value");
    } else if (const auto* f = a.find("value_float")) {
      v.t = Tensor::scalar(f->f());
    } else if (const auto* fs = a.find("value_floats")) {
      std::vector<float> x(fs->floats().begin(), fs->floats().end());
      v.t = Tensor::from_vector(x, {static_cast<std::int64_t>(x.size())});
    } else if (const auto* i = a.find("value_int")) {
      v.t = Tensor::scalar(static_cast<double>(i->i()), DType::Float64);
      v.is_int = true;
    } else if (const auto* is = a.find("value_ints")) {
      v.t = ints_tensor({is->ints().begin(), is->ints().end()}, {is->ints_size()});
      v.is_int = true;
    } else {
      throw ConfigError(who_ + ": needs one of value, value_float, value_floats, value_int, value_ints");
    }
    a.finish({"value", "value_float", "value_floats", "value_int", "value_ints"});
    v.is_const = true;
    set_out(0, v);
  } else if (type == "Shape") {
    const Shape& s = in(n, 0).t.shape();
    const auto r = static_cast<std::int64_t>(s.size());
    std::int64_t start = a.i("start", 0), end = a.i("end", r);
    a.finish({"start", "end"});
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<std::int64_t>(start, 0, r);
    end = std::clamp<std::int64_t>(end, start, r);
    std::vector<std::int64_t> dims(s.begin() + start, s.begin() + end);
    set_out(0, Value{ints_tensor(dims, {static_cast<std::int64_t>(dims.size())}), true, true, "", false, ""});
  } else if (type == "Cast") {
    const std::int64_t to = a.i("to", 0);
    a.i("saturate", 1);
    a.finish({"to", "saturate"});
    Value v = in(n, 0);
    v.is_param = false;  // a cast copy is computed at import
    if (to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE) {
      if (v.is_const) {
        v.t = v.t.to(to == onnx::TensorProto::FLOAT ? DType::Float32 : DType::Float64);
        v.is_int = false;
        v.gname.clear();
      }
    } else if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32 || to == onnx::TensorProto::BOOL) {
      if (!v.is_const) throw ConfigError(who_ + ": a cast to integers is supported on constants only");
      v.t = ints_tensor(to_ints(v.t), v.t.shape());
      v.is_int = true;
      v.gname.clear();
    } else {
      throw ConfigError(who_ + ": cast to " + dtype_label(static_cast<int>(to)) +
                        " is not supported (supported: float, double, int64, int32, bool)");
    }
    set_out(0, v);
  } else if (type == "ConstantOfShape") {
    const auto shape = const_ints(n, 0, "input");
    checked_elements(shape, who_);
    Value fill{Tensor::scalar(0.0), true, false, "", false, ""};
    if (const auto* t = a.find("value")) {
      if (t->type() != onnx::AttributeProto::TENSOR) throw ConfigError(who_ + ": attribute 'value' must be a tensor");
      fill = read_tensor(t->t(), who_ + " value");
      if (fill.t.numel() != 1) throw ConfigError(who_ + ": 'value' must hold one element");
    }
    a.finish({"value"});
    Value v;
    v.t = Tensor::full(shape, fill.t.item(), fill.is_int ? DType::Float64 : fill.t.dtype());
    v.is_const = true;
    v.is_int = fill.is_int;
    set_out(0, v);
  } else if (type == "Add" || type == "Sub" || type == "Mul" || type == "Div") {
    a.finish({});
    std::string o = type == "Add" ? "add" : type == "Sub" ? "sub" : type == "Mul" ? "mul" : "div";
    set_out(0, op(o, nlohmann::json::object(), {&in(n, 0), &in(n, 1)}, hint));
  } else if (type == "Mod") {
    // Shape arithmetic of PyTorch's exports: constants only.
    const bool fmod = a.i("fmod", 0) != 0;
    a.finish({"fmod"});
    Value& x = in(n, 0);
    Value& y = in(n, 1);
    if (!x.is_const || !y.is_const) throw ConfigError(who_ + ": supported on constants only");
    if (y.t.numel() != 1 && y.t.shape() != x.t.shape())
      throw ConfigError(who_ + ": the divisor must be a scalar or of the dividend's shape");
    Tensor xd = x.t.to(DType::Float64).contiguous(), yd = y.t.to(DType::Float64).contiguous();
    std::vector<double> out(static_cast<std::size_t>(xd.numel()));
    for (std::int64_t i = 0; i < xd.numel(); ++i) {
      const double p = xd.data<double>()[i], q = yd.data<double>()[yd.numel() == 1 ? 0 : i];
      if (q == 0) throw ConfigError(who_ + ": division by zero");
      double r = std::fmod(p, q);
      if (!fmod && r != 0 && ((r < 0) != (q < 0))) r += q;  // the divisor's sign, as Python's %
      out[static_cast<std::size_t>(i)] = r;
    }
    Value v{Tensor::from_vector(out, xd.shape()), true, x.is_int && y.is_int, "", false, ""};
    if (!v.is_int) v.t = v.t.to(x.t.dtype());
    set_out(0, v);
  } else if (type == "Pow") {
    a.finish({});
    Value& e = in(n, 1);
    if (!e.is_const || e.t.numel() != 1)
      throw ConfigError(who_ + ": the exponent must be a constant scalar");
    set_out(0, op("pow", {{"exponent", e.t.item()}}, {&in(n, 0)}, hint));
  } else if (type == "Sqrt") {
    unary("sqrt");
  } else if (type == "Erf") {
    unary("erf");
  } else if (type == "Relu") {
    unary("relu");
  } else if (type == "Sigmoid") {
    unary("sigmoid");
  } else if (type == "Tanh") {
    unary("tanh");
  } else if (type == "Neg") {
    unary("neg");
  } else if (type == "Exp") {
    unary("exp");
  } else if (type == "LeakyRelu") {
    const double alpha = a.f("alpha", 0.01);
    a.finish({"alpha"});
    set_out(0, op("leaky_relu", {{"negative_slope", alpha}}, {&in(n, 0)}, hint));
  } else if (type == "Gelu") {
    const std::string approx = a.s("approximate", "none");
    a.finish({"approximate"});
    if (approx != "none")
      throw ConfigError(who_ + ": approximate='" + approx + "' is not supported (supported: none, the erf form)");
    set_out(0, op("gelu", nlohmann::json::object(), {&in(n, 0)}, hint));
  } else if (type == "Softmax" || type == "LogSoftmax") {
    const std::int64_t axis = a.i("axis", -1);
    a.finish({"axis"});
    set_out(0, op(type == "Softmax" ? "softmax" : "log_softmax", {{"axis", axis}}, {&in(n, 0)}, hint));
  } else if (type == "MatMul") {
    a.finish({});
    Value& x = in(n, 0);
    Value& w = in(n, 1);
    if (!x.is_const && w.is_const && w.t.dim() == 2) {
      auto lin = std::make_shared<Linear>(w.t.size(0), w.t.size(1), false, gen_);
      load(*lin, {{"weight", w.t.transpose(0, 1).contiguous()}});
      set_out(0, module(lin, x, hint));
    } else {
      set_out(0, op("matmul", nlohmann::json::object(), {&x, &w}, hint));
    }
  } else if (type == "Gemm") {
    const double alpha = a.f("alpha", 1.0), beta = a.f("beta", 1.0);
    const bool trans_a = a.i("transA", 0) != 0, trans_b = a.i("transB", 0) != 0;
    a.finish({"alpha", "beta", "transA", "transB"});
    Value x = in(n, 0);
    Value& b = in(n, 1);
    if (x.t.dim() != 2 || b.t.dim() != 2) throw ConfigError(who_ + ": A and B must be 2-D");
    if (trans_a) x = op("transpose", {{"perm", {1, 0}}}, {&x}, hint + "_At");
    if (!x.is_const && b.is_const) {
      Tensor w = trans_b ? b.t : b.t.transpose(0, 1);  // [out, in]
      if (alpha != 1.0) w = mul_scalar(w, alpha);
      std::map<std::string, Tensor> values{{"weight", w.contiguous()}};
      bool bias = has_in(n, 2);
      if (bias) {
        Value& c = in(n, 2);
        if (!c.is_const) throw ConfigError(who_ + ": C must be constant with a constant B");
        check_gemm_c(c.t.shape(), w.size(0));
        if (c.t.dim() == 2 && c.t.size(0) != 1) {
          bias = false;  // a C of one row per sample: added after the Linear
        } else {
          Tensor cb = c.t.to(DType::Float32);
          cb = cb.numel() == 1 ? Tensor::full({w.size(0)}, cb.item()) : reshape(cb, {w.size(0)});
          if (beta != 1.0) cb = mul_scalar(cb, beta);
          values["bias"] = cb;
        }
      }
      auto lin = std::make_shared<Linear>(w.size(1), w.size(0), bias, gen_);
      load(*lin, values);
      Value y = module(lin, x, hint);
      if (has_in(n, 2) && !bias) {
        Value c = in(n, 2);
        if (beta != 1.0) {
          Value s{Tensor::scalar(beta), true, false, "", false, ""};
          c = op("mul", nlohmann::json::object(), {&c, &s}, hint + "_beta");
        }
        y = op("add", nlohmann::json::object(), {&y, &c}, hint + "_C");
      }
      set_out(0, y);
    } else {
      Value bb = b;
      if (trans_b) bb = op("transpose", {{"perm", {1, 0}}}, {&bb}, hint + "_Bt");
      Value y = op("matmul", nlohmann::json::object(), {&x, &bb}, hint);
      if (alpha != 1.0) {
        Value s{Tensor::scalar(alpha), true, false, "", false, ""};
        y = op("mul", nlohmann::json::object(), {&y, &s}, hint + "_alpha");
      }
      if (has_in(n, 2)) {
        Value c = in(n, 2);
        check_gemm_c(c.t.shape(), bb.t.size(1));
        if (beta != 1.0) {
          Value s{Tensor::scalar(beta), true, false, "", false, ""};
          c = op("mul", nlohmann::json::object(), {&c, &s}, hint + "_beta");
        }
        y = op("add", nlohmann::json::object(), {&y, &c}, hint + "_C");
      }
      set_out(0, y);
    }
  } else if (type == "Where" || type == "Equal" || type == "Expand" || type == "Range") {
    a.finish({});
    set_out(0, fold_constants(n, type));
  } else if (type == "Conv") {
    Value& x = in(n, 0);
    Value& w = in(n, 1);
    if (!w.is_const) throw ConfigError(who_ + ": the weight must be constant (an initializer)");
    const std::int64_t dims = w.t.dim() - 2;
    if (dims < 1 || dims > 3) throw ConfigError(who_ + ": only 1-D, 2-D and 3-D convolutions are supported");
    const std::string auto_pad = a.s("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      throw ConfigError(who_ + ": auto_pad=" + auto_pad + " is not supported (supported: NOTSET, VALID)");
    const auto ones = std::vector<std::int64_t>(static_cast<std::size_t>(dims), 1);
    const auto dil = a.ints("dilations", ones), strides = a.ints("strides", ones);
    const std::int64_t group = a.i("group", 1);
    std::vector<std::int64_t> kernel(w.t.shape().begin() + 2, w.t.shape().end());
    const auto ks = a.ints("kernel_shape", kernel);
    const auto pads = symmetric_pads(a.ints("pads", {}), static_cast<std::size_t>(dims), who_);
    a.finish({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    if (ks != kernel) throw ConfigError(who_ + ": kernel_shape " + ints_str(ks) + " differs from the weight's");
    if (dil.size() != kernel.size() || strides.size() != kernel.size())
      throw ConfigError(who_ + ": dilations and strides need one value per spatial dim");
    ConvOptions o;
    o.stride = Sizes(strides);
    o.padding = Sizes(pads);
    o.dilation = Sizes(dil);
    o.groups = group;
    o.bias = has_in(n, 2);
    std::map<std::string, Tensor> values{{"weight", w.t}};
    if (o.bias) {
      if (!in(n, 2).is_const) throw ConfigError(who_ + ": the bias must be constant");
      values["bias"] = in(n, 2).t;
    }
    std::shared_ptr<Module> conv;
    try {
      conv = std::make_shared<ConvNd>(static_cast<int>(dims), w.t.size(1) * group, w.t.size(0), Sizes(kernel), o,
                                      gen_);
    } catch (const ConfigError& e) {
      throw ConfigError(who_ + ": " + e.what());
    }
    load(*conv, values);
    set_out(0, module(conv, x, hint));
  } else if (type == "ConvTranspose") {
    Value& x = in(n, 0);
    Value& w = in(n, 1);
    const std::int64_t dims = w.t.dim() - 2;
    if (dims < 1 || dims > 3) throw ConfigError(who_ + ": only 1-D, 2-D and 3-D transposed convolutions are supported");
    const std::string auto_pad = a.s("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      throw ConfigError(who_ + ": auto_pad=" + auto_pad + " is not supported (supported: NOTSET, VALID)");
    const std::int64_t group = a.i("group", 1);
    if (group < 1 || x.t.dim() < 3 || x.t.size(1) % group != 0 || w.t.size(0) != x.t.size(1))
      throw ConfigError(who_ + ": group " + std::to_string(group) + " with input " + shape_str(x.t.shape()) +
                        " and weight " + shape_str(w.t.shape()) +
                        " is not supported (supported: group >= 1 dividing C_in, weight [C_in, C_out/group, *kernel])");
    if (a.has("output_shape")) throw ConfigError(who_ + ": output_shape is not supported (give pads and output_padding)");
    const auto zeros = std::vector<std::int64_t>(static_cast<std::size_t>(dims), 0);
    const auto ones = std::vector<std::int64_t>(static_cast<std::size_t>(dims), 1);
    std::vector<std::int64_t> kernel(w.t.shape().begin() + 2, w.t.shape().end());
    if (a.ints("kernel_shape", kernel) != kernel) throw ConfigError(who_ + ": kernel_shape differs from the weight's");
    nlohmann::json attrs = {{"stride", a.ints("strides", ones)},
                            {"padding", symmetric_pads(a.ints("pads", {}), static_cast<std::size_t>(dims), who_)},
                            {"dilation", a.ints("dilations", ones)},
                            {"output_padding", a.ints("output_padding", zeros)}};
    if (group != 1) attrs["groups"] = group;
    a.finish({"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"});
    std::vector<Value*> ins{&x, &w};
    if (has_in(n, 2)) ins.push_back(&in(n, 2));
    set_out(0, op("conv_transpose", attrs, ins, hint));
  } else if (type == "MaxPool" || type == "AveragePool") {
    Value& x = in(n, 0);
    const std::int64_t dims = x.t.dim() - 2;
    if (dims < 1 || dims > 3) throw ConfigError(who_ + ": only 1-D, 2-D and 3-D pooling is supported");
    const std::string auto_pad = a.s("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      throw ConfigError(who_ + ": auto_pad=" + auto_pad + " is not supported (supported: NOTSET, VALID)");
    if (a.i("ceil_mode", 0) != 0) throw ConfigError(who_ + ": ceil_mode=1 is not supported (supported: 0)");
    const auto ones = std::vector<std::int64_t>(static_cast<std::size_t>(dims), 1);
    if (a.ints("dilations", ones) != ones) throw ConfigError(who_ + ": dilations other than 1 are not supported");
    const auto kernel = a.ints("kernel_shape", {});
    const auto strides = a.ints("strides", ones);
    const auto pads = symmetric_pads(a.ints("pads", {}), static_cast<std::size_t>(dims), who_);
    std::vector<std::string> known{"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"};
    if (type == "MaxPool") {
      if (a.i("storage_order", 0) != 0) throw ConfigError(who_ + ": storage_order=1 is not supported");
      known.push_back("storage_order");
    } else {
      const bool include = a.i("count_include_pad", 0) != 0;
      known.push_back("count_include_pad");
      if (!include && std::any_of(pads.begin(), pads.end(), [](auto p) { return p != 0; }))
        throw ConfigError(who_ + ": count_include_pad=0 with padding is not supported (aimc's average pooling "
                                 "counts the padding, as count_include_pad=1)");
    }
    a.finish(known);
    if (kernel.size() != static_cast<std::size_t>(dims) || strides.size() != kernel.size())
      throw ConfigError(who_ + ": kernel_shape and strides need one value per spatial dim");
    std::shared_ptr<Module> pool;
    try {
      pool = std::make_shared<PoolNd>(type == "MaxPool" ? PoolNd::Kind::Max : PoolNd::Kind::Avg,
                                      static_cast<int>(dims), Sizes(kernel), Sizes(strides), Sizes(pads));
    } catch (const ConfigError& e) {
      throw ConfigError(who_ + ": " + e.what());
    }
    set_out(0, module(pool, x, hint));
  } else if (type == "GlobalAveragePool") {
    a.finish({});
    Value& x = in(n, 0);
    if (x.t.dim() < 3) throw ConfigError(who_ + ": the input must be [N, C, *spatial]");
    Value p = op("global_avg_pool", nlohmann::json::object(), {&x}, hint);
    Shape s(static_cast<std::size_t>(x.t.dim()), 1);
    s[0] = x.t.size(0);
    s[1] = x.t.size(1);
    set_out(0, reshape_to(p, s, hint + "_keep"));
  } else if (type == "BatchNormalization") {
    const double eps = a.f("epsilon", 1e-5), momentum = a.f("momentum", 0.9);
    if (a.i("training_mode", 0) != 0) throw ConfigError(who_ + ": training_mode must be 0 (inference import)");
    a.finish({"epsilon", "momentum", "training_mode"});
    Value& x = in(n, 0);
    for (int k = 1; k <= 4; ++k)
      if (!in(n, k).is_const) throw ConfigError(who_ + ": scale, bias, mean and var must be constant");
    if (x.t.dim() < 2 || x.t.dim() > 4)
      throw ConfigError(who_ + ": inputs of rank 2 to 4 are supported, got " + shape_str(x.t.shape()));
    const std::int64_t c = x.t.size(1);
    // ONNX's momentum weighs the running value, PyTorch's the new batch value.
    auto bn = std::make_shared<BatchNormNd>(x.t.dim() == 4 ? 2 : 1, c, eps, 1.0 - momentum, true);
    load(*bn, {{"weight", in(n, 1).t}, {"bias", in(n, 2).t}, {"running_mean", in(n, 3).t},
               {"running_var", in(n, 4).t}});
    set_out(0, module(bn, x, hint));
  } else if (type == "LayerNormalization") {
    const std::int64_t axis = a.i("axis", -1);
    const double eps = a.f("epsilon", 1e-5);
    a.i("stash_type", 1);
    a.finish({"axis", "epsilon", "stash_type"});
    if (n.output_size() > 1) throw ConfigError(who_ + ": the Mean and InvStdDev outputs are not supported");
    Value& x = in(n, 0);
    const std::int64_t r = x.t.dim(), ax = norm_axis(axis, r, who_);
    std::vector<std::int64_t> axes;
    for (std::int64_t d = ax; d < r; ++d) axes.push_back(d);
    // (x - mean) / sqrt(var + eps) * scale + bias, with the population variance.
    Value m = op("mean", {{"axes", axes}, {"keepdim", true}}, {&x}, hint + "_mean");
    Value d = op("sub", nlohmann::json::object(), {&x, &m}, hint + "_centered");
    Value d2 = op("mul", nlohmann::json::object(), {&d, &d}, hint + "_sq");
    Value var = op("mean", {{"axes", axes}, {"keepdim", true}}, {&d2}, hint + "_var");
    Value e{Tensor::scalar(eps), true, false, "", false, ""};
    Value ve = op("add", nlohmann::json::object(), {&var, &e}, hint + "_var_eps");
    Value sd = op("sqrt", nlohmann::json::object(), {&ve}, hint + "_std");
    Value y = op("div", nlohmann::json::object(), {&d, &sd}, hint + "_norm");
    y = op("mul", nlohmann::json::object(), {&y, &in(n, 1)}, hint + "_scale");
    if (has_in(n, 2)) y = op("add", nlohmann::json::object(), {&y, &in(n, 2)}, hint);
    set_out(0, y);
  } else if (type == "ReduceMean" || type == "ReduceSum") {
    const bool keep = a.i("keepdims", 1) != 0;
    std::vector<std::int64_t> axes;
    if (opset >= 18 || type == "ReduceSum") {  // axes became an input (ReduceSum in 13, the others in 18)
      if (a.i("noop_with_empty_axes", 0) != 0) throw ConfigError(who_ + ": noop_with_empty_axes=1 is not supported");
      if (has_in(n, 1)) axes = const_ints(n, 1, "axes");
      a.finish({"keepdims", "noop_with_empty_axes"});
    } else {
      axes = a.ints("axes", {});
      a.finish({"axes", "keepdims"});
    }
    Value& x = in(n, 0);
    if (axes.empty())
      for (std::int64_t d = 0; d < x.t.dim(); ++d) axes.push_back(d);
    set_out(0, op(type == "ReduceMean" ? "mean" : "sum", {{"axes", axes}, {"keepdim", keep}}, {&x}, hint));
  } else if (type == "Flatten") {
    const std::int64_t axis = a.i("axis", 1);
    a.finish({"axis"});
    Value& x = in(n, 0);
    const std::int64_t ax = axis < 0 ? axis + x.t.dim() : axis;
    if (ax < 0 || ax > x.t.dim()) throw ConfigError(who_ + ": axis " + std::to_string(axis) + " is out of range");
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t d = 0; d < x.t.dim(); ++d) (d < ax ? outer : inner) *= x.t.size(d);
    set_out(0, reshape_to(x, {outer, inner}, hint));
  } else if (type == "Reshape") {
    if (a.i("allowzero", 0) != 0) throw ConfigError(who_ + ": allowzero=1 is not supported");
    a.finish({"allowzero"});
    Value& x = in(n, 0);
    auto shape = const_ints(n, 1, "shape");
    std::int64_t known = 1, infer = -1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0) {
        if (static_cast<std::int64_t>(d) >= x.t.dim()) throw ConfigError(who_ + ": shape " + ints_str(shape) + " copies a missing dim");
        shape[d] = x.t.size(static_cast<std::int64_t>(d));
      }
      if (shape[d] == -1) {
        if (infer >= 0) throw ConfigError(who_ + ": shape " + ints_str(shape) + " has two -1");
        infer = static_cast<std::int64_t>(d);
      } else if (shape[d] < 0) {
        throw ConfigError(who_ + ": shape " + ints_str(shape) + " has a negative dim");
      } else {
        checked_elements({shape[d]}, who_);  // each dim bounded first: the product cannot overflow
        known *= shape[d];
        checked_elements({known}, who_);
      }
    }
    if (infer >= 0) {
      if (known == 0 || x.t.numel() % known != 0)
        throw ConfigError(who_ + ": cannot reshape " + shape_str(x.t.shape()) + " to " + ints_str(shape));
      shape[static_cast<std::size_t>(infer)] = x.t.numel() / known;
    }
    if (product(shape) != x.t.numel())
      throw ConfigError(who_ + ": cannot reshape " + shape_str(x.t.shape()) + " to " + ints_str(shape));
    set_out(0, reshape_to(x, shape, hint));
  } else if (type == "Squeeze" || type == "Unsqueeze") {
    a.finish({});
    Value& x = in(n, 0);
    std::vector<std::int64_t> axes;
    if (has_in(n, 1)) axes = const_ints(n, 1, "axes");
    Shape s = x.t.shape();
    if (type == "Squeeze") {
      const std::int64_t r = x.t.dim();
      std::set<std::int64_t> drop;
      for (auto ax : axes) drop.insert(norm_axis(ax, r, who_));
      Shape out;
      for (std::int64_t d = 0; d < r; ++d) {
        const bool squeeze = axes.empty() ? s[d] == 1 : drop.count(d) > 0;
        if (squeeze && s[d] != 1) throw ConfigError(who_ + ": dim " + std::to_string(d) + " is not 1");
        if (!squeeze) out.push_back(s[d]);
      }
      s = out;
    } else {
      if (axes.empty()) throw ConfigError(who_ + ": axes are required");
      const std::int64_t r = x.t.dim() + static_cast<std::int64_t>(axes.size());
      std::set<std::int64_t> add;
      for (auto ax : axes) add.insert(norm_axis(ax, r, who_));
      Shape out;
      std::size_t k = 0;
      for (std::int64_t d = 0; d < r; ++d) out.push_back(add.count(d) ? 1 : s[k++]);
      s = out;
    }
    set_out(0, reshape_to(x, s, hint));
  } else if (type == "Transpose") {
    Value& x = in(n, 0);
    std::vector<std::int64_t> def;
    for (std::int64_t d = x.t.dim() - 1; d >= 0; --d) def.push_back(d);
    const auto perm = a.ints("perm", def);
    a.finish({"perm"});
    set_out(0, op("transpose", {{"perm", perm}}, {&x}, hint));
  } else if (type == "Concat") {
    const std::int64_t axis = a.i("axis", 0);
    a.finish({"axis"});
    std::vector<Value*> xs;
    for (int k = 0; k < n.input_size(); ++k) xs.push_back(&in(n, k));
    if (xs.empty()) throw ConfigError(who_ + ": needs at least one input");
    set_out(0, op("concat", {{"axis", axis}}, xs, hint));
  } else if (type == "Split") {
    Value& x = in(n, 0);
    const std::int64_t axis = norm_axis(a.i("axis", 0), x.t.dim(), who_);
    const std::int64_t parts_attr = a.i("num_outputs", 0);
    a.finish({"axis", "num_outputs"});
    std::vector<std::int64_t> split;
    const std::int64_t len = x.t.size(axis), outs = n.output_size();
    if (has_in(n, 1)) {
      split = const_ints(n, 1, "split");
    } else {
      const std::int64_t parts = parts_attr > 0 ? parts_attr : outs;
      if (parts <= 0) throw ConfigError(who_ + ": no outputs");
      const std::int64_t chunk = (len + parts - 1) / parts;  // the last part is smaller (opset 18)
      for (std::int64_t k = 0; k < parts; ++k) split.push_back(std::max<std::int64_t>(0, std::min(chunk, len - k * chunk)));
    }
    if (static_cast<std::int64_t>(split.size()) != outs)
      throw ConfigError(who_ + ": " + std::to_string(split.size()) + " parts for " + std::to_string(outs) + " outputs");
    std::int64_t start = 0;
    for (std::int64_t k = 0; k < outs; ++k) {
      if (split[k] < 0 || start + split[k] > len) throw ConfigError(who_ + ": split " + ints_str(split) + " does not fit");
      set_out(static_cast<int>(k), op("slice", {{"axis", axis}, {"start", start}, {"end", start + split[k]}}, {&x},
                                      hint + "_" + std::to_string(k)));
      start += split[k];
    }
    if (start != len) throw ConfigError(who_ + ": split " + ints_str(split) + " does not cover dim " + std::to_string(len));
  } else if (type == "Slice") {
    a.finish({});
    Value y = in(n, 0);
    const auto starts = const_ints(n, 1, "starts"), ends = const_ints(n, 2, "ends");
    std::vector<std::int64_t> axes, steps;
    if (has_in(n, 3)) axes = const_ints(n, 3, "axes");
    else for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    if (has_in(n, 4)) steps = const_ints(n, 4, "steps");
    if (ends.size() != starts.size() || axes.size() != starts.size() ||
        (!steps.empty() && steps.size() != starts.size()))
      throw ConfigError(who_ + ": starts, ends, axes and steps must have the same length");
    for (std::size_t k = 0; k < starts.size(); ++k) {
      if (!steps.empty() && steps[k] != 1) throw ConfigError(who_ + ": steps other than 1 are not supported");
      const std::int64_t ax = norm_axis(axes[k], y.t.dim(), who_), len = y.t.size(ax);
      auto clampi = [len](std::int64_t v) {
        if (v < 0) v = v < -len ? 0 : v + len;
        return std::min(v, len);
      };
      const std::int64_t s0 = clampi(starts[k]), e0 = std::max(s0, clampi(ends[k]));
      if (s0 == 0 && e0 == len) continue;
      y = op("slice", {{"axis", ax}, {"start", s0}, {"end", e0}}, {&y}, hint + "_" + std::to_string(k));
    }
    set_out(0, y);
  } else if (type == "Gather") {
    Value& x = in(n, 0);
    const std::int64_t axis = norm_axis(a.i("axis", 0), x.t.dim(), who_);
    a.finish({"axis"});
    Value& iv = in(n, 1);
    if (!iv.is_const) throw ConfigError(who_ + ": the indices must be constant");
    const auto idx = const_ints(n, 1, "indices");
    const std::int64_t len = x.t.size(axis);
    std::vector<Value> parts;
    for (auto i : idx) {
      if (i < -len || i >= len)
        throw ConfigError(who_ + ": index " + std::to_string(i) + " is outside [" + std::to_string(-len) + ", " +
                          std::to_string(len - 1) + "]");
      const std::int64_t j = i < 0 ? i + len : i;
      parts.push_back(op("slice", {{"axis", axis}, {"start", j}, {"end", j + 1}}, {&x},
                         hint + "_" + std::to_string(parts.size())));
    }
    std::vector<Value*> ptrs;
    for (auto& p : parts) ptrs.push_back(&p);
    Value cat = ptrs.size() == 1 ? parts[0] : op("concat", {{"axis", axis}}, ptrs, hint + "_cat");
    Shape s(x.t.shape().begin(), x.t.shape().begin() + axis);
    for (auto d : iv.t.shape()) s.push_back(d);
    for (std::int64_t d = axis + 1; d < x.t.dim(); ++d) s.push_back(x.t.size(d));
    Value y = reshape_to(cat, s, hint);
    y.is_int = x.is_int;
    set_out(0, y);
  } else {
    throw ConfigError(who_ + ": operator " + type + " is not supported (supported: " + join(supported_ops()) + ")");
  }
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
    values_[input.name()] = Value{Tensor::zeros(probe_shape), false, false, in_names.back(), false, ""};
  }

  // Topological order (Kahn); a dangling input or a cycle is refused.
  const int nn = g.node_size();
  auto label = [&](int i) {
    const auto& n = g.node(i);
    return name + ": node '" + (n.name().empty() ? "#" + std::to_string(i) : n.name()) + "' (" + n.op_type() + ")";
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


// ---- Export ----

class Exporter {
 public:
  explicit Exporter(onnx::GraphProto& g) : g_(g) {}

  // Runs and writes module m on the value named x (value t); returns the
  // output's name and value.
  std::pair<std::string, Tensor> module(Module& m, const std::string& prefix, const std::string& x, const Tensor& t);
  bool uses_gelu = false;

 private:
  std::string fresh(const std::string& base) {
    std::string s = base.empty() ? "v" : base, out = s;
    for (int k = 1; used_.count(out); ++k) out = s + "_" + std::to_string(k);
    used_.insert(out);
    return out;
  }
  std::string initializer(const std::string& base, const Tensor& t) {
    const std::string name = fresh(base);
    auto* p = g_.add_initializer();
    p->set_name(name);
    Tensor c = t.to(DType::Float32).contiguous();
    for (auto d : c.shape()) p->add_dims(d);
    p->set_data_type(onnx::TensorProto::FLOAT);
    p->set_raw_data(std::string(reinterpret_cast<const char*>(c.data<float>()),
                                static_cast<std::size_t>(c.numel()) * sizeof(float)));
    return name;
  }
  std::string int_initializer(const std::string& base, const std::vector<std::int64_t>& v) {
    const std::string name = fresh(base);
    auto* p = g_.add_initializer();
    p->set_name(name);
    p->add_dims(static_cast<std::int64_t>(v.size()));
    p->set_data_type(onnx::TensorProto::INT64);
    for (auto e : v) p->add_int64_data(e);
    return name;
  }
  onnx::NodeProto* node(const std::string& type, const std::vector<std::string>& in, const std::string& out) {
    auto* n = g_.add_node();
    n->set_op_type(type);
    n->set_name(fresh("n_" + out));
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
    return n;
  }
  static void attr(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, double v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(v));
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<std::int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto e : v) a->add_ints(e);
  }
  static std::vector<std::int64_t> twice(const std::vector<std::int64_t>& p) {
    std::vector<std::int64_t> out = p;
    out.insert(out.end(), p.begin(), p.end());
    return out;
  }
  // A linear map: Gemm for 2-D inputs, MatMul (+ Add) otherwise.
  std::string linear(const std::string& prefix, const std::string& x, const Tensor& t, const Tensor& w,
                     const Tensor& b) {
    const std::string out = fresh(prefix + "_out");
    if (t.dim() == 2) {
      std::vector<std::string> in{x, initializer(prefix + ".weight", w)};
      if (b.defined()) in.push_back(initializer(prefix + ".bias", b));
      attr(node("Gemm", in, out), "transB", std::int64_t{1});
      return out;
    }
    const std::string mm = b.defined() ? fresh(prefix + "_mm") : out;
    node("MatMul", {x, initializer(prefix + ".weight_t", w.transpose(0, 1))}, mm);
    if (b.defined()) node("Add", {mm, initializer(prefix + ".bias", b)}, out);
    return out;
  }
  std::string conv(const std::string& prefix, const std::string& x, const Tensor& w, const Tensor& b,
                   const ConvGeometry& geo) {
    const std::string out = fresh(prefix + "_out");
    std::vector<std::string> in{x, initializer(prefix + ".weight", w)};
    if (b.defined()) in.push_back(initializer(prefix + ".bias", b));
    auto* n = node("Conv", in, out);
    attr(n, "kernel_shape", geo.kernel);
    attr(n, "strides", geo.stride);
    attr(n, "pads", twice(geo.padding));
    attr(n, "dilations", geo.dilation);
    attr(n, "group", geo.groups);
    return out;
  }
  std::pair<std::string, Tensor> graph(Graph& gm, const std::string& prefix, const std::string& x, const Tensor& t);
  std::pair<std::string, Tensor> graph_op(const GraphNode& gn, const std::string& prefix,
                                          const std::vector<std::string>& in, const std::vector<Tensor>& ts);

  onnx::GraphProto& g_;
  std::set<std::string> used_;
};

Tensor run_op(const GraphNode& gn, const std::vector<Tensor>& ts) {
  std::vector<std::string> names;
  for (std::size_t k = 0; k < ts.size(); ++k) names.push_back(arg_name(k));
  NoGradGuard no_grad;
  Graph g(names, {GraphNode{"n", names, {"y"}, nullptr, gn.op, gn.attributes}}, {"y"});
  return g.forward(ts)[0].detach();
}

std::pair<std::string, Tensor> Exporter::graph_op(const GraphNode& gn, const std::string& prefix,
                                                  const std::vector<std::string>& in, const std::vector<Tensor>& ts) {
  const Tensor y = run_op(gn, ts);
  const std::string out = fresh(prefix.empty() ? gn.outputs[0] : prefix + "_" + gn.outputs[0]);
  const std::string& o = gn.op;
  const nlohmann::json& at = gn.attributes;
  static const std::map<std::string, std::string> same = {
      {"add", "Add"},   {"sub", "Sub"},   {"mul", "Mul"},   {"div", "Div"},   {"matmul", "MatMul"},
      {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"neg", "Neg"}, {"exp", "Exp"},
      {"sqrt", "Sqrt"}, {"erf", "Erf"}, {"identity", "Identity"}, {"gelu", "Gelu"}};
  if (auto it = same.find(o); it != same.end()) {
    if (o == "gelu") uses_gelu = true;
    node(it->second, in, out);
  } else if (o == "leaky_relu") {
    attr(node("LeakyRelu", in, out), "alpha", at.value("negative_slope", 0.01));
  } else if (o == "softmax" || o == "log_softmax") {
    attr(node(o == "softmax" ? "Softmax" : "LogSoftmax", in, out), "axis", at.value("axis", std::int64_t{-1}));
  } else if (o == "pow") {
    node("Pow", {in[0], initializer(out + "_exponent", Tensor::scalar(at.at("exponent").get<double>()))}, out);
  } else if (o == "reshape" || o == "flatten") {
    // The output shape, the batch dim kept free when the first dim is kept.
    std::vector<std::int64_t> shape = y.shape();
    if (shape.size() > 1 && ts[0].dim() > 0 && shape[0] == ts[0].size(0)) shape[0] = -1;
    if (o == "reshape") shape = at.at("shape").get<std::vector<std::int64_t>>();
    node("Reshape", {in[0], int_initializer(out + "_shape", shape)}, out);
  } else if (o == "transpose") {
    attr(node("Transpose", in, out), "perm", at.at("perm").get<std::vector<std::int64_t>>());
  } else if (o == "concat") {
    attr(node("Concat", in, out), "axis", at.value("axis", std::int64_t{0}));
  } else if (o == "slice") {
    node("Slice", {in[0], int_initializer(out + "_starts", {at.at("start").get<std::int64_t>()}),
                   int_initializer(out + "_ends", {at.at("end").get<std::int64_t>()}),
                   int_initializer(out + "_axes", {at.at("axis").get<std::int64_t>()})},
         out);
  } else if (o == "mean" || o == "sum") {
    std::vector<std::int64_t> axes;
    if (at.contains("axes")) axes = at.at("axes").get<std::vector<std::int64_t>>();
    else for (std::int64_t d = 0; d < ts[0].dim(); ++d) axes.push_back(d);
    auto* n = node(o == "mean" ? "ReduceMean" : "ReduceSum", {in[0], int_initializer(out + "_axes", axes)}, out);
    attr(n, "keepdims", std::int64_t{at.value("keepdim", false) ? 1 : 0});
  } else if (o == "conv_transpose") {
    auto* n = node("ConvTranspose", in, out);
    const std::int64_t dims = ts[0].dim() - 2;
    auto per_dim = [&](const char* key, std::int64_t def) {
      std::vector<std::int64_t> v;
      if (at.contains(key)) v = at.at(key).get<std::vector<std::int64_t>>();
      return v.empty() ? std::vector<std::int64_t>(static_cast<std::size_t>(dims), def) : v;
    };
    attr(n, "strides", per_dim("stride", 1));
    attr(n, "pads", twice(per_dim("padding", 0)));
    attr(n, "dilations", per_dim("dilation", 1));
    attr(n, "output_padding", per_dim("output_padding", 0));
    if (at.value("groups", std::int64_t{1}) != 1) attr(n, "group", at.at("groups").get<std::int64_t>());
  } else if (o == "global_avg_pool") {
    const std::string p = fresh(out + "_pool");
    node("GlobalAveragePool", in, p);
    attr(node("Flatten", {p}, out), "axis", std::int64_t{1});
  } else if (o == "linear") {
    const std::string wt = fresh(out + "_wt");
    attr(node("Transpose", {in[1]}, wt), "perm", std::vector<std::int64_t>{1, 0});
    const std::string mm = in.size() > 2 ? fresh(out + "_mm") : out;
    node("MatMul", {in[0], wt}, mm);
    if (in.size() > 2) node("Add", {mm, in[2]}, out);
  } else {
    throw ConfigError("ONNX export: Graph node '" + gn.name + "': op '" + o + "' has no ONNX form");
  }
  return {out, y};
}

std::pair<std::string, Tensor> Exporter::graph(Graph& gm, const std::string& prefix, const std::string& x,
                                               const Tensor& t) {
  if (gm.input_names().size() != 1 || gm.output_names().size() != 1)
    throw ConfigError("ONNX export: a Graph with " + std::to_string(gm.input_names().size()) + " inputs and " +
                      std::to_string(gm.output_names().size()) + " outputs (supported: 1 and 1)");
  std::map<std::string, std::pair<std::string, Tensor>> values;
  values[gm.input_names()[0]] = {x, t};
  for (const NamedTensors& own : {gm.named_buffers(), gm.named_parameters()})  // own: no '.'
    for (const auto& [name, c] : own)
      if (name.find('.') == std::string::npos)
        values[name] = {initializer(prefix.empty() ? name : prefix + "." + name, c), c.detach()};
  for (std::size_t i : gm.run_order()) {
    const GraphNode& gn = gm.nodes()[i];
    std::vector<std::string> in;
    std::vector<Tensor> ts;
    for (const auto& v : gn.inputs) {
      const auto& [n, vt] = values.at(v);
      in.push_back(n);
      ts.push_back(vt);
    }
    const std::string p = prefix.empty() ? gn.name : prefix + "." + gn.name;
    values[gn.outputs[0]] = gn.module ? module(*gn.module, p, in[0], ts[0]) : graph_op(gn, prefix, in, ts);
  }
  return values.at(gm.output_names()[0]);
}

std::pair<std::string, Tensor> Exporter::module(Module& m, const std::string& prefix, const std::string& x,
                                                const Tensor& t) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = m.forward(t).detach();
  }
  const std::string type = m.type_name();
  const std::string base = prefix.empty() ? type : prefix;
  Generator gen(0);
  if (auto* gm = dynamic_cast<Graph*>(&m)) return graph(*gm, prefix, x, t);
  if (auto* seq = dynamic_cast<Sequential*>(&m)) {
    std::pair<std::string, Tensor> cur{x, t};
    for (const auto& [name, child] : seq->named_children())
      cur = module(*child, prefix.empty() ? name : prefix + "." + name, cur.first, cur.second);
    return cur;
  }
  if (dynamic_cast<BasicBlock*>(&m)) {
    // relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), children by name (analog ones too).
    std::map<std::string, Module*> c;
    for (const auto& [name, child] : m.named_children()) c[name] = child.get();
    auto child = [&](const char* name, const std::pair<std::string, Tensor>& in) {
      return module(*c.at(name), base + "." + name, in.first, in.second);
    };
    auto relu_of = [&](const std::pair<std::string, Tensor>& in, const std::string& name) {
      const std::string out = fresh(base + name);
      node("Relu", {in.first}, out);
      NoGradGuard no_grad;
      return std::pair<std::string, Tensor>{out, relu(in.second).detach()};
    };
    auto h = relu_of(child("bn1", child("conv1", {x, t})), "_relu1");
    h = child("bn2", child("conv2", h));
    const auto s = c.count("shortcut") ? child("shortcut", {x, t}) : std::pair<std::string, Tensor>{x, t};
    const std::string sum = fresh(base + "_add");
    node("Add", {h.first, s.first}, sum);
    Tensor sum_t;
    {
      NoGradGuard no_grad;
      sum_t = add(h.second, s.second).detach();
    }
    return {relu_of({sum, sum_t}, "_out").first, y};
  }
  if (auto* lin = dynamic_cast<Linear*>(&m)) return {linear(base, x, t, lin->weight(), lin->bias()), y};
  if (auto* al = dynamic_cast<AnalogLinear*>(&m)) {
    auto d = al->to_digital(gen, true);
    return {linear(base, x, t, d->weight(), d->bias()), y};
  }
  if (auto* c = dynamic_cast<ConvNd*>(&m)) return {conv(base, x, c->weight(), c->bias(), c->geometry()), y};
  if (auto* ac = dynamic_cast<AnalogConvNd*>(&m)) {
    auto d = ac->to_digital(gen, true);
    return {conv(base, x, d->weight(), d->bias(), d->geometry()), y};
  }
  const std::string out = fresh(base + "_out");
  if (auto* bn = dynamic_cast<BatchNormNd*>(&m)) {
    const nlohmann::json cfg = bn->config();
    const std::int64_t c = cfg.at("num_features").get<std::int64_t>();
    std::map<std::string, Tensor> st;
    for (const auto& [k, v] : bn->state_dict()) st[k] = v;
    const Tensor w = bn->weight().defined() ? bn->weight() : Tensor::ones({c});
    const Tensor b = bn->bias().defined() ? bn->bias() : Tensor::zeros({c});
    auto* n = node("BatchNormalization",
                   {x, initializer(base + ".weight", w), initializer(base + ".bias", b),
                    initializer(base + ".running_mean", st.at("running_mean")),
                    initializer(base + ".running_var", st.at("running_var"))},
                   out);
    attr(n, "epsilon", cfg.at("eps").get<double>());
    attr(n, "momentum", 1.0 - cfg.at("momentum").get<double>());
    return {out, y};
  }
  if (auto* pool = dynamic_cast<PoolNd*>(&m)) {
    const bool is_max = type.rfind("MaxPool", 0) == 0;
    auto* n = node(is_max ? "MaxPool" : "AveragePool", {x}, out);
    attr(n, "kernel_shape", pool->kernel());
    attr(n, "strides", pool->stride());
    attr(n, "pads", twice(pool->padding()));
    if (!is_max) attr(n, "count_include_pad", std::int64_t{1});
    return {out, y};
  }
  if (type == "ReLU") node("Relu", {x}, out);
  else if (type == "Sigmoid") node("Sigmoid", {x}, out);
  else if (type == "Tanh") node("Tanh", {x}, out);
  else if (type == "GELU") {
    uses_gelu = true;
    node("Gelu", {x}, out);
  } else if (type == "LeakyReLU") attr(node("LeakyRelu", {x}, out), "alpha", m.config().at("negative_slope").get<double>());
  else if (type == "Dropout") node("Identity", {x}, out);
  else if (type == "GlobalAvgPool") {
    const std::string p = fresh(base + "_pool");
    node("GlobalAveragePool", {x}, p);
    attr(node("Flatten", {p}, out), "axis", std::int64_t{1});
  } else if (type == "Flatten") {
    std::vector<std::int64_t> shape = y.shape();
    if (shape.size() > 1 && t.dim() > 0 && shape[0] == t.size(0)) shape[0] = -1;
    node("Reshape", {x, int_initializer(base + "_shape", shape)}, out);
  } else {
    throw ConfigError("ONNX export: module '" + base + "' of type " + type +
                      " has no ONNX form (supported: Graph, Sequential, BasicBlock, Linear, Conv1d/2d/3d, BatchNorm1d/2d, "
                      "pooling, activations, Flatten, Dropout and their analog forms)");
  }
  return {out, y};
}

}  // namespace

bool onnx_available() { return true; }
void require_onnx_support() {}

std::vector<std::string> onnx_supported_ops() { return supported_ops(); }

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

std::string export_onnx_bytes(Module& model, const std::vector<std::int64_t>& input_shape) {
  if (const auto* g = dynamic_cast<const Graph*>(&model);
      g != nullptr && (g->input_names().size() != 1 || g->output_names().size() != 1))
    throw ConfigError("ONNX export: a Graph with " + std::to_string(g->input_names().size()) + " inputs and " +
                      std::to_string(g->output_names().size()) + " outputs (supported: 1 and 1)");
  const bool was_training = model.is_training();
  model.eval();
  Shape probe{1};
  for (auto d : input_shape) {
    if (d <= 0 || d > kOnnxMaxDim)
      throw ConfigError("ONNX export: input shape " + ints_str(input_shape) + " has a dim outside [1, " +
                        std::to_string(kOnnxMaxDim) + "]");
    probe.push_back(d);
  }
  checked_elements(probe, "ONNX export: input shape");
  onnx::ModelProto mp;
  mp.set_ir_version(8);
  mp.set_producer_name("aimc");
  mp.set_producer_version(version());
  auto* g = mp.mutable_graph();
  g->set_name("aimc");
  Exporter ex(*g);
  std::pair<std::string, Tensor> out;
  try {
    out = ex.module(model, "", "input", Tensor::zeros(probe));
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  auto* in = g->add_input();
  in->set_name("input");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  for (auto d : input_shape) tt->mutable_shape()->add_dim()->set_dim_value(d);
  // The output under its own name (an Identity when the model returns its input).
  auto* o = g->add_output();
  o->set_name("output");
  auto* ot = o->mutable_type()->mutable_tensor_type();
  ot->set_elem_type(onnx::TensorProto::FLOAT);
  for (std::int64_t d = 0; d < out.second.dim(); ++d) {
    if (d == 0) ot->mutable_shape()->add_dim()->set_dim_param("N");  // the batch, as the input's
    else ot->mutable_shape()->add_dim()->set_dim_value(out.second.size(d));
  }
  auto* id = g->add_node();
  id->set_op_type("Identity");
  id->set_name("n_output");
  id->add_input(out.first);
  id->add_output("output");
  auto* op = mp.add_opset_import();
  op->set_domain("");
  op->set_version(ex.uses_gelu ? 20 : 18);  // Gelu is opset 20; reduce axes are inputs from 18
  std::string bytes;
  if (!mp.SerializeToString(&bytes)) throw IoError("ONNX export: serialization failed (over 2 GiB?)");
  return bytes;
}

void export_onnx(Module& model, const std::vector<std::int64_t>& input_shape, const std::string& path) {
  const std::string bytes = export_onnx_bytes(model, input_shape);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f || !f.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !f.flush())
      throw IoError(path + ": cannot write");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError(path + ": cannot write (rename failed)");
  }
}

}  // namespace aimc

#else  // !AIMC_HAVE_ONNX

namespace aimc {

namespace {
[[noreturn]] void no_onnx() {
  throw ConfigError("ONNX: this build of aimc was built without ONNX support (install libprotobuf-dev and "
                    "protobuf-compiler and reconfigure with -Donnx=enabled)");
}
}  // namespace

bool onnx_available() { return false; }
void require_onnx_support() { no_onnx(); }
std::vector<std::string> onnx_supported_ops() { return {}; }
OnnxModel import_onnx(const std::string&, const OnnxImportOptions&) { no_onnx(); }
OnnxModel import_onnx_bytes(const std::string&, const OnnxImportOptions&, const std::string&) { no_onnx(); }
std::string export_onnx_bytes(Module&, const std::vector<std::int64_t>&) { no_onnx(); }
void export_onnx(Module&, const std::vector<std::int64_t>&, const std::string&) { no_onnx(); }

}  // namespace aimc

#endif
