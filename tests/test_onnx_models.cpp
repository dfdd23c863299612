// ONNX import and export of whole models (an MLP, LeNet-5, a residual block,
// ResNet-20/32, a transformer encoder block) against direct computations;
// round trips import -> export -> import bit for bit; bad files against their
// messages; PyTorch's exports and onnxruntime where Python has them. Part of
// the test_onnx executable (helpers in tests/onnx_test_util.h).
#include "tests/onnx_test_util.h"

using namespace aimc;
using namespace aimc_onnx_test;

namespace {

// The transformer encoder block's weights.
struct EncoderWeights {
  Tensor wq, wk, wv, wo, w1, b1, w2, b2, g1, be1, g2, be2;
};

EncoderWeights encoder_weights(std::int64_t d, std::int64_t ff) {
  const double s = 1.0 / std::sqrt(static_cast<double>(d));
  return {randn({d, d}, 40, s),  randn({d, d}, 41, s),  randn({d, d}, 42, s), randn({d, d}, 43, s),
          randn({d, ff}, 44, s), randn({ff}, 45, 0.1),  randn({ff, d}, 46, s), randn({d}, 47, 0.1),
          randn({d}, 48),        randn({d}, 49, 0.1),   randn({d}, 50),        randn({d}, 51, 0.1)};
}

// y1 = LN(x + softmax(x Wq (x Wk)^T / sqrt(d)) x Wv Wo); y = LN(y1 + gelu(y1 W1 + b1) W2 + b2).
Builder encoder_model(const EncoderWeights& w, std::int64_t seq, std::int64_t d) {
  Builder b({seq, d}, 20);
  for (const auto& [n, t] : std::vector<std::pair<std::string, Tensor>>{
           {"wq", w.wq}, {"wk", w.wk}, {"wv", w.wv}, {"wo", w.wo}, {"w1", w.w1}, {"b1", w.b1}, {"w2", w.w2},
           {"b2", w.b2}, {"g1", w.g1}, {"be1", w.be1}, {"g2", w.g2}, {"be2", w.be2}})
    b.init(n, t);
  b.init("scale", Tensor::scalar(std::sqrt(static_cast<double>(d))));
  b.op("MatMul", {"x", "wq"}, "q");
  b.op("MatMul", {"x", "wk"}, "k");
  b.op("MatMul", {"x", "wv"}, "v");
  attr_is(b.op("Transpose", {"k"}, "kt"), "perm", {0, 2, 1});
  b.op("MatMul", {"q", "kt"}, "s");
  b.op("Div", {"s", "scale"}, "ss");
  attr_i(b.op("Softmax", {"ss"}, "p"), "axis", -1);
  b.op("MatMul", {"p", "v"}, "a");
  b.op("MatMul", {"a", "wo"}, "o");
  b.op("Add", {"x", "o"}, "r1");
  b.op("LayerNormalization", {"r1", "g1", "be1"}, "y1");
  b.op("MatMul", {"y1", "w1"}, "h");
  b.op("Add", {"h", "b1"}, "hb");
  b.op("Gelu", {"hb"}, "hg");
  b.op("MatMul", {"hg", "w2"}, "f");
  b.op("Add", {"f", "b2"}, "fb");
  b.op("Add", {"y1", "fb"}, "r2");
  b.op("LayerNormalization", {"r2", "g2", "be2"}, "y");
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("onnx: a transformer encoder block equals its direct computation", "[onnx]") {
  const std::int64_t seq = 6, d = 8, ff = 16;
  const EncoderWeights w = encoder_weights(d, ff);
  const OnnxModel m = encoder_model(w, seq, d).import();
  CHECK(count_children_of_type(*m.graph, "Linear") == 6);  // q, k, v, o, and the two feed-forward maps
  const Tensor x = randn({3, seq, d}, 52);
  const Tensor q = matmul(x, w.wq), k = matmul(x, w.wk), v = matmul(x, w.wv);
  const Tensor p = softmax(mul_scalar(matmul(q, permute(k, {0, 2, 1})), 1.0 / std::sqrt(double(d))), -1);
  const Tensor y1 = layer_norm_ref(add(x, matmul(matmul(p, v), w.wo)), w.g1, w.be1, 1e-5f).to(DType::Float32);
  const Tensor f = add(matmul(gelu(add(matmul(y1, w.w1), w.b1)), w.w2), w.b2);
  const Tensor ref = layer_norm_ref(add(y1, f), w.g2, w.be2, 1e-5f);
  // Float32 through two layer norms of values of order 1: 1e-5 relative to the largest output.
  CHECK(max_abs_diff(run(m, x), ref) < 1e-5 * max_abs(ref));
}

TEST_CASE("onnx: a residual block (Conv-BN-ReLU-Conv-BN + skip) and its round trip", "[onnx]") {
  const std::int64_t c = 4;
  Builder b({c, 6, 6});
  b.init("w1", randn({c, c, 3, 3}, 60, 0.2));
  b.init("w2", randn({c, c, 3, 3}, 61, 0.2));
  for (int i = 1; i <= 2; ++i) {
    const std::string s = std::to_string(i);
    b.init("s" + s, randn({c}, 62 + i));
    b.init("b" + s, randn({c}, 64 + i));
    b.init("m" + s, randn({c}, 66 + i, 0.1));
    b.init("v" + s, add_scalar(abs(randn({c}, 68 + i)), 0.5));
  }
  for (int i = 1; i <= 2; ++i) {
    const std::string s = std::to_string(i), in = i == 1 ? "x" : "r1";
    auto* cv = b.op("Conv", {in, "w" + s}, "c" + s);
    attr_is(cv, "pads", {1, 1, 1, 1});
    b.op("BatchNormalization", {"c" + s, "s" + s, "b" + s, "m" + s, "v" + s}, "n" + s);
    if (i == 1) b.op("Relu", {"n1"}, "r1");
  }
  b.op("Add", {"n2", "x"}, "sum");
  b.op("Relu", {"sum"}, "y");
  b.output("y");
  const OnnxModel m = b.import();
  CHECK(count_children_of_type(*m.graph, "Conv2d") == 2);
  CHECK(count_children_of_type(*m.graph, "BatchNorm2d") == 2);
  const Tensor x = randn({2, c, 6, 6}, 70);
  // Reference: the imported children (conv1, bn1, conv2, bn2, in node order) run by hand.
  std::vector<std::shared_ptr<Module>> mods;
  for (const auto& node : m.graph->nodes())
    if (node.module) mods.push_back(node.module);
  REQUIRE(mods.size() == 4);
  Tensor ref;
  {
    NoGradGuard ng;
    ref = relu(add(mods[3]->forward(mods[2]->forward(relu(mods[1]->forward(mods[0]->forward(x))))), x));
  }
  const Tensor y = run(m, x);
  CHECK(max_abs_diff(y, ref) == 0.0);

  // import -> export -> import: the same outputs bit for bit.
  const std::string bytes = export_onnx_bytes(*m.graph, {c, 6, 6});
  const OnnxModel m2 = import_onnx_bytes(bytes, {}, "round trip");
  CHECK(max_abs_diff(run(m2, x), y) == 0.0);
  const std::string bytes2 = export_onnx_bytes(*m2.graph, {c, 6, 6});
  CHECK(max_abs_diff(run(import_onnx_bytes(bytes2, {}, "again"), x), y) == 0.0);
}

TEST_CASE("onnx: round trips of the transformer block and an MLP", "[onnx]") {
  const EncoderWeights w = encoder_weights(8, 16);
  const OnnxModel m = encoder_model(w, 6, 8).import();
  const Tensor x = randn({2, 6, 8}, 80);
  const OnnxModel m2 = import_onnx_bytes(export_onnx_bytes(*m.graph, {6, 8}), {}, "round trip");
  CHECK(max_abs_diff(run(m2, x), run(m, x)) == 0.0);

  // The named MLP (Flatten, Linear, Sigmoid...) exported and imported.
  Generator gen(5);
  std::shared_ptr<Module> mlp = build_model("mlp", gen);
  mlp->eval();
  const Tensor img = randn({4, 1, 28, 28}, 81);
  const OnnxModel mm = import_onnx_bytes(export_onnx_bytes(*mlp, {1, 28, 28}), {}, "mlp");
  Tensor ref;
  {
    NoGradGuard ng;
    ref = mlp->forward(img);
  }
  CHECK(max_abs_diff(run(mm, img), ref) == 0.0);
  CHECK(mm.input_shape == std::vector<std::int64_t>{1, 28, 28});
}

TEST_CASE("onnx: ResNet-20 and ResNet-32 (BasicBlocks with residual adds) export; import -> export -> import is exact",
          "[onnx]") {
  for (const std::string name : {"resnet20", "resnet32"}) {
    INFO(name);
    Generator gen(11);
    std::shared_ptr<Module> net = build_model(name, gen);
    // BatchNorm statistics and affine parameters away from their defaults, so the export must carry them.
    NamedTensors state = net->state_dict();
    std::uint64_t seed = 400;
    for (auto& [key, t] : state) {
      if (key.find("bn") == std::string::npos && key.find("shortcut.1") == std::string::npos && key.rfind("1.", 0) != 0)
        continue;
      if (key.size() > 12 && key.substr(key.size() - 11) == "running_var")
        t = add_scalar(abs(randn(t.shape(), seed++)), 0.5);
      else if (t.numel() > 1)
        t = randn(t.shape(), seed++, key.substr(key.size() - 6) == "weight" ? 1.0 : 0.2);
    }
    net->load_state_dict(state);
    net->eval();
    const Tensor x = randn({2, 1, 28, 28}, 410);
    Tensor ref;
    {
      NoGradGuard ng;
      ref = net->forward(x);
    }
    const OnnxModel m = import_onnx_bytes(export_onnx_bytes(*net, {1, 28, 28}), {}, name);
    const int blocks = name == "resnet20" ? 9 : 15;
    // The stem, two per block, two 1x1 shortcuts (stages 2 and 3); as many BatchNorms.
    CHECK(count_children_of_type(*m.graph, "Conv2d") == 1 + 2 * blocks + 2);
    CHECK(count_children_of_type(*m.graph, "BatchNorm2d") == 1 + 2 * blocks + 2);
    CHECK(count_children_of_type(*m.graph, "Linear") == 1);
    int adds = 0;
    for (const auto& node : m.graph->nodes()) adds += node.op == "add";
    CHECK(adds == blocks);  // one residual add per block
    const Tensor y = run(m, x);
    CHECK(max_abs(ref) > 0.1);
    CHECK(max_abs_diff(y, ref) == 0.0);  // the same layers in the same order
    const OnnxModel m2 = import_onnx_bytes(export_onnx_bytes(*m.graph, {1, 28, 28}), {}, "round trip");
    CHECK(max_abs_diff(run(m2, x), y) == 0.0);
  }
}

TEST_CASE("onnx: an exported LeNet-5 imports to the same outputs and converts to analog", "[onnx]") {
  Generator gen(7);
  std::shared_ptr<Module> lenet = build_model("lenet5", gen);
  lenet->eval();
  const Tensor img = randn({3, 1, 28, 28}, 90);
  const OnnxModel m = import_onnx_bytes(export_onnx_bytes(*lenet, {1, 28, 28}), {}, "lenet5");
  Tensor ref;
  {
    NoGradGuard ng;
    ref = lenet->forward(img);
  }
  CHECK(max_abs_diff(run(m, img), ref) == 0.0);
  // convert_to_analog maps the imported layers onto tiles as the named model's.
  Generator g1(3), g2(3);
  auto a_named = convert_to_analog(lenet, resolve_rpu_config("InferenceRPUConfig"), g1);
  auto a_onnx = convert_to_analog(m.graph, resolve_rpu_config("InferenceRPUConfig"), g2);
  CHECK(count_children_of_type(*a_onnx, "AnalogConv2d") == count_children_of_type(*a_named, "AnalogConv2d"));
  CHECK(count_children_of_type(*a_onnx, "AnalogLinear") == count_children_of_type(*a_named, "AnalogLinear"));
  CHECK(count_children_of_type(*a_onnx, "AnalogLinear") > 0);
}

TEST_CASE("onnx: bad files give clear errors", "[onnx]") {
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const ConfigError& e) {
      return std::string("ConfigError: ") + e.what();
    } catch (const IoError& e) {
      return std::string("IoError: ") + e.what();
    }
    return "no error";
  };
  using Catch::Matchers::Contains;
  Builder good({6});
  good.init("w", randn({4, 6}, 1));
  good.op("MatMul", {"x", "w"}, "y");
  good.output("y");
  const std::string bytes = good.bytes();
  // Truncated in the middle of the weights; not ONNX at all; empty.
  CHECK_THAT(message([&] { import_onnx_bytes(bytes.substr(0, bytes.size() / 2)); }), Contains("IoError"));
  CHECK_THAT(message([&] { import_onnx_bytes("\x89PNG\r\n\x1a\n not a model"); }), Contains("IoError"));
  CHECK_THAT(message([&] { import_onnx_bytes(""); }), Contains("IoError"));
  CHECK_THAT(message([&] { import_onnx("/nonexistent/model.onnx"); }), Contains("IoError"));

  {  // Unknown operator: the node, its type and the supported list.
    Builder b({6});
    b.op("FooBar", {"x"}, "y");
    b.output("y");
    const std::string msg = message([&] { b.import(); });
    CHECK_THAT(msg, Contains("ConfigError") && Contains("FooBar_0") && Contains("operator FooBar is not supported") &&
                        Contains("Conv"));
  }
  {  // Unsupported attribute value and unknown attribute.
    Builder b({2, 5, 5});
    b.init("w", randn({3, 2, 3, 3}, 2));
    attr_s(b.op("Conv", {"x", "w"}, "y"), "auto_pad", "SAME_UPPER");
    b.output("y");
    CHECK_THAT(message([&] { b.import(); }), Contains("Conv_0") && Contains("auto_pad=SAME_UPPER"));
    Builder b2({6});
    attr_i(b2.op("Relu", {"x"}, "y"), "frobnicate", 1);
    b2.output("y");
    CHECK_THAT(message([&] { b2.import(); }), Contains("attribute 'frobnicate' is not supported"));
  }
  {  // Unsupported data type.
    Builder b({6});
    auto* p = b.g->add_initializer();
    p->set_name("h");
    p->add_dims(6);
    p->set_data_type(onnx::TensorProto::FLOAT16);
    p->set_raw_data(std::string(12, '\0'));
    b.op("Add", {"x", "h"}, "y");
    b.output("y");
    CHECK_THAT(message([&] { b.import(); }), Contains("float16 is not supported"));
  }
  {  // Cycle and dangling input.
    Builder b({6});
    b.op("Add", {"x", "b"}, "a");
    b.op("Relu", {"a"}, "b");
    b.output("b");
    CHECK_THAT(message([&] { b.import(); }), Contains("cycle"));
    Builder b2({6});
    b2.op("Add", {"x", "ghost"}, "y");
    b2.output("y");
    CHECK_THAT(message([&] { b2.import(); }), Contains("input 'ghost' is not produced by any node"));
  }
  {  // Huge declared dims: the input, an initializer with no data, ConstantOfShape.
    Builder b({std::int64_t{1} << 40});
    b.op("Relu", {"x"}, "y");
    b.output("y");
    CHECK_THAT(message([&] { b.import(); }), Contains("outside [1, 16777216]"));
    Builder b2({6});
    auto* p = b2.g->add_initializer();
    p->set_name("big");
    p->add_dims(1 << 20);
    p->add_dims(1 << 20);
    p->set_data_type(onnx::TensorProto::FLOAT);
    b2.op("Add", {"x", "big"}, "y");
    b2.output("y");
    CHECK_THAT(message([&] { b2.import(); }), Contains("initializer 'big'") && Contains("elements"));
    Builder b3({6});
    b3.ints("shape", {1 << 20, 1 << 20});
    b3.op("ConstantOfShape", {"shape"}, "c");
    b3.op("Add", {"x", "c"}, "y");
    b3.output("y");
    CHECK_THAT(message([&] { b3.import(); }), Contains("ConstantOfShape") && Contains("elements"));
  }
  {  // Opset out of range; a free non-batch dim without --input-shape.
    Builder b({6}, 11);
    b.op("Relu", {"x"}, "y");
    b.output("y");
    CHECK_THAT(message([&] { b.import(); }), Contains("opset 11") && Contains("13 to 21"));
    Builder b2({6});
    b2.g->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_param("L");
    b2.op("Relu", {"x"}, "y");
    b2.output("y");
    CHECK_THAT(message([&] { b2.import(); }), Contains("--input-shape"));
    CHECK(b2.import({7}).input_shape == std::vector<std::int64_t>{7});
  }
}

namespace {

// The models listed in dir/models.txt ("NAME in_dims... ; out_dims..."), each
// imported and run on NAME.input against NAME.expected (raw float32); returns
// how many.
int check_models_in(const std::string& dir) {
  std::ifstream list(dir + "/models.txt");
  REQUIRE(list);
  auto read_raw = [](const std::string& path, const Shape& shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4)));
    return Tensor::from_vector(v, shape);
  };
  int models = 0;
  std::string line;
  while (std::getline(list, line)) {
    std::istringstream ss(line);
    std::string name, tok;
    ss >> name;
    Shape in_shape, out_shape;
    bool out = false;
    while (ss >> tok) {
      if (tok == ";") out = true;
      else (out ? out_shape : in_shape).push_back(std::stoll(tok));
    }
    INFO(name);
    const std::string base = dir + "/" + name;
    const OnnxModel m = import_onnx(base + ".onnx");
    const Tensor x = read_raw(base + ".input", in_shape), expected = read_raw(base + ".expected", out_shape);
    // Float32 on both sides, differently ordered sums: 1e-5 of the output's scale.
    CHECK(max_abs_diff(run(m, x), expected) <= 1e-5 * max_abs(expected));
    // Other batch sizes than the files' (the import folds shapes for batches 1 and 2).
    CHECK(max_abs_diff(run(m, slice(x, 0, 0, 1)), slice(expected, 0, 0, 1)) <= 1e-5 * max_abs(expected));
    // The layers convert to analog tiles (transposed convolutions stay digital).
    Generator gen(1);
    auto analog = convert_to_analog(m.graph, resolve_rpu_config("InferenceRPUConfig"), gen);
    if (name != "deconv")
      CHECK(count_children_of_type(*analog, "AnalogLinear") + count_children_of_type(*analog, "AnalogConv2d") > 0);
    ++models;
  }
  return models;
}

}  // namespace

// PyTorch's own exports (tests/onnx_data/make_torch_models.py, files in the
// repository): a CNN with the flatten chain and BatchNorm, and
// nn.TransformerEncoderLayer (Mod/Slice shape arithmetic, the batch moved to
// dim 1), against PyTorch's outputs.
TEST_CASE("onnx: PyTorch's exports of a CNN and a transformer encoder layer equal PyTorch's outputs", "[onnx]") {
  CHECK(check_models_in(std::string(AIMC_SOURCE_DIR) + "/tests/onnx_data") == 2);
}

// Run by onnxruntime_test.sh only (hidden tag): the models of
// onnxruntime_models.py, built with the onnx package, against onnxruntime's
// outputs on the same inputs.
TEST_CASE("onnx: models built by the onnx package agree with onnxruntime", "[.onnxruntime]") {
  const char* dir = std::getenv("AIMC_ONNXRUNTIME_DIR");
  REQUIRE(dir != nullptr);
  CHECK(check_models_in(dir) == 6);
}
