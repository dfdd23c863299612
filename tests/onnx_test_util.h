// What the ONNX test files (test_onnx.cpp: operators and parameters;
// test_onnx_models.cpp: whole models, round trips, bad files, PyTorch and
// onnxruntime) share: seeded inputs, comparisons, and a Builder that writes
// ONNX graphs through protobuf.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "convert/onnx.pb.h"
#include "convert/onnx_io.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/grad_check.h"
#include "engine/ops.h"
#include "layers/config/presets.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/linear.h"
#include "layers/modules/module_factory.h"
#include "layers/optim/sgd.h"
#include "module_test_util.h"

namespace onnx = aimc_onnx;

namespace aimc_onnx_test {

using namespace aimc;


inline Tensor randn(const Shape& shape, std::uint64_t seed, double scale = 1.0) {
  Generator gen(seed);
  return gen.normal(shape, 0.0, scale);
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  Tensor d = abs(sub(a.to(DType::Float64), b.to(DType::Float64))).contiguous();
  double m = 0;
  for (std::int64_t i = 0; i < d.numel(); ++i) m = std::max(m, d.data<double>()[i]);
  return m;
}

inline double max_abs(const Tensor& a) {
  Tensor d = abs(a.to(DType::Float64)).contiguous();
  double m = 0;
  for (std::int64_t i = 0; i < d.numel(); ++i) m = std::max(m, d.data<double>()[i]);
  return m;
}

// Builds an ONNX model: one float input "x" [N, *sample], outputs by name.
struct Builder {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  int count = 0;

  explicit Builder(const std::vector<std::int64_t>& sample, int opset = 17) {
    m.set_ir_version(8);
    m.set_producer_name("test_onnx");
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    g = m.mutable_graph();
    auto* in = g->add_input();
    in->set_name("x");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    for (auto d : sample) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }
  // A float initializer.
  std::string init(const std::string& name, const Tensor& t) {
    auto* p = g->add_initializer();
    p->set_name(name);
    Tensor c = t.to(DType::Float32).contiguous();
    for (auto d : c.shape()) p->add_dims(d);
    p->set_data_type(onnx::TensorProto::FLOAT);
    for (std::int64_t i = 0; i < c.numel(); ++i) p->add_float_data(c.data<float>()[i]);
    return name;
  }
  std::string ints(const std::string& name, const std::vector<std::int64_t>& v, bool scalar = false) {
    auto* p = g->add_initializer();
    p->set_name(name);
    if (!scalar) p->add_dims(static_cast<std::int64_t>(v.size()));
    p->set_data_type(onnx::TensorProto::INT64);
    for (auto e : v) p->add_int64_data(e);
    return name;
  }
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& in,
                        const std::vector<std::string>& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(op + "_" + std::to_string(count++));
    for (const auto& i : in) n->add_input(i);
    for (const auto& o : out) n->add_output(o);
    return n;
  }
  // Shorthand: one output named `out`.
  onnx::NodeProto* op(const std::string& type, const std::vector<std::string>& in, const std::string& out) {
    return node(type, in, {out});
  }
  void output(const std::string& name) {
    auto* o = g->add_output();
    o->set_name(name);
    o->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  std::string bytes() const { return m.SerializeAsString(); }
  OnnxModel import(const std::vector<std::int64_t>& input_shape = {}) const {
    OnnxImportOptions o;
    o.input_shape = input_shape;
    return import_onnx_bytes(bytes(), o, "test model");
  }
};

inline void attr_i(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_f(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
inline void attr_s(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}
inline void attr_is(onnx::NodeProto* n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto e : v) a->add_ints(e);
}

inline Tensor run(const OnnxModel& m, const Tensor& x) {
  NoGradGuard no_grad;
  return m.graph->forward(x);
}

inline int count_children_of_type(const Module& m, const std::string& type) {
  int n = 0;
  for (const auto& [name, c] : m.named_children()) n += (c->type_name() == type) + count_children_of_type(*c, type);
  return n;
}

// Layer norm over the last dim in double on the host: the reference for the
// importer's decomposition.
inline Tensor layer_norm_ref(const Tensor& x, const Tensor& scale, const Tensor& bias, double eps) {
  Tensor xc = x.to(DType::Float64).contiguous();
  Tensor s = scale.to(DType::Float64).contiguous(), b = bias.to(DType::Float64).contiguous();
  const std::int64_t d = x.size(-1), rows = x.numel() / d;
  std::vector<double> out(static_cast<std::size_t>(x.numel()));
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* v = xc.data<double>() + r * d;
    double mean = 0, var = 0;
    for (std::int64_t i = 0; i < d; ++i) mean += v[i];
    mean /= static_cast<double>(d);
    for (std::int64_t i = 0; i < d; ++i) var += (v[i] - mean) * (v[i] - mean);
    var /= static_cast<double>(d);
    for (std::int64_t i = 0; i < d; ++i)
      out[static_cast<std::size_t>(r * d + i)] =
          (v[i] - mean) / std::sqrt(var + eps) * s.data<double>()[i] + b.data<double>()[i];
  }
  return Tensor::from_vector(out, x.shape());
}

}  // namespace aimc_onnx_test
