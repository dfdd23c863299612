// Graph module: a graph that reproduces a named model (lenet5, a ResNet
// BasicBlock with its residual add) with the same weights gives the same
// outputs and gradients bit for bit; analog conversion, programming, drift
// and realistic reads act on it as on the Sequential; gradients of a small
// graph with two inputs and two outputs match finite differences; the
// architecture and checkpoints round-trip; bad graphs throw ConfigError
// naming the node.
#include <catch2/catch.hpp>


#include <filesystem>
#include <functional>
#include <map>
#include <tuple>
#include <string>

#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "engine/grad_check.h"
#include "engine/ops.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/graph.h"
#include "layers/modules/linear.h"
#include "layers/modules/module_factory.h"
#include "layers/modules/sequential.h"
#include "module_test_util.h"

using namespace aimc;
namespace fs = std::filesystem;

namespace {

using aimc::testing::config_error;

// A fresh directory per test case, removed afterwards.
struct TempDir : aimc::testing::TempDir {
  TempDir() : aimc::testing::TempDir("aimc_test_graph") {}
};

GraphNode module_node(const std::string& name, std::shared_ptr<Module> m, const std::string& in,
                      const std::string& out) {
  GraphNode n;
  n.name = name;
  n.module = std::move(m);
  n.inputs = {in};
  n.outputs = {out};
  return n;
}

GraphNode op_node(const std::string& name, const std::string& op, std::vector<std::string> in,
                  const std::string& out, nlohmann::json attributes = nlohmann::json::object()) {
  GraphNode n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = {out};
  n.attributes = std::move(attributes);
  return n;
}

// A fresh copy of a module (its architecture rebuilt, other initial values).
std::shared_ptr<Module> fresh(const Module& m) {
  Generator gen(1234);
  return module_from_config(module_architecture(m), gen);
}

// lenet5 as a chain graph: node k is a fresh copy of the Sequential's layer k
// (so the state dict keys, "3.weight", are the Sequential's).
std::shared_ptr<Graph> chain_graph(const Sequential& seq) {
  std::vector<GraphNode> nodes;
  std::string value = "x";
  for (std::size_t k = 0; k < seq.size(); ++k) {
    std::string out = "v";  // appended: "v" + std::to_string trips a false -Wrestrict in GCC 12
    out += std::to_string(k);
    nodes.push_back(module_node(std::to_string(k), fresh(*seq[k]), value, out));
    value = out;
  }
  return std::make_shared<Graph>(std::vector<std::string>{"x"}, nodes, std::vector<std::string>{value});
}

// The BasicBlock written out as a graph; children are fresh copies of the
// block's. Without a shortcut module the residual is the input itself.
std::shared_ptr<Graph> block_graph(const BasicBlock& block) {
  std::map<std::string, std::shared_ptr<Module>> child;
  for (const auto& [name, m] : block.named_children()) child[name] = fresh(*m);
  const bool shortcut = child.count("shortcut") != 0;
  // Given out of order on purpose: the graph sorts it.
  std::vector<GraphNode> nodes = {
      op_node("sum", "add", {"b2", shortcut ? "skip" : "x"}, "s"),
      module_node("conv1", child["conv1"], "x", "c1"),
      module_node("bn1", child["bn1"], "c1", "b1"),
      op_node("relu1", "relu", {"b1"}, "r1"),
      module_node("conv2", child["conv2"], "r1", "c2"),
      module_node("bn2", child["bn2"], "c2", "b2"),
      op_node("relu2", "relu", {"s"}, "y"),
  };
  if (shortcut) nodes.push_back(module_node("shortcut", child["shortcut"], "x", "skip"));
  return std::make_shared<Graph>(std::vector<std::string>{"x"}, nodes, std::vector<std::string>{"y"});
}

std::map<std::string, std::vector<float>> grads(const Module& m) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, p] : m.named_parameters()) out[name] = p.grad().to_vector();
  return out;
}

// Same loss, backward through both; outputs, parameter gradients and the input
// gradient compared bit for bit.
void check_same_training_step(Module& a, Module& b, const Tensor& x_value) {
  Tensor xa = x_value.clone(), xb = x_value.clone();
  xa.set_requires_grad(true);
  xb.set_requires_grad(true);
  const Tensor ya = a.forward(xa), yb = b.forward(xb);
  CHECK(ya.to_vector() == yb.to_vector());
  Generator rg(77);
  const Tensor r = rg.normal(ya.shape());
  sum(mul(ya, r)).backward();
  sum(mul(yb, r)).backward();
  CHECK(grads(a) == grads(b));
  CHECK(xa.grad().to_vector() == xb.grad().to_vector());
  CHECK(a.state_dict().size() == b.state_dict().size());
  for (const auto& [name, g] : grads(a)) {
    double norm = 0;
    for (float v : g) norm += double(v) * v;
    INFO(name);
    CHECK(norm > 0);  // the comparison is not of zeros
  }
}

}  // namespace

TEST_CASE("lenet5 as a graph: same outputs and gradients bit for bit as the Sequential") {
  Generator gen(1);
  auto seq = build_model("lenet5", gen);
  auto graph = chain_graph(*seq);
  graph->load_state_dict(seq->state_dict());
  CHECK(graph->state_dict().size() == seq->state_dict().size());
  CHECK(graph->num_parameters() == seq->num_parameters());
  Generator xg(2, 1);
  check_same_training_step(*seq, *graph, xg.uniform({3, 1, 28, 28}));
}

TEST_CASE("a BasicBlock as a graph with its residual add: same outputs, gradients and BN statistics") {
  for (const auto& [in, out, stride] : {std::tuple{4, 8, 2}, std::tuple{4, 4, 1}}) {
    INFO(in << "->" << out << " stride " << stride);
    Generator gen(3);
    BasicBlock block(in, out, stride, gen);
    auto g = block_graph(block);
    // Run order: the given order made topological (conv1 first, the add after
    // bn2 and the shortcut, node 7 when there is one).
    if (stride == 2) CHECK(g->run_order() == std::vector<std::size_t>{1, 2, 3, 4, 5, 7, 0, 6});
    else CHECK(g->run_order() == std::vector<std::size_t>{1, 2, 3, 4, 5, 0, 6});
    g->load_state_dict(block.state_dict());
    Generator xg(4, 1);
    check_same_training_step(block, *g, xg.normal({2, in, 6, 6}));
    // Training updated the running statistics identically.
    for (const auto& [name, t] : block.named_buffers()) {
      INFO(name);
      bool found = false;
      for (const auto& [gname, gt] : g->named_buffers())
        if (gname == name) {
          found = true;
          CHECK(gt.to_double_vector() == t.to_double_vector());
        }
      CHECK(found);
    }
    block.eval();
    g->eval();
    const Tensor x = xg.normal({2, in, 6, 6});
    CHECK(block.forward(x).to_vector() == g->forward(x).to_vector());
  }
}

TEST_CASE("convert_to_analog, drift, reseed and realistic reads act on a graph as on the Sequential") {
  InferenceRPUConfig rpu;  // noisy forward, PCM programming and drift
  rpu.mapping.max_input_size = 128;
  rpu.mapping.max_output_size = 128;
  for (const bool realistic : {false, true}) {
    INFO("realistic_read_write " << realistic);
    Generator gen(5);
    std::shared_ptr<Module> seq = build_model("lenet5", gen);
    std::shared_ptr<Module> graph = chain_graph(dynamic_cast<Sequential&>(*seq));
    graph->load_state_dict(seq->state_dict());
    ConversionOptions options;
    options.realistic_read_write = realistic;
    Generator ga(9, kAnalogConversionStream), gb(9, kAnalogConversionStream);
    seq = convert_to_analog(seq, rpu, ga, options);
    graph = convert_to_analog(graph, rpu, gb, options);
    CHECK(graph->analog_tiles().size() == seq->analog_tiles().size());
    CHECK(graph->analog_tiles().size() > 5);
    const std::string arch = module_architecture(*graph).dump();
    CHECK(arch.find("\"AnalogConv2d\"") != std::string::npos);
    CHECK(arch.find("\"AnalogLinear\"") != std::string::npos);
    Generator xg(6, 1);
    const Tensor x = xg.uniform({2, 1, 28, 28});
    // Training mode: forward noise.
    CHECK(seq->forward(x).to_vector() == graph->forward(x).to_vector());
    seq->eval();
    graph->eval();
    CHECK(seq->forward(x).to_vector() == graph->forward(x).to_vector());
    seq->drift_analog_weights(86400.0);
    graph->drift_analog_weights(86400.0);
    const std::vector<float> drifted = graph->forward(x).to_vector();
    CHECK(seq->forward(x).to_vector() == drifted);
    // The state dicts agree entry by entry, programming state included.
    const NamedTensors sa = seq->state_dict(), sb = graph->state_dict();
    REQUIRE(sa.size() == sb.size());
    for (std::size_t i = 0; i < sa.size(); ++i) {
      CHECK(sa[i].first == sb[i].first);
      CHECK(sa[i].second.to_double_vector() == sb[i].second.to_double_vector());
    }
    seq->reseed_analog(17);
    graph->reseed_analog(17);
    seq->drift_analog_weights(3600.0);
    graph->drift_analog_weights(3600.0);
    const std::vector<float> reseeded = graph->forward(x).to_vector();
    CHECK(seq->forward(x).to_vector() == reseeded);  // as many forwards each: the streams stay in step
    CHECK(reseeded != drifted);
    // Back to digital.
    Generator gc(1), gd(1);
    auto dseq = convert_to_digital(seq, gc), dgraph = convert_to_digital(graph, gd);
    CHECK(module_architecture(*dgraph).dump().find("Analog") == std::string::npos);
    CHECK(dseq->forward(x).to_vector() == dgraph->forward(x).to_vector());
  }
}

TEST_CASE("gradients of a graph with two inputs, two outputs and a constant match finite differences") {
  // a [2, 3], b [3, 4]; m = a b; out1 = concat(tanh(m), softmax(m, axis 0) * w, axis 1);
  // out2 = mean over axis 1 of transpose(a) reshaped, minus exp(-a) summed.
  Generator cg(8);
  const Tensor w = cg.normal({2, 4}, 0, 1, DType::Float64);
  std::vector<GraphNode> nodes = {
      op_node("mm", "matmul", {"a", "b"}, "m"),
      op_node("t", "tanh", {"m"}, "tm"),
      op_node("s", "softmax", {"m"}, "sm", {{"axis", 0}}),
      op_node("sw", "mul", {"sm", "w"}, "smw"),
      op_node("cat", "concat", {"tm", "smw"}, "out1", {{"axis", 1}}),
      op_node("tr", "transpose", {"a"}, "at", {{"perm", {1, 0}}}),
      op_node("rs", "reshape", {"at"}, "ar", {{"shape", {3, -1}}}),
      op_node("mean", "mean", {"ar"}, "am", {{"axes", {1}}}),
      op_node("ng", "neg", {"a"}, "na"),
      op_node("ex", "exp", {"na"}, "ea"),
      op_node("se", "sum", {"ea"}, "s_ea"),
      op_node("out", "sub", {"am", "s_ea"}, "out2"),
  };
  Graph g({"a", "b"}, nodes, {"out1", "out2"}, {{"w", w}});
  Generator xg(9);
  Tensor a = xg.normal({2, 3}, 0, 1, DType::Float64), b = xg.normal({3, 4}, 0, 1, DType::Float64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const auto outs = g.forward({a, b});
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].shape() == Shape{2, 8});
  CHECK(outs[1].shape() == Shape{3});
  // The graph's outputs, by hand for one element: out2[0] = mean(a[:,0]) - sum(exp(-a)).
  const auto av = a.to_double_vector();
  double se = 0;
  for (double v : av) se += std::exp(-v);
  CHECK(outs[1].to_double_vector()[0] == Approx((av[0] + av[3]) / 2 - se).epsilon(1e-12));
  const auto f = [&](const std::vector<Tensor>& in) {
    const auto o = g.forward(in);
    return concat({reshape(o[0], {-1}), o[1]}, 0);
  };
  const GradCheckResult r = grad_check(f, {a, b});
  INFO(r.message);
  CHECK(r.ok);
  CHECK(r.max_abs_error < 1e-6);
}

TEST_CASE("an attention graph over [N, T, d] sequences (batched matmul) matches finite differences") {
  // y = softmax(q kᵀ / 2, axis -1) v with q, k, v = linear(x, W_q / W_k / W_v):
  // x [2, 3, 4], weights [4, 4], no reshapes by hand.
  std::vector<GraphNode> nodes = {
      op_node("q", "linear", {"x", "wq"}, "q"),
      op_node("k", "linear", {"x", "wk"}, "k"),
      op_node("v", "linear", {"x", "wv"}, "v"),
      op_node("kt", "transpose", {"k"}, "kt", {{"perm", {0, 2, 1}}}),
      op_node("scores", "matmul", {"q", "kt"}, "s"),
      op_node("scale", "mul", {"s", "half"}, "s2"),
      op_node("attn", "softmax", {"s2"}, "a", {{"axis", -1}}),
      op_node("mix", "matmul", {"a", "v"}, "y"),
  };
  Graph g({"x", "wq", "wk", "wv"}, nodes, {"y"}, {{"half", Tensor::scalar(0.5, DType::Float64)}});
  Generator xg(15);
  std::vector<Tensor> in = {xg.normal({2, 3, 4}, 0, 1, DType::Float64), xg.normal({4, 4}, 0, 1, DType::Float64),
                            xg.normal({4, 4}, 0, 1, DType::Float64), xg.normal({4, 4}, 0, 1, DType::Float64)};
  for (auto& t : in) t.set_requires_grad(true);
  CHECK(g.forward(in)[0].shape() == Shape{2, 3, 4});
  const GradCheckResult r = grad_check([&](const std::vector<Tensor>& v) { return g.forward(v)[0]; }, in);
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("a graph's architecture and checkpoint round-trip") {
  Generator gen(10);
  BasicBlock block(3, 6, 2, gen);
  auto g = block_graph(block);
  g->load_state_dict(block.state_dict());
  // Add a constant scale at the end: y2 = y * c.
  auto nodes = g->nodes();
  nodes.push_back(op_node("scale", "mul", {"y", "c"}, "y2"));
  nodes.push_back(op_node("pool", "global_avg_pool", {"y2"}, "p"));
  Generator cg(11);
  auto graph = std::make_shared<Graph>(std::vector<std::string>{"x"}, nodes, std::vector<std::string>{"p", "y"},
                                       NamedTensors{{"c", cg.uniform({6, 1, 1}, 0.5, 1.5)}});
  graph->load_state_dict(g->state_dict(), false);
  const nlohmann::json arch = module_architecture(*graph);
  CHECK(arch["config"]["constants"] == nlohmann::json::array({{{"name", "c"}, {"shape", {6, 1, 1}}, {"dtype", "float32"}}}));
  Generator g2(12);
  auto rebuilt = module_from_config(arch, g2);
  CHECK(module_architecture(*rebuilt) == arch);

  InferenceRPUConfig rpu;
  Generator ag(13, kAnalogConversionStream);
  std::shared_ptr<Module> analog = convert_to_analog(graph, rpu, ag);
  analog->eval();
  analog->drift_analog_weights(60.0);
  TempDir dir;
  const std::string path = dir.file("graph.safetensors");
  save_checkpoint(path, *analog, nlohmann::json::object());
  Checkpoint ck = load_checkpoint(path);
  REQUIRE(ck.model->type_name() == "Graph");
  CHECK(module_architecture(*ck.model) == module_architecture(*analog));
  ck.model->eval();
  Generator xg(14, 1);
  const Tensor x = xg.normal({2, 3, 8, 8});
  auto& loaded = dynamic_cast<Graph&>(*ck.model);
  auto& original = dynamic_cast<Graph&>(*analog);
  const auto ya = original.forward(std::vector<Tensor>{x}), yb = loaded.forward(std::vector<Tensor>{x});
  REQUIRE(ya.size() == 2);
  CHECK(ya[0].shape() == Shape{2, 6});
  CHECK(ya[0].to_vector() == yb[0].to_vector());
  CHECK(ya[1].to_vector() == yb[1].to_vector());
}

TEST_CASE("a graph's own parameters: trained, listed in the architecture, checked") {
  // y = x * s + b with s, b parameters of the graph and c a constant: y = (x + c) * s + b.
  const Tensor s = Tensor::from_vector(std::vector<float>{2, -1, 0.5f}, {3});
  const Tensor b = Tensor::from_vector(std::vector<float>{0.25f, 0, 1}, {3});
  Graph g({"x"}, {op_node("shift", "add", {"x", "c"}, "xc"), op_node("scale", "mul", {"xc", "s"}, "xs"),
                  op_node("bias", "add", {"xs", "b"}, "y")},
          {"y"}, {{"c", Tensor::full({3}, 1.0)}}, {{"s", s.clone()}, {"b", b.clone()}});
  const auto params = g.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "s");
  CHECK(params[1].first == "b");
  CHECK(params[0].second.requires_grad());
  REQUIRE(g.named_buffers().size() == 1);
  CHECK(g.named_buffers()[0].first == "c");
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  CHECK(g.forward(x).to_double_vector() == std::vector<double>{(1 + 1) * 2 + 0.25, (2 + 1) * -1.0, (3 + 1) * 0.5 + 1});
  // dL/ds = x + c, dL/db = 1 for L = sum(y).
  sum(g.forward(x)).backward();
  CHECK(params[0].second.grad().to_double_vector() == std::vector<double>{2, 3, 4});
  CHECK(params[1].second.grad().to_double_vector() == std::vector<double>{1, 1, 1});
  // The architecture lists them apart from the constants; a rebuilt graph has them as parameters again.
  const nlohmann::json cfg = g.config();
  REQUIRE(cfg.contains("parameters"));
  CHECK(cfg.at("parameters").size() == 2);
  CHECK(cfg.at("constants").size() == 1);
  const std::shared_ptr<Module> rebuilt = fresh(g);
  CHECK(rebuilt->named_parameters().size() == 2);
  CHECK(rebuilt->named_buffers().size() == 1);
  rebuilt->load_state_dict(g.state_dict());
  CHECK(rebuilt->forward(x).to_double_vector() == g.forward(x).to_double_vector());
  // A graph without them writes no "parameters" (architectures read as before).
  Graph plain({"x"}, {op_node("r", "relu", {"x"}, "y")}, {"y"});
  CHECK(!plain.config().contains("parameters"));
  // Bad ones: a name taken by a constant, a non-float tensor.
  CHECK_THAT(config_error([&] {
               Graph bad({"x"}, {op_node("r", "add", {"x", "c"}, "y")}, {"y"}, {{"c", Tensor::zeros({1})}},
                         {{"c", Tensor::zeros({1})}});
             }),
             Catch::Contains("Graph parameter 'c'") && Catch::Contains("twice"));
  CHECK_THAT(config_error([&] {
               Graph bad({"x"}, {op_node("r", "add", {"x", "p"}, "y")}, {"y"}, {},
                         {{"p", Tensor::zeros({1}, DType::Int64)}});
             }),
             Catch::Contains("Graph parameter 'p'") && Catch::Contains("float32 or float64"));
}

TEST_CASE("bad graphs throw ConfigError naming the node") {
  Generator gen(20);
  auto lin = [&] { return std::make_shared<Linear>(3, 3, gen); };
  auto make = [](std::vector<std::string> in, std::vector<GraphNode> nodes, std::vector<std::string> out,
                 NamedTensors constants = {}) {
    return config_error([&] { Graph g(in, nodes, out, constants); });
  };
  CHECK(make({"x"}, {op_node("r", "relu", {"x"}, "y")}, {"y"}) == "(no ConfigError)");
  // A cycle: a -> b -> a.
  CHECK_THAT(make({"x"}, {op_node("a", "add", {"x", "vb"}, "va"), op_node("b", "relu", {"va"}, "vb")}, {"va"}),
             Catch::Contains("node 'a'") && Catch::Contains("cycle"));
  // A dangling input.
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"z"}, "y")}, {"y"}),
             Catch::Contains("node 'r'") && Catch::Contains("'z'"));
  // Duplicate value names: an output twice, an output named as an input, a constant.
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"x"}, "y"), op_node("s", "tanh", {"x"}, "y")}, {"y"}),
             Catch::Contains("node 's'") && Catch::Contains("'y'") && Catch::Contains("twice"));
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"x"}, "x")}, {"x"}), Catch::Contains("node 'r'"));
  CHECK_THAT(make({"x", "x"}, {}, {"x"}), Catch::Contains("'x'") && Catch::Contains("twice"));
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"x"}, "c")}, {"c"}, {{"c", Tensor::zeros({1})}}),
             Catch::Contains("node 'r'") && Catch::Contains("'c'"));
  // Node names: unique, and module nodes' names are module names.
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"x"}, "y"), op_node("r", "tanh", {"y"}, "z")}, {"z"}),
             Catch::Contains("node 'r'") && Catch::Contains("twice"));
  CHECK_THAT(make({"x"}, {module_node("fc.1", lin(), "x", "y")}, {"y"}), Catch::Contains("node 'fc.1'"));
  // Ops: unknown, wrong arity, bad attributes.
  CHECK_THAT(make({"x"}, {op_node("r", "relu6", {"x"}, "y")}, {"y"}),
             Catch::Contains("node 'r'") && Catch::Contains("relu6") && Catch::Contains("softmax"));
  CHECK_THAT(make({"x"}, {op_node("r", "add", {"x"}, "y")}, {"y"}),
             Catch::Contains("node 'r'") && Catch::Contains("takes 2"));
  CHECK_THAT(make({"x"}, {op_node("s", "softmax", {"x"}, "y", {{"axis", "last"}})}, {"y"}),
             Catch::Contains("node 's'.attributes.axis"));
  CHECK_THAT(make({"x"}, {op_node("s", "softmax", {"x"}, "y", {{"dim", 1}})}, {"y"}),
             Catch::Contains("node 's'.attributes") && Catch::Contains("unknown field \"dim\""));
  CHECK_THAT(make({"x"}, {op_node("t", "transpose", {"x"}, "y", {{"perm", {0, 0}}})}, {"y"}),
             Catch::Contains("node 't'.attributes.perm"));
  CHECK_THAT(make({"x"}, {op_node("t", "reshape", {"x"}, "y")}, {"y"}),
             Catch::Contains("node 't'.attributes.shape") && Catch::Contains("missing"));
  // A module node takes one input; a node has one output.
  CHECK_THAT(make({"x", "z"}, {module_node("fc", lin(), "x", "y")}, {"y"}), Catch::Contains("no ConfigError"));
  GraphNode two = module_node("fc", lin(), "x", "y");
  two.inputs.push_back("x");
  CHECK_THAT(make({"x"}, {two}, {"y"}), Catch::Contains("node 'fc'") && Catch::Contains("1 input"));
  GraphNode outs = op_node("r", "relu", {"x"}, "y");
  outs.outputs.push_back("y2");
  CHECK_THAT(make({"x"}, {outs}, {"y"}), Catch::Contains("node 'r'") && Catch::Contains("1 output"));
  // Outputs must be values.
  CHECK_THAT(make({"x"}, {op_node("r", "relu", {"x"}, "y")}, {"q"}), Catch::Contains("output 'q'"));
  // The factory names the JSON path.
  const nlohmann::json arch = module_architecture(Graph({"x"}, {op_node("r", "relu", {"x"}, "y")}, {"y"}));
  auto from = [&](const nlohmann::json& j) { return config_error([&] { module_from_config(j, gen); }); };
  CHECK(from(arch) == "(no ConfigError)");
  nlohmann::json bad = arch;
  bad["config"]["nodes"][0]["module"] = {{"type", "ReLU"}, {"config", nlohmann::json::object()}};
  CHECK_THAT(from(bad), Catch::Contains("architecture.config.nodes[0]") && Catch::Contains("exactly one"));
  bad = arch;
  bad["config"]["nodes"][0]["inputs"] = "x";
  CHECK_THAT(from(bad), Catch::Contains("architecture.config.nodes[0].inputs"));
  bad = arch;
  bad["config"]["nodes"][0]["inputs"] = {"w"};
  CHECK_THAT(from(bad), Catch::Contains("architecture.config") && Catch::Contains("node 'r'") &&
                            Catch::Contains("'w'"));
  bad = arch;
  bad["config"].erase("nodes");
  CHECK_THAT(from(bad), Catch::Contains("architecture.config.nodes") && Catch::Contains("missing"));
  bad = arch;
  bad["config"]["constants"] = {{{"name", "c"}, {"shape", {2, -1}}}};
  CHECK_THAT(from(bad), Catch::Contains("architecture.config.constants[0].shape"));
  // The constants count against the element budget.
  bad["config"]["constants"] = {{{"name", "c"}, {"shape", {1000, 1000}}}};
  CHECK_THROWS_WITH(module_from_config(bad, gen, 1000), Catch::Contains("constants[0].shape"));
  bad["config"]["constants"] = {{{"name", "c"}, {"shape", {0, std::int64_t(1) << 40, std::int64_t(1) << 40}}}};
  CHECK_THROWS_WITH(module_from_config(bad, gen, 1 << 20), Catch::Contains("constants[0].shape"));
}

TEST_CASE("forward checks the number of inputs") {
  Graph g({"a", "b"}, {op_node("s", "add", {"a", "b"}, "y")}, {"y"});
  CHECK_THROWS_AS(g.forward(std::vector<Tensor>{Tensor::ones({2})}), ValueError);
  CHECK_THROWS_AS(g.forward(Tensor::ones({2})), ValueError);  // two inputs: forward({...})
  CHECK(g.forward({Tensor::ones({2}), Tensor::ones({2})})[0].to_vector() == std::vector<float>{2, 2});
}
