// The ONNX importer's operators: one ONNX node as Graph nodes, children or
// folded constants (see importer.h; the list in common.cpp's supported_ops).
#include <algorithm>
#include <cmath>

#include "convert/onnx/importer.h"
#include "engine/ops.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/linear.h"
#include "layers/modules/pooling.h"

namespace aimc::onnx_detail {

namespace {

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

}  // namespace

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
    set_out(0, constant_value(ints_tensor(dims, {static_cast<std::int64_t>(dims.size())}), true));
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
    Value fill = constant_value(Tensor::scalar(0.0));
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
    Value v = constant_value(Tensor::from_vector(out, xd.shape()), x.is_int && y.is_int);
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
          Value s = constant_value(Tensor::scalar(beta));
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
        Value s = constant_value(Tensor::scalar(alpha));
        y = op("mul", nlohmann::json::object(), {&y, &s}, hint + "_alpha");
      }
      if (has_in(n, 2)) {
        Value c = in(n, 2);
        check_gemm_c(c.t.shape(), bb.t.size(1));
        if (beta != 1.0) {
          Value s = constant_value(Tensor::scalar(beta));
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
    Value e = constant_value(Tensor::scalar(eps));
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

}  // namespace aimc::onnx_detail
