// ONNX export: a Module tree as an ONNX model (see convert/onnx_io.h).
#include <fstream>
#include <map>
#include <set>

#include "aimc_config.h"
#include "convert/onnx/common.h"
#include "convert/onnx_io.h"
#include "engine/autograd.h"
#include "engine/error.h"
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
#include "layers/modules/graph.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"

namespace aimc {

namespace {

using namespace onnx_detail;

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
