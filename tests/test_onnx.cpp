// ONNX import and export (convert/onnx_io.h), operator by operator. The ONNX
// files are written here through protobuf (the same onnx.proto the importer
// reads), so these tests need no Python. Each operator alone is checked
// against the engine's own ops on the same input (bit for bit where the
// importer maps to that op, otherwise within float32 rounding, stated per
// test), and the Graph parameters imported initializers become. Whole models
// are in test_onnx_models.cpp. Built only with ONNX support.
#include "tests/onnx_test_util.h"

using namespace aimc;
using namespace aimc_onnx_test;

TEST_CASE("onnx: unary operators equal the engine's ops bit for bit", "[onnx]") {
  const Tensor x = randn({2, 3, 4}, 1);
  struct Case {
    std::string type;
    std::function<Tensor(const Tensor&)> ref;
    int opset = 17;
    std::function<void(onnx::NodeProto*)> attrs = nullptr;
  };
  const std::vector<Case> cases = {
      {"Relu", [](const Tensor& t) { return relu(t); }},
      {"Sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"Tanh", [](const Tensor& t) { return tanh(t); }},
      {"Erf", [](const Tensor& t) { return erf(t); }},
      {"Neg", [](const Tensor& t) { return neg(t); }},
      {"Exp", [](const Tensor& t) { return exp(t); }},
      {"Gelu", [](const Tensor& t) { return gelu(t); }, 20},
      {"Identity", [](const Tensor& t) { return t; }},
      {"Dropout", [](const Tensor& t) { return t; }},
      {"LeakyRelu", [](const Tensor& t) { return leaky_relu(t, 0.2f); }, 17,
       [](onnx::NodeProto* n) { attr_f(n, "alpha", 0.2f); }},
      {"Softmax", [](const Tensor& t) { return softmax(t, 1); }, 17, [](onnx::NodeProto* n) { attr_i(n, "axis", 1); }},
      {"LogSoftmax", [](const Tensor& t) { return log_softmax(t, -1); }},
  };
  for (const auto& c : cases) {
    INFO(c.type);
    Builder b({3, 4}, c.opset);
    auto* n = b.op(c.type, {"x"}, "y");
    if (c.attrs) c.attrs(n);
    b.output("y");
    const OnnxModel m = b.import();
    CHECK(max_abs_diff(run(m, x), c.ref(x)) == 0.0);
  }
  // Sqrt on positive inputs.
  Builder b({3, 4});
  b.op("Sqrt", {"x"}, "y");
  b.output("y");
  const Tensor xp = add_scalar(abs(x), 0.1);
  CHECK(max_abs_diff(run(b.import(), xp), sqrt(xp)) == 0.0);
}

TEST_CASE("onnx: binary operators with constant operands broadcast as numpy", "[onnx]") {
  const Tensor x = randn({2, 3, 4}, 2), c = add_scalar(abs(randn({4}, 3)), 0.5);
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&, const Tensor&)>>> cases = {
      {"Add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"Sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"Mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"Div", [](const Tensor& a, const Tensor& b) { return div(a, b); }}};
  for (const auto& [type, ref] : cases) {
    INFO(type);
    Builder b({3, 4});
    b.init("c", c);
    b.op(type, {"x", "c"}, "y");
    b.output("y");
    CHECK(max_abs_diff(run(b.import(), x), ref(x, c)) == 0.0);
    // The constant first, and both operands the input.
    Builder b2({3, 4});
    b2.init("c", c);
    b2.op(type, {"c", "x"}, "t");
    b2.op(type, {"t", "x"}, "y");
    b2.output("y");
    CHECK(max_abs_diff(run(b2.import(), x), ref(ref(c, x), x)) == 0.0);
  }
  Builder b({3, 4});
  b.init("e", Tensor::scalar(3.0));
  b.op("Pow", {"x", "e"}, "y");
  b.output("y");
  CHECK(max_abs_diff(run(b.import(), x), pow_scalar(x, 3.0)) == 0.0);
}

TEST_CASE("onnx: Gemm and MatMul with constant weights become Linear children", "[onnx]") {
  const Tensor x = randn({5, 6}, 4), w = randn({4, 6}, 5), bias = randn({4}, 6);
  Builder b({6});
  b.init("w", w);
  b.init("b", bias);
  auto* n = b.op("Gemm", {"x", "w", "b"}, "y");
  attr_i(n, "transB", 1);
  attr_f(n, "alpha", 0.5f);
  attr_f(n, "beta", 2.0f);
  b.output("y");
  const OnnxModel m = b.import();
  CHECK(count_children_of_type(*m.graph, "Linear") == 1);
  // alpha and beta are folded into the weights: exact powers of two, so exact.
  CHECK(max_abs_diff(run(m, x), linear(x, mul_scalar(w, 0.5), mul_scalar(bias, 2.0))) == 0.0);

  // MatMul x [N, 3, 6] @ W [6, 4] (N-D Linear without bias), then the bias Add.
  const Tensor x3 = randn({2, 3, 6}, 7), wt = randn({6, 4}, 8);
  Builder b2({3, 6});
  b2.init("w", wt);
  b2.init("b", bias);
  b2.op("MatMul", {"x", "w"}, "h");
  b2.op("Add", {"h", "b"}, "y");
  b2.output("y");
  const OnnxModel m2 = b2.import();
  CHECK(count_children_of_type(*m2.graph, "Linear") == 1);
  CHECK(max_abs_diff(run(m2, x3), add(matmul(x3, wt), bias)) < 1e-5);

  // Both operands dynamic: a batched matmul op (x @ x^T).
  Builder b3({3, 6});
  auto* t = b3.op("Transpose", {"x"}, "xt");
  attr_is(t, "perm", {0, 2, 1});
  b3.op("MatMul", {"x", "xt"}, "y");
  b3.output("y");
  const OnnxModel m3 = b3.import();
  CHECK(count_children_of_type(*m3.graph, "Linear") == 0);
  CHECK(max_abs_diff(run(m3, x3), matmul(x3, permute(x3, {0, 2, 1}))) == 0.0);
}

TEST_CASE("onnx: Conv, pooling and BatchNormalization", "[onnx]") {
  const Tensor x = randn({2, 4, 9, 9}, 10), w = randn({6, 2, 3, 3}, 11, 0.3), bias = randn({6}, 12);
  Builder b({4, 9, 9});
  b.init("w", w);
  b.init("b", bias);
  auto* c = b.op("Conv", {"x", "w", "b"}, "c");
  attr_is(c, "kernel_shape", {3, 3});
  attr_is(c, "pads", {1, 1, 1, 1});
  attr_is(c, "strides", {2, 2});
  attr_i(c, "group", 2);
  auto* mp = b.op("MaxPool", {"c"}, "p");
  attr_is(mp, "kernel_shape", {2, 2});
  attr_is(mp, "strides", {1, 1});
  auto* ap = b.op("AveragePool", {"p"}, "a");
  attr_is(ap, "kernel_shape", {3, 3});
  attr_is(ap, "pads", {1, 1, 1, 1});
  attr_i(ap, "count_include_pad", 1);
  b.op("GlobalAveragePool", {"a"}, "y");
  b.output("y");
  const OnnxModel m = b.import();
  CHECK(count_children_of_type(*m.graph, "Conv2d") == 1);
  ConvGeometry g{{3, 3}, {2, 2}, {1, 1}, {1, 1}, 2};
  const Tensor conv_ref = conv(x, w, bias, g);
  const Tensor pooled = avg_pool(max_pool(conv_ref, {2, 2}, {1, 1}, {0, 0}), {3, 3}, {1, 1}, {1, 1});
  const Tensor ref = reshape(global_avg_pool(pooled), {2, 6, 1, 1});
  CHECK(max_abs_diff(run(m, x), ref) == 0.0);

  // BatchNormalization (inference): (x - mean) / sqrt(var + eps) * scale + bias.
  const Tensor scale = randn({4}, 13), shift = randn({4}, 14), mean = randn({4}, 15),
               var = add_scalar(abs(randn({4}, 16)), 0.5);
  Builder bn({4, 9, 9});
  bn.init("s", scale);
  bn.init("b", shift);
  bn.init("m", mean);
  bn.init("v", var);
  attr_f(bn.op("BatchNormalization", {"x", "s", "b", "m", "v"}, "y"), "epsilon", 1e-3f);
  bn.output("y");
  const OnnxModel mb = bn.import();
  CHECK(count_children_of_type(*mb.graph, "BatchNorm2d") == 1);
  auto c4 = [](const Tensor& t) { return reshape(t, {1, 4, 1, 1}); };
  const Tensor bn_ref = add(mul(div(sub(x, c4(mean)), sqrt(add_scalar(c4(var), 1e-3f))), c4(scale)), c4(shift));
  // Float32 rounding of a few operations on values of order 1-10.
  CHECK(max_abs_diff(run(mb, x), bn_ref) < 1e-5 * std::max(1.0, max_abs(bn_ref)));
}

TEST_CASE("onnx: ConvTranspose is the engine's conv_transpose", "[onnx]") {
  const Tensor x = randn({2, 3, 4, 5}, 17), w = randn({3, 2, 3, 3}, 18, 0.3), bias = randn({2}, 19);
  Builder b({3, 4, 5});
  b.init("w", w);
  b.init("b", bias);
  auto* n = b.op("ConvTranspose", {"x", "w", "b"}, "y");
  attr_is(n, "strides", {2, 2});
  attr_is(n, "pads", {1, 1, 1, 1});
  attr_is(n, "output_padding", {1, 0});
  b.output("y");
  const OnnxModel m = b.import();
  ConvGeometry g;
  g.stride = {2, 2};
  g.padding = {1, 1};
  g.dilation = {1, 1};
  const Tensor ref = conv_transpose(x, w, bias, g, {1, 0});
  CHECK(ref.shape() == Shape{2, 2, 8, 9});  // (4-1)2 - 2 + 3 + 1, (5-1)2 - 2 + 3 + 0
  CHECK(max_abs_diff(run(m, x), ref) == 0.0);
  const OnnxModel m2 = import_onnx_bytes(export_onnx_bytes(*m.graph, {3, 4, 5}), {}, "round trip");
  CHECK(max_abs_diff(run(m2, x), ref) == 0.0);
}

namespace {

// The parameters a PyTorch export leaves outside Conv/Gemm: a LayerNorm's
// scale and bias, a ConvTranspose's weight and bias, and the separate bias
// Add of an N-D Linear (MatMul with a constant weight, then Add).
//   x [N, 3, 5] -> LayerNorm (last axis) -> ConvTranspose1d (3 -> 2, k 3,
//   stride 2) [N, 2, 11] -> [MatMul (11 -> 4) ->] Add bias -> y
Builder parameter_model(bool with_matmul) {
  Builder b({3, 5});
  b.init("ln.weight", randn({5}, 300));
  b.init("ln.bias", randn({5}, 301, 0.1));
  b.init("up.weight", randn({3, 2, 3}, 302, 0.5));
  b.init("up.bias", randn({2}, 303, 0.1));
  b.init("fc.bias", randn({with_matmul ? 4 : 11}, 304, 0.1));
  attr_f(b.op("LayerNormalization", {"x", "ln.weight", "ln.bias"}, "h"), "epsilon", 1e-5f);
  attr_is(b.op("ConvTranspose", {"h", "up.weight", "up.bias"}, "u"), "strides", {2});
  std::string last = "u";
  if (with_matmul) {
    b.init("fc.weight", randn({11, 4}, 305, 0.3));
    b.op("MatMul", {"u", "fc.weight"}, "m");
    last = "m";
  }
  b.op("Add", {last, "fc.bias"}, "y");
  b.output("y");
  return b;
}

// The Graph's own parameters (no '.': not a child's) by name.
std::map<std::string, Tensor> own_parameters(const Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : m.named_parameters())
    if (name.find('.') == std::string::npos) out[name] = t;
  return out;
}

}  // namespace

TEST_CASE("onnx: initializers read by Graph ops become trainable parameters of the Graph", "[onnx]") {
  const OnnxModel m = parameter_model(true).import();
  const auto own = own_parameters(*m.graph);
  // Named after their initializers; the MatMul weight is the Linear child's.
  std::vector<std::string> names;
  for (const auto& [name, t] : own) names.push_back(name);
  CHECK(names == std::vector<std::string>{"fc_bias", "ln_bias", "ln_weight", "up_bias", "up_weight"});
  for (const auto& [name, t] : own) CHECK(t.requires_grad());
  CHECK(count_children_of_type(*m.graph, "Linear") == 1);
  CHECK(m.graph->named_parameters().size() == 6);  // the five and the Linear's weight
  // The LayerNorm's epsilon (a scalar) stays a constant.
  for (const auto& [name, t] : m.graph->named_buffers()) CHECK(t.numel() == 1);
  CHECK(m.graph->config().at("parameters").size() == 5);
  // Values as in the file.
  CHECK(max_abs_diff(own.at("up_weight"), randn({3, 2, 3}, 302, 0.5)) == 0.0);
  CHECK(max_abs_diff(own.at("ln_weight"), randn({5}, 300)) == 0.0);
}

TEST_CASE("onnx: gradients of an imported graph's parameters match finite differences", "[onnx]") {
  const OnnxModel m = parameter_model(false).import();
  // The same graph in float64 (grad_check's precision): its architecture with
  // the dtypes switched, loaded with the imported values.
  nlohmann::json arch = module_architecture(*m.graph);
  for (const char* key : {"constants", "parameters"})
    for (auto& c : arch["config"][key]) c["dtype"] = "float64";
  Generator gen(1);
  std::shared_ptr<Module> g64 = module_from_config(arch, gen);
  g64->load_state_dict(m.graph->state_dict());
  const auto own = own_parameters(*g64);
  REQUIRE(own.size() == 5);
  std::vector<Tensor> inputs{Generator(310).normal({2, 3, 5}, 0, 1, DType::Float64)};
  for (const auto& [name, t] : own) {
    CHECK(t.dtype() == DType::Float64);
    inputs.push_back(t);  // grad_check perturbs them in place, so the graph sees each step
  }
  inputs[0].set_requires_grad(true);
  const GradCheckResult r = grad_check([&](const std::vector<Tensor>& v) { return g64->forward(v[0]); }, inputs);
  INFO(r.message);
  CHECK(r.ok);
  // Central differences with eps 1e-6 in float64 on values of order 1: errors near 1e-9.
  CHECK(r.max_abs_error < 1e-6);
}

TEST_CASE("onnx: one SGD step changes the imported parameters, and a checkpoint keeps them", "[onnx]") {
  OnnxModel m = parameter_model(true).import();
  Graph& g = *m.graph;
  g.train();
  const Tensor x = randn({4, 3, 5}, 320), r = randn({4, 2, 4}, 321);
  std::map<std::string, Tensor> before;
  for (const auto& [name, t] : g.named_parameters()) before[name] = t.detach().clone();
  SGD sgd(g.parameters(), 0.1);
  sgd.zero_grad();
  Tensor loss = sum(mul(g.forward(x), r));
  loss.backward();
  std::map<std::string, Tensor> grads;
  for (const auto& [name, t] : g.named_parameters()) {
    REQUIRE(t.grad().defined());
    grads[name] = t.grad().detach().clone();
  }
  sgd.step();
  for (const auto& [name, t] : g.named_parameters()) {
    INFO(name);
    // p - 0.1 g, in float32: one rounding of values of order 1.
    const Tensor expected = sub(before.at(name), mul_scalar(grads.at(name), 0.1));
    CHECK(max_abs_diff(t, expected) <= 1e-6 * std::max(1.0, max_abs(expected)));
    CHECK(max_abs_diff(t, before.at(name)) > 1e-4);  // it moved
  }

  // Checkpoint round trip: the architecture lists them as parameters, the values come back bit for bit.
  g.eval();
  const aimc::testing::TempDir dir("aimc_test_onnx");
  const std::string path = dir.file("params.safetensors");
  save_checkpoint(path, g, nlohmann::json::object());
  const Checkpoint ck = load_checkpoint(path);
  REQUIRE(ck.model->type_name() == "Graph");
  const auto own = own_parameters(*ck.model);
  CHECK(own.size() == 5);
  for (const auto& [name, t] : own_parameters(g)) {
    INFO(name);
    REQUIRE(own.count(name) == 1);
    CHECK(own.at(name).requires_grad());
    CHECK(max_abs_diff(own.at(name), t) == 0.0);
  }
  ck.model->eval();
  Tensor y1, y2;
  {
    NoGradGuard ng;
    y1 = g.forward(x);
    y2 = ck.model->forward(x);
  }
  CHECK(max_abs_diff(y1, y2) == 0.0);
  // Export keeps them as initializers: the re-import has the same parameters and outputs.
  const OnnxModel again = import_onnx_bytes(export_onnx_bytes(g, {3, 5}), {}, "round trip");
  CHECK(own_parameters(*again.graph).size() == 5);
  CHECK(max_abs_diff(run(again, x), y1) == 0.0);
}

namespace {

// The message of the ConfigError or IoError f throws ("no error" otherwise).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return std::string("ConfigError: ") + e.what();
  } catch (const IoError& e) {
    return std::string("IoError: ") + e.what();
  }
  return "no error";
}

// A Gemm y = 0.5 x w^T + 2 C for x [3, 6] (the input declares batch 3 when
// `fixed`), w [4, 6], C of the given shape.
Builder gemm_with_c(const Shape& c_shape, bool fixed) {
  Builder b({6});
  if (fixed) b.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(3);
  b.init("w", randn({4, 6}, 5));
  b.init("c", randn(c_shape, 6));
  auto* n = b.op("Gemm", {"x", "w", "c"}, "y");
  attr_i(n, "transB", 1);
  attr_f(n, "alpha", 0.5f);
  attr_f(n, "beta", 2.0f);
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("onnx: Gemm's C broadcasts to [M, N] as ONNX's rule", "[onnx]") {
  const Tensor x = randn({3, 6}, 4), w = randn({4, 6}, 5);
  // A scalar, [N] and [1, N] become the Linear's bias; [M, 1] and [M, N] (the input declaring batch M = 3)
  // are added per sample after it.
  for (const Shape& c_shape : {Shape{}, Shape{4}, Shape{1, 4}, Shape{3, 1}, Shape{3, 4}}) {
    INFO(shape_str(c_shape));
    const bool per_sample = c_shape.size() == 2 && c_shape[0] == 3;
    const OnnxModel m = gemm_with_c(c_shape, per_sample).import();
    CHECK(count_children_of_type(*m.graph, "Linear") == 1);
    const Tensor ref = add(linear(x, mul_scalar(w, 0.5), Tensor()), mul_scalar(randn(c_shape, 6), 2.0));
    // alpha and beta are powers of two (exact); the bias added inside or after the product: float32 rounding.
    CHECK(max_abs_diff(run(m, x), ref) <= 1e-6 * max_abs(ref));
    if (per_sample) continue;  // the export declares a free batch, which a row per sample does not take
    const OnnxModel again = import_onnx_bytes(export_onnx_bytes(*m.graph, {6}), {}, "round trip");
    CHECK(max_abs_diff(run(again, x), run(m, x)) == 0.0);
  }
  using Catch::Matchers::Contains;
  // A row per sample needs a declared batch of that size; other shapes do not broadcast.
  CHECK_THAT(error_of([] { gemm_with_c({3, 4}, false).import(); }),
             Contains("ConfigError") && Contains("Gemm_0") && Contains("C of shape [3, 4]") &&
                 Contains("when the input declares batch M"));
  CHECK_THAT(error_of([] { gemm_with_c({2, 4}, true).import(); }),
             Contains("Gemm_0") && Contains("does not broadcast to [M, N] = [3, 4]"));
  CHECK_THAT(error_of([] { gemm_with_c({5}, false).import(); }), Contains("Gemm_0") && Contains("C of shape [5]"));
  CHECK_THAT(error_of([] { gemm_with_c({1, 1, 4}, false).import(); }), Contains("C of shape [1, 1, 4]"));
}

TEST_CASE("onnx: grouped ConvTranspose equals the engine's with a block-diagonal weight", "[onnx]") {
  // x [2, 4, 5, 5], 2 groups: weight [4, 3, 3, 3] (C_out / group = 3), bias [6].
  const Tensor x = randn({2, 4, 5, 5}, 200), w = randn({4, 3, 3, 3}, 201, 0.3), bias = randn({6}, 202);
  Builder b({4, 5, 5});
  b.init("w", w);
  b.init("b", bias);
  auto* n = b.op("ConvTranspose", {"x", "w", "b"}, "y");
  attr_i(n, "group", 2);
  attr_is(n, "strides", {2, 2});
  attr_is(n, "pads", {1, 1, 1, 1});
  b.output("y");
  const OnnxModel m = b.import();
  // The reference: groups 1 with the weight [4, 6, 3, 3] zero outside the two diagonal blocks.
  const Tensor z = Tensor::zeros({2, 3, 3, 3});
  const Tensor full = concat({concat({slice(w, 0, 0, 2), z}, 1), concat({z, slice(w, 0, 2, 4)}, 1)}, 0);
  ConvGeometry g;
  g.stride = {2, 2};
  g.padding = {1, 1};
  g.dilation = {1, 1};
  const Tensor ref = conv_transpose(x, full, bias, g);
  CHECK(ref.shape() == Shape{2, 6, 9, 9});
  // The zero blocks only add exact zeros; the sums may run in another order: float32 rounding.
  const Tensor y = run(m, x);
  CHECK(max_abs_diff(y, ref) <= 1e-6 * max_abs(ref));
  CHECK(own_parameters(*m.graph).count("w") == 1);  // trainable
  const OnnxModel again = import_onnx_bytes(export_onnx_bytes(*m.graph, {4, 5, 5}), {}, "round trip");
  CHECK(max_abs_diff(run(again, x), y) == 0.0);

  // Gradients of the grouped op (x, weight, bias) against finite differences, in float64.
  GraphNode node;
  node.name = "up";
  node.op = "conv_transpose";
  node.inputs = {"x", "w", "b"};
  node.outputs = {"y"};
  node.attributes = {{"groups", 2}, {"stride", {2}}, {"padding", {1}}};
  Graph g64({"x", "w", "b"}, {node}, {"y"});
  Generator gen(203);
  std::vector<Tensor> in{gen.normal({1, 4, 3}, 0, 1, DType::Float64), gen.normal({4, 2, 3}, 0, 1, DType::Float64),
                         gen.normal({4}, 0, 1, DType::Float64)};
  for (auto& t : in) t.set_requires_grad(true);
  const GradCheckResult r = grad_check([&](const std::vector<Tensor>& v) { return g64.forward(v)[0]; }, in);
  INFO(r.message);
  CHECK(r.ok);

  using Catch::Matchers::Contains;
  Builder bad({4, 5, 5});
  bad.init("w", w);
  attr_i(bad.op("ConvTranspose", {"x", "w"}, "y"), "group", 3);
  bad.output("y");
  CHECK_THAT(error_of([&] { bad.import(); }),
             Contains("ConfigError") && Contains("ConvTranspose_0") && Contains("group 3") && Contains("dividing C_in"));
  GraphNode zero = node;
  zero.attributes["groups"] = 0;
  CHECK_THROWS_WITH((Graph({"x", "w", "b"}, {zero}, {"y"})), Contains("groups") && Contains(">= 1"));
}

TEST_CASE("onnx: Where, Equal, Expand and Range of constants fold at import", "[onnx]") {
  // x [N, 3, 4]; target = Where(Equal(Range(0, 3, 1), 2), -1, Shape(x)) = [N, 3, -1] reshapes x (a no-op);
  // then + Expand(c [4], [3, 1]) + Range(4.0, 0.0, -1.0) = x + c + [4, 3, 2, 1].
  const Tensor x = randn({2, 3, 4}, 210), c = randn({4}, 211);
  Builder b({3, 4});
  b.ints("zero", {0}, true);
  b.ints("three", {3}, true);
  b.ints("one", {1}, true);
  b.ints("two", {2});
  b.ints("minus_one", {-1}, true);
  b.ints("rows", {3, 1});
  b.init("c", c);
  b.init("four", Tensor::scalar(4.0));
  b.init("nought", Tensor::scalar(0.0));
  b.init("step", Tensor::scalar(-1.0));
  b.op("Range", {"zero", "three", "one"}, "idx");
  b.op("Equal", {"idx", "two"}, "mask");
  b.op("Shape", {"x"}, "shape");
  b.op("Where", {"mask", "minus_one", "shape"}, "target");
  b.op("Reshape", {"x", "target"}, "h");
  b.op("Expand", {"c", "rows"}, "ce");
  b.op("Range", {"four", "nought", "step"}, "ramp");
  b.op("Add", {"h", "ce"}, "h1");
  b.op("Add", {"h1", "ramp"}, "y");
  b.output("y");
  const OnnxModel m = b.import();
  for (const auto& node : m.graph->nodes()) CHECK(node.op == "add");  // the rest folded
  const Tensor ramp = Tensor::from_vector(std::vector<float>{4, 3, 2, 1}, {4});
  // Two float32 additions, in the same order as the graph: exact.
  CHECK(max_abs_diff(run(m, x), add(add(x, c), ramp)) == 0.0);
  CHECK(max_abs_diff(run(m, slice(x, 0, 0, 1)), add(add(slice(x, 0, 0, 1), c), ramp)) == 0.0);

  using Catch::Matchers::Contains;
  {  // Graph inputs are refused: these compute shapes, not data.
    Builder bad({3, 4});
    bad.ints("zero", {0}, true);
    bad.op("Equal", {"x", "zero"}, "m");
    bad.op("Where", {"m", "x", "x"}, "y");
    bad.output("y");
    CHECK_THAT(error_of([&] { bad.import(); }),
               Contains("Equal_0") && Contains("(Equal)") && Contains("constants only"));
  }
  {  // Range with delta 0, Expand to a shape that does not broadcast.
    Builder bad({3, 4});
    bad.ints("zero", {0}, true);
    bad.ints("three", {3}, true);
    bad.op("Range", {"zero", "three", "zero"}, "r");
    bad.op("Cast", {"r"}, "y");
    attr_i(bad.g->mutable_node(1), "to", onnx::TensorProto::FLOAT);
    bad.output("y");
    CHECK_THAT(error_of([&] { bad.import(); }), Contains("Range_0") && Contains("delta must be non-zero"));
    Builder bad2({3, 4});
    bad2.init("c", c);
    bad2.ints("shape", {3, 5});
    bad2.op("Expand", {"c", "shape"}, "ce");
    bad2.op("Add", {"x", "ce"}, "y");
    bad2.output("y");
    CHECK_THAT(error_of([&] { bad2.import(); }), Contains("ConfigError") && Contains("Expand_0"));
  }
}

TEST_CASE("onnx: a model of two graph inputs, each with its shape", "[onnx]") {
  // a [N, 3, 4] (declared), b [N, *] (shape given): y = Concat(a, Unsqueeze(b, 1)) along 1, then MatMul w [4, 2].
  Builder b({3, 4});
  auto* in2 = b.g->add_input();
  in2->set_name("b");
  auto* tt = in2->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  tt->mutable_shape()->add_dim()->set_dim_param("K");
  const Tensor w = randn({4, 2}, 220);
  b.init("w", w);
  b.ints("axis1", {1});
  b.op("Unsqueeze", {"b", "axis1"}, "bu");
  attr_i(b.op("Concat", {"x", "bu"}, "cat"), "axis", 1);
  b.op("MatMul", {"cat", "w"}, "y");
  b.output("y");
  OnnxImportOptions o;
  o.input_shapes = {{}, {4}};  // the first as declared
  const OnnxModel m = import_onnx_bytes(b.bytes(), o, "two inputs");
  CHECK(m.graph->input_names().size() == 2);
  CHECK(m.input_shapes == std::vector<std::vector<std::int64_t>>{{3, 4}, {4}});
  CHECK(m.input_shape == std::vector<std::int64_t>{3, 4});
  CHECK(count_children_of_type(*m.graph, "Linear") == 1);
  for (std::int64_t n : {1, 3}) {
    const Tensor xa = randn({n, 3, 4}, 221), xb = randn({n, 4}, 222);
    Tensor y;
    {
      NoGradGuard ng;
      y = m.graph->forward(std::vector<Tensor>{xa, xb})[0];
    }
    const Tensor ref = matmul(concat({xa, reshape(xb, {n, 1, 4})}, 1), w);
    // The Linear's product and matmul: float32 rounding of sums of four terms.
    CHECK(max_abs_diff(y, ref) <= 1e-6 * max_abs(ref));
  }
  using Catch::Matchers::Contains;
  OnnxImportOptions one;
  one.input_shape = {3, 4};
  CHECK_THAT(error_of([&] { import_onnx_bytes(b.bytes(), one, "two inputs"); }),
             Contains("1 input shapes given for 2 graph inputs"));
  CHECK_THAT(error_of([&] { import_onnx_bytes(b.bytes(), {}, "two inputs"); }),
             Contains("graph input 'b'") && Contains("--input-shape"));
  CHECK_THAT(error_of([&] { export_onnx_bytes(*m.graph, {3, 4}); }), Contains("2 inputs"));
}

TEST_CASE("onnx: LayerNormalization equals the double-precision formula", "[onnx]") {
  const Tensor x = randn({2, 5, 8}, 20), scale = randn({8}, 21), bias = randn({8}, 22);
  Builder b({5, 8});
  b.init("s", scale);
  b.init("b", bias);
  attr_f(b.op("LayerNormalization", {"x", "s", "b"}, "y"), "epsilon", 1e-5f);
  b.output("y");
  const Tensor y = run(b.import(), x), ref = layer_norm_ref(x, scale, bias, 1e-5f);
  // Float32 sums over 8 values of order 1: relative error well under 1e-5.
  CHECK(max_abs_diff(y, ref) < 1e-5 * max_abs(ref));
}

TEST_CASE("onnx: shape operators and PyTorch's Shape->Gather->Concat->Reshape chain fold", "[onnx]") {
  const Tensor x = randn({3, 2, 4, 5}, 30);
  // x.view(x.size(0), -1) as PyTorch exports it.
  Builder b({2, 4, 5});
  b.op("Shape", {"x"}, "s");
  b.ints("zero", {0}, true);
  attr_i(b.op("Gather", {"s", "zero"}, "n"), "axis", 0);
  b.ints("ax0", {0});
  b.op("Unsqueeze", {"n", "ax0"}, "nu");
  b.ints("minus1", {-1});
  attr_i(b.op("Concat", {"nu", "minus1"}, "shape"), "axis", 0);
  b.op("Reshape", {"x", "shape"}, "y");
  b.output("y");
  const OnnxModel m = b.import();
  for (const auto& node : m.graph->nodes()) CHECK(node.op != "");  // no Shape left: op nodes only
  REQUIRE(m.graph->nodes().size() == 1);
  CHECK(m.graph->nodes()[0].op == "reshape");
  // Any batch size, although the shape was folded with a batch of 1.
  CHECK(max_abs_diff(run(m, x), reshape(x, {3, 40})) == 0.0);

  // Transpose, Squeeze/Unsqueeze, Concat, Split, Slice, Gather (constant indices).
  Builder c({2, 4, 5});
  attr_is(c.op("Transpose", {"x"}, "t"), "perm", {0, 3, 1, 2});  // [N, 5, 2, 4]
  c.ints("ax1", {1});
  c.op("Unsqueeze", {"t", "ax1"}, "u");  // [N, 1, 5, 2, 4]
  c.op("Squeeze", {"u", "ax1"}, "q");    // [N, 5, 2, 4]
  c.ints("split", {2, 3});
  auto* sp = c.node("Split", {"q", "split"}, {"s0", "s1"});
  attr_i(sp, "axis", 1);
  attr_i(c.op("Concat", {"s1", "s0"}, "cat"), "axis", 1);  // swapped halves
  c.ints("st", {1});
  c.ints("en", {100});  // clamped to the end
  c.ints("axs", {3});
  c.op("Slice", {"cat", "st", "en", "axs"}, "sl");  // [N, 5, 2, 3]
  c.ints("idx", {2, 0});
  attr_i(c.op("Gather", {"sl", "idx"}, "y"), "axis", 3);  // [N, 5, 2, 2]
  c.output("y");
  const Tensor t = permute(x, {0, 3, 1, 2});
  const Tensor cat = concat({slice(t, 1, 2, 5), slice(t, 1, 0, 2)}, 1);
  const Tensor sl = slice(cat, 3, 1, 4);
  const Tensor ref = concat({slice(sl, 3, 2, 3), slice(sl, 3, 0, 1)}, 3);
  CHECK(max_abs_diff(run(c.import(), x), ref) == 0.0);

  // Flatten (axis 1) and a Constant, Cast and ConstantOfShape folded.
  Builder f({2, 4, 5});
  f.op("Flatten", {"x"}, "fl");
  auto* k = f.op("Constant", {}, "k");
  attr_f(k, "value_float", 2.0f);
  attr_i(f.op("Cast", {"k"}, "kf"), "to", onnx::TensorProto::FLOAT);
  f.op("Mul", {"fl", "kf"}, "y");
  f.output("y");
  CHECK(max_abs_diff(run(f.import(), x), mul_scalar(reshape(x, {3, 40}), 2.0)) == 0.0);
}

TEST_CASE("onnx: ReduceMean/ReduceSum (axes as attribute before opset 18, as input after) and Mod", "[onnx]") {
  const Tensor x = randn({2, 3, 4}, 35);
  Builder b17({3, 4}, 17);
  auto* r = b17.op("ReduceMean", {"x"}, "m");
  attr_is(r, "axes", {-1});
  b17.ints("ax", {1});
  attr_i(b17.op("ReduceSum", {"m", "ax"}, "y"), "keepdims", 0);
  b17.output("y");
  const Tensor ref = sum(mean(x, {-1}, true), {1}, false);
  CHECK(max_abs_diff(run(b17.import(), x), ref) == 0.0);
  Builder b18({3, 4}, 18);
  b18.ints("ax2", {-1});
  b18.op("ReduceMean", {"x", "ax2"}, "m");
  b18.ints("ax", {1});
  attr_i(b18.op("ReduceSum", {"m", "ax"}, "y"), "keepdims", 0);
  b18.output("y");
  CHECK(max_abs_diff(run(b18.import(), x), ref) == 0.0);

  // Mod of constants sizing a reshape: -2 mod 6 is 4 with Python's sign rule
  // (fmod 0), -2 with C's (fmod 1), which no reshape accepts.
  for (const bool fmod : {false, true}) {
    Builder m({3, 4});
    m.ints("a", {-2});
    m.ints("b", {6});
    auto* mod = m.op("Mod", {"a", "b"}, "r");
    if (fmod) attr_i(mod, "fmod", 1);
    m.ints("m1", {-1});
    attr_i(m.op("Concat", {"m1", "r"}, "shape"), "axis", 0);
    m.op("Reshape", {"x", "shape"}, "y");
    m.output("y");
    if (!fmod) {
      CHECK(max_abs_diff(run(m.import(), x), reshape(x, {6, 4})) == 0.0);
    } else {
      CHECK_THROWS_WITH(m.import(), Catch::Matchers::Contains("[-1,-2] has a negative dim"));
    }
  }
}
