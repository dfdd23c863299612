// Parity harness for the engine's ops, in the spirit of ggml's
// test-backend-ops: every primitive op of engine/dispatch.h runs forward and
// backward on the CPU and on CUDA from the same inputs, and the results are
// compared with the op's tolerance. It is part of the CUDA suites: test_cuda
// on a GPU (exit 77 without one) and test_cuda_emulated everywhere (the real
// kernels/cuda/*.cu compiled as C++, tests/cuda_emulation).
//
// kCases is the one list of what runs where: an op marked cpu_only must
// raise one DeviceError naming the op and the device, and the list must
// agree with the dispatch table (so neither can drift from the other).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "kernels/cpu/random_fill.h"
#include "kernels/cuda/backend.h"

using namespace aimc;

namespace {

// How closely CUDA must follow the CPU.
enum class Tol {
  exact,  // the same law code with IEEE +, -, ×, /, sqrt: the same bits on any device
  libm,   // exp, log, tanh, erf, pow: the same bits under the emulation (host libm);
          // CUDA's math functions are within 2 ulp, so a few ulp on a GPU
  sum,    // sums in double in another order: equal after rounding to float up to 1 ulp
  gemm    // cuBLAS vs cpu::gemm (other summation order): ~1e-5 relative
};

enum class Domain { any, positive };  // positive: |z| + 0.5 (log, sqrt, divisors)

using OpFn = std::function<Tensor(const std::vector<Tensor>&, Device)>;

struct OpCase {
  const char* op;       // the engine_ops() name
  const char* variant;  // what this case covers
  bool cpu_only;
  Tol tol;
  std::vector<Shape> shapes;
  OpFn f;
  Domain domain = Domain::any;
};

Tensor labels_on(Device d) { return Tensor::from_vector(std::vector<std::int32_t>{2, 0, 4, 1, 3, 4}, {6}).to(d); }

std::vector<std::int64_t> v(std::initializer_list<std::int64_t> l) { return l; }

const std::vector<OpCase>& cases() {
  using T = const std::vector<Tensor>&;
  static const std::vector<OpCase> list = {
      // elementwise and broadcasting
      {"add", "same shape", false, Tol::exact, {{5, 7}, {5, 7}}, [](T x, Device) { return add(x[0], x[1]); }},
      {"add", "bias [N, C] + [C]", false, Tol::exact, {{6, 4}, {4}}, [](T x, Device) { return add(x[0], x[1]); }},
      {"add", "[3, 1] + [1, 4]", false, Tol::exact, {{3, 1}, {1, 4}}, [](T x, Device) { return add(x[0], x[1]); }},
      {"add", "transposed view + scalar", false, Tol::exact, {{4, 3}, {}},
       [](T x, Device) { return add(transpose(x[0], 0, 1), x[1]); }},
      {"sub", "[2, 3, 4] - [3, 1]", false, Tol::exact, {{2, 3, 4}, {3, 1}}, [](T x, Device) { return sub(x[0], x[1]); }},
      {"mul", "[2, 3, 4] * [4]", false, Tol::exact, {{2, 3, 4}, {4}}, [](T x, Device) { return mul(x[0], x[1]); }},
      {"div", "[5, 3] / [5, 1]", false, Tol::exact, {{5, 3}, {5, 1}}, [](T x, Device) { return div(x[0], x[1]); },
       Domain::positive},
      {"add_scalar", "", false, Tol::exact, {{17}}, [](T x, Device) { return add_scalar(x[0], 0.25); }},
      {"mul_scalar", "", false, Tol::exact, {{17}}, [](T x, Device) { return mul_scalar(x[0], -1.5); }},
      {"neg", "", false, Tol::exact, {{3, 5}}, [](T x, Device) { return neg(x[0]); }},
      {"exp", "", false, Tol::libm, {{3, 5}}, [](T x, Device) { return exp(x[0]); }},
      {"log", "", false, Tol::libm, {{3, 5}}, [](T x, Device) { return log(x[0]); }, Domain::positive},
      {"sqrt", "", false, Tol::exact, {{3, 5}}, [](T x, Device) { return sqrt(x[0]); }, Domain::positive},
      {"square", "", false, Tol::exact, {{3, 5}}, [](T x, Device) { return square(x[0]); }},
      {"abs", "", false, Tol::exact, {{3, 5}}, [](T x, Device) { return abs(x[0]); }},
      {"pow_scalar", "p = 2", false, Tol::exact, {{9}}, [](T x, Device) { return pow_scalar(x[0], 2.0); }},
      {"pow_scalar", "p = 2.5", false, Tol::libm, {{9}}, [](T x, Device) { return pow_scalar(x[0], 2.5); },
       Domain::positive},
      {"expand_to", "[3, 1] -> [2, 3, 4]", false, Tol::exact, {{3, 1}},
       [](T x, Device) { return detail::expand_to(x[0], {2, 3, 4}); }},
      // activations
      {"relu", "", false, Tol::exact, {{4, 6}}, [](T x, Device) { return relu(x[0]); }},
      {"leaky_relu", "", false, Tol::exact, {{4, 6}}, [](T x, Device) { return leaky_relu(x[0], 0.1); }},
      {"sigmoid", "", false, Tol::libm, {{4, 6}}, [](T x, Device) { return sigmoid(x[0]); }},
      {"tanh", "", false, Tol::libm, {{4, 6}}, [](T x, Device) { return tanh(x[0]); }},
      {"gelu", "", false, Tol::libm, {{4, 6}}, [](T x, Device) { return gelu(x[0]); }},
      {"erf", "", false, Tol::libm, {{4, 6}}, [](T x, Device) { return erf(x[0]); }},
      // reductions, softmax, losses
      {"sum", "all", false, Tol::sum, {{7, 9}}, [](T x, Device) { return sum(x[0]); }},
      {"sum", "dims 0 and 2, keepdim", false, Tol::sum, {{3, 4, 5}},
       [](T x, Device) { return sum(x[0], {0, 2}, true); }},
      {"sum", "mean over dim 1 of a transposed view", false, Tol::sum, {{5, 6}},
       [](T x, Device) { return mean(transpose(x[0], 0, 1), {1}); }},
      {"softmax", "last dim", false, Tol::libm, {{4, 7}}, [](T x, Device) { return softmax(x[0], -1); }},
      {"softmax", "middle dim", false, Tol::libm, {{2, 5, 3}}, [](T x, Device) { return softmax(x[0], 1); }},
      {"log_softmax", "last dim", false, Tol::libm, {{4, 7}}, [](T x, Device) { return log_softmax(x[0], -1); }},
      {"cross_entropy", "N = 6, C = 5", false, Tol::libm, {{6, 5}},
       [](T x, Device d) { return cross_entropy(x[0], labels_on(d)); }},
      {"mse_loss", "", false, Tol::exact, {{4, 3}, {4, 3}}, [](T x, Device) { return mse_loss(x[0], x[1]); }},
      // copies
      {"contiguous", "permute", false, Tol::exact, {{2, 3, 4}}, [](T x, Device) { return permute(x[0], {2, 0, 1}); }},
      {"fill_", "", false, Tol::exact, {{5}},
       [](T x, Device) { return x[0].detach().clone().fill_(0.375); }},
      {"add_", "alpha = 0.5 (exact product: fused or not, the same)", false, Tol::exact, {{6}, {6}},
       [](T x, Device) { return x[0].detach().clone().add_(x[1], 0.5); }},
      {"mul_", "", false, Tol::exact, {{6}}, [](T x, Device) { return x[0].detach().clone().mul_(-1.5); }},
      {"to(dtype)", "float64", true, Tol::exact, {{3}}, [](T x, Device) { return x[0].to(DType::Float64); }},
      {"to(dtype)", "float32 -> int32 (integers stay on the CPU too)", true, Tol::exact, {{3}},
       [](T x, Device) { return x[0].to(DType::Int32); }},
      {"concat", "dim 1", false, Tol::exact, {{2, 3}, {2, 2}}, [](T x, Device) { return concat({x[0], x[1]}, 1); }},
      {"concat", "dim 0, three inputs", false, Tol::exact, {{1, 3}, {3, 3}, {2, 3}},
       [](T x, Device) { return concat({x[0], x[1], x[2]}, 0); }},
      {"concat", "last dim of odd 3-D shapes", false, Tol::exact, {{2, 3, 5}, {2, 3, 1}, {2, 3, 2}},
       [](T x, Device) { return concat({x[0], x[1], x[2]}, -1); }},
      {"concat", "dim 1 of [2, 3, 4] views", false, Tol::exact, {{2, 3, 4}, {2, 2, 6}},
       [](T x, Device) { return concat({x[0], slice(x[1], 2, 1, 5)}, 1); }},
      // slice is a view; its gradient on CUDA is zeros concatenated around g
      {"concat", "slice backward, dim 1 middle", false, Tol::exact, {{3, 7}},
       [](T x, Device) { return mul_scalar(slice(x[0], 1, 2, 5), 2.0); }},
      // linear algebra
      {"matmul", "[5, 7] x [7, 3]", false, Tol::gemm, {{5, 7}, {7, 3}}, [](T x, Device) { return matmul(x[0], x[1]); }},
      {"matmul", "transposed right operand", false, Tol::gemm, {{5, 7}, {3, 7}},
       [](T x, Device) { return matmul(x[0], transpose(x[1], 0, 1)); }},
      {"matmul", "batched with broadcast", false, Tol::gemm, {{2, 1, 3, 4}, {3, 4, 2}},
       [](T x, Device) { return matmul(x[0], x[1]); }},
      {"linear", "with bias", false, Tol::gemm, {{6, 5}, {4, 5}, {4}},
       [](T x, Device) { return linear(x[0], x[1], x[2]); }},
      {"linear", "[2, 3, in], no bias", false, Tol::gemm, {{2, 3, 5}, {4, 5}},
       [](T x, Device) { return linear(x[0], x[1], Tensor()); }},
      // convolution
      {"im2col", "2-D 3x3 padding 1", false, Tol::exact, {{2, 2, 4, 5}},
       [](T x, Device) { return im2col(x[0], ConvGeometry{v({3, 3}), v({1, 1}), v({1, 1}), v({1, 1}), 1}); }},
      {"im2col", "3-D stride 2 dilation 2", false, Tol::exact, {{1, 2, 5, 5, 6}},
       [](T x, Device) { return im2col(x[0], ConvGeometry{v({2, 2, 2}), v({2, 1, 2}), v({1, 0, 1}), v({2, 2, 1}), 1}); }},
      {"col2im", "2-D 3x3 padding 1 (overlapping windows)", false, Tol::exact, {{32, 18}},
       [](T x, Device) { return col2im(x[0], 2, {4, 4}, ConvGeometry{v({3, 3}), v({1, 1}), v({1, 1}), v({1, 1}), 1}); }},
      {"col2im", "1-D stride 2", false, Tol::exact, {{8, 6}},
       [](T x, Device) { return col2im(x[0], 2, {9}, ConvGeometry{v({3}), v({2}), v({0}), v({1}), 1}); }},
      {"rows_to_channels", "", false, Tol::exact, {{8, 3}}, [](T x, Device) { return rows_to_channels(x[0], 2, {2, 2}); }},
      {"conv", "2-D with bias", false, Tol::gemm, {{2, 2, 5, 5}, {3, 2, 3, 3}, {3}},
       [](T x, Device) { return conv(x[0], x[1], x[2], ConvGeometry{v({3, 3}), v({1, 1}), v({0, 0}), v({1, 1}), 1}); }},
      {"conv", "2-D stride 2 padding 1, no bias", false, Tol::gemm, {{1, 3, 6, 7}, {4, 3, 3, 3}},
       [](T x, Device) { return conv(x[0], x[1], Tensor(), ConvGeometry{v({3, 3}), v({2, 2}), v({1, 1}), v({1, 1}), 1}); }},
      {"conv", "1-D dilation 2", false, Tol::gemm, {{2, 2, 11}, {3, 2, 3}, {3}},
       [](T x, Device) { return conv(x[0], x[1], x[2], ConvGeometry{v({3}), v({1}), v({0}), v({2}), 1}); }},
      {"conv", "2-D groups 2 with bias", false, Tol::gemm, {{2, 4, 5, 5}, {6, 2, 3, 3}, {6}},
       [](T x, Device) { return conv(x[0], x[1], x[2], ConvGeometry{v({3, 3}), v({1, 1}), v({0, 0}), v({1, 1}), 2}); }},
      {"conv", "2-D depthwise (groups 3, 2 per group) stride 2 padding 1, odd sizes", false, Tol::gemm,
       {{2, 3, 7, 6}, {6, 1, 3, 3}, {6}},
       [](T x, Device) { return conv(x[0], x[1], x[2], ConvGeometry{v({3, 3}), v({2, 2}), v({1, 1}), v({1, 1}), 3}); }},
      {"conv", "1-D groups 2 dilation 2, no bias", false, Tol::gemm, {{3, 4, 9}, {2, 2, 3}},
       [](T x, Device) { return conv(x[0], x[1], Tensor(), ConvGeometry{v({3}), v({1}), v({0}), v({2}), 2}); }},
      {"conv_transpose", "2-D", false, Tol::gemm, {{1, 2, 3, 3}, {2, 3, 3, 3}},
       [](T x, Device) {
         return conv_transpose(x[0], x[1], Tensor(), ConvGeometry{v({3, 3}), v({1, 1}), v({0, 0}), v({1, 1}), 1});
       }},
      {"conv_transpose", "2-D stride 2 padding 1 output_padding 1, bias, odd sizes", false, Tol::gemm,
       {{2, 3, 3, 4}, {3, 2, 3, 3}, {2}},
       [](T x, Device) {
         return conv_transpose(x[0], x[1], x[2], ConvGeometry{v({3, 3}), v({2, 2}), v({1, 1}), v({1, 1}), 1}, {1, 1});
       }},
      {"conv_transpose", "1-D dilation 2", false, Tol::gemm, {{2, 2, 5}, {2, 3, 3}, {3}},
       [](T x, Device) { return conv_transpose(x[0], x[1], x[2], ConvGeometry{v({3}), v({1}), v({0}), v({2}), 1}); }},
      // pooling
      {"max_pool", "2-D 2x2 stride 2", false, Tol::exact, {{1, 2, 4, 4}},
       [](T x, Device) { return max_pool(x[0], {2, 2}, {2, 2}, {0, 0}); }},
      {"max_pool", "2-D 3x3 stride 1 padding 1 (overlapping, clipped)", false, Tol::exact, {{2, 2, 5, 6}},
       [](T x, Device) { return max_pool(x[0], {3, 3}, {1, 1}, {1, 1}); }},
      {"max_pool", "1-D 3 stride 2", false, Tol::exact, {{2, 3, 9}},
       [](T x, Device) { return max_pool(x[0], {3}, {2}, {0}); }},
      {"max_pool", "3-D 2x2x2", false, Tol::exact, {{1, 2, 4, 4, 4}},
       [](T x, Device) { return max_pool(x[0], {2, 2, 2}, {2, 2, 2}, {0, 0, 0}); }},
      {"avg_pool", "2-D 2x2 stride 2", false, Tol::exact, {{1, 2, 4, 4}},
       [](T x, Device) { return avg_pool(x[0], {2, 2}, {2, 2}, {0, 0}); }},
      {"avg_pool", "2-D 3x3 stride 1 padding 1", false, Tol::exact, {{2, 2, 5, 6}},
       [](T x, Device) { return avg_pool(x[0], {3, 3}, {1, 1}, {1, 1}); }},
      {"avg_pool", "3-D 3x2x2 stride 2x1x2", false, Tol::exact, {{1, 1, 5, 4, 4}},
       [](T x, Device) { return avg_pool(x[0], {3, 2, 2}, {2, 1, 2}, {1, 0, 1}); }},
      {"global_avg_pool", "", false, Tol::exact, {{2, 3, 4, 4}}, [](T x, Device) { return global_avg_pool(x[0]); }},
      // normalisation and regularisation
      // batch_norm: double sums in the CPU's order, the same IEEE operations (sqrt on the host): the same bits.
      {"batch_norm", "eval", false, Tol::exact, {{4, 3}, {3}, {3}},
       [](T x, Device d) {
         return batch_norm(x[0], x[1], x[2], Tensor::zeros({3}, DType::Float32, d), Tensor::ones({3}, DType::Float32, d),
                           false);
       }},
      {"batch_norm", "training [N, C, H, W] with odd sizes", false, Tol::exact, {{3, 2, 3, 5}, {2}, {2}},
       [](T x, Device d) {
         return batch_norm(x[0], x[1], x[2], Tensor::zeros({2}, DType::Float32, d), Tensor::ones({2}, DType::Float32, d),
                           true, 0.1, 1e-5);
       }},
      {"batch_norm", "training [N, C] without affine or running statistics", false, Tol::exact, {{5, 4}},
       [](T x, Device) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); }},
      {"dropout", "p = 0.5", false, Tol::exact, {{4, 4}},
       [](T x, Device) {
         Generator gen(7);
         return dropout(x[0], 0.5, true, gen);
       }},
      {"map_ternary", "", true, Tol::exact, {{3}, {3}, {3}},
       [](T x, Device) {
         return detail::map_ternary(x[0], x[1], x[2], "map_ternary", [](auto a, auto b, auto c) { return a * b + c; });
       }},
  };
  return list;
}

// Seeded inputs: Philox normals, one stream per input.
std::vector<float> input_values(std::size_t case_index, std::size_t input, const Shape& shape, Domain domain) {
  std::vector<float> z(static_cast<std::size_t>(shape_numel(shape)));
  cpu::fill_normal(2024, case_index * 16 + input, 0, static_cast<std::int64_t>(z.size()), z.data());
  if (domain == Domain::positive)
    for (float& x : z) x = std::abs(x) + 0.5f;
  return z;
}

// The relative tolerance of a tolerance class; 0 means the same bits.
double relative_tolerance(Tol tol) {
#ifdef AIMC_CUDA_EMULATION
  const bool emulated = true;
#else
  const bool emulated = false;
#endif
  switch (tol) {
    case Tol::exact: return 0;
    // 2-ulp functions composed a few times stay within ~8 ulp (8 × 1.2e-7 = 1e-6).
    case Tol::libm: return emulated ? 0 : 1e-6;
    // Double sums in another order: one float ulp (2^-23 = 1.2e-7) of the result, twice for safety.
    case Tol::sum: return 2.4e-7;
    // K <= 16 float products summed in another order: ~K ulp of the largest term, 1e-5 with margin.
    case Tol::gemm: return 1e-5;
  }
  return 0;
}

// |gpu - cpu| <= rel·(|cpu| + max|cpu|) (the max term covers results that cancel);
// rel = 0 asks for the same bits.
void check_tensors(const std::vector<float>& gpu, const std::vector<float>& cpu, double rel, const std::string& what) {
  INFO(what);
  REQUIRE(gpu.size() == cpu.size());
  if (rel == 0) {
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      INFO("element " << i << ": cpu " << cpu[i] << ", cuda " << gpu[i]);
      CHECK(std::memcmp(&gpu[i], &cpu[i], sizeof(float)) == 0);
    }
    return;
  }
  double scale = 0;
  for (float x : cpu) scale = std::max(scale, double(std::abs(x)));
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    INFO("element " << i << ": cpu " << cpu[i] << ", cuda " << gpu[i]);
    CHECK(std::abs(double(gpu[i]) - double(cpu[i])) <= rel * (std::abs(double(cpu[i])) + scale));
  }
}

struct Run {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;
};

// Forward, then backward of Σ(out ⊙ w) for a seeded w, on `device`.
Run run_case(const OpCase& c, std::size_t index, Device device) {
  std::vector<Tensor> inputs;
  for (std::size_t k = 0; k < c.shapes.size(); ++k) {
    Tensor t = Tensor::from_vector(input_values(index, k, c.shapes[k], c.domain), c.shapes[k]).to(device);
    inputs.push_back(t.set_requires_grad(true));
  }
  const Tensor out = c.f(inputs, device);
  REQUIRE(out.device() == device);
  const Tensor w = Tensor::from_vector(input_values(index, 15, out.shape(), Domain::any), out.shape()).to(device);
  Run r;
  r.out = out.to_vector();
  if (!out.requires_grad()) return r;  // internal helpers (expand_to) record no graph
  sum(mul(out, w)).backward();
  for (const Tensor& t : inputs) r.grads.push_back(t.grad().defined() ? t.grad().to_vector() : std::vector<float>{});
  return r;
}

// One plain SGD step (w -= lr·grad through add_ on the leaves), grads then cleared.
void sgd_step(std::vector<Tensor>& params, Device d, double lr) {
  for (Tensor& p : params) {
    REQUIRE(p.grad().device() == d);
    p.detach().add_(p.grad(), -lr);
    p.zero_grad();
  }
}

// A training run's losses, then each parameter's values.
using Trace = std::vector<std::vector<float>>;
Trace trace(const std::vector<float>& losses, const std::vector<Tensor>& params) {
  Trace out{losses};
  for (const Tensor& p : params) out.push_back(p.to_vector());
  return out;
}

// run(cuda) follows run(cpu) within Tol::gemm, losses and parameters.
void check_training_parity(const std::function<Trace(Device)>& run) {
  const Trace cpu = run(Device::cpu());
  const Trace gpu = run(Device::cuda());
  REQUIRE(cpu.size() == gpu.size());
  for (std::size_t k = 0; k < cpu.size(); ++k)
    check_tensors(gpu[k], cpu[k], relative_tolerance(Tol::gemm), k == 0 ? "losses" : "parameter " + std::to_string(k - 1));
}

}  // namespace

TEST_CASE("backend ops: the harness list and the dispatch table agree, and every op is in the list") {
  std::set<std::string> listed;
  for (const OpCase& c : cases()) {
    INFO(c.op << " (" << c.variant << ")");
    CHECK(op_runs_on(c.op, Device::cuda()) == !c.cpu_only);
    CHECK(op_runs_on(c.op, Device::cpu()));
    listed.insert(c.op);
  }
  listed.insert("argmax_rows");  // a host vector, not a tensor: its own test case below
  for (const EngineOp& e : engine_ops()) {
    INFO(e.name);
    CHECK(listed.count(e.name) == 1);
  }
  CHECK_THROWS_AS(op_runs_on("no_such_op", Device::cpu()), Error);
}

TEST_CASE("backend ops: forward and backward on CUDA match the CPU, cpu-only ops refuse CUDA by name") {
  const std::vector<OpCase>& list = cases();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const OpCase& c = list[i];
    const std::string name = std::string(c.op) + " (" + c.variant + ")";
    SECTION(name) {
      if (c.cpu_only) {
        // One clear DeviceError naming the op and the device.
        std::vector<Tensor> inputs;
        for (std::size_t k = 0; k < c.shapes.size(); ++k)
          inputs.push_back(Tensor::from_vector(input_values(i, k, c.shapes[k], c.domain), c.shapes[k])
                               .to(Device::cuda()));
        try {
          c.f(inputs, Device::cuda());
          FAIL(name << " ran on CUDA but the harness lists it as cpu only");
        } catch (const DeviceError& e) {
          const std::string message = e.what();
          INFO(message);
          CHECK(message.find(c.op) != std::string::npos);
          CHECK(message.find("cuda:0") != std::string::npos);
        }
        continue;
      }
      const Run cpu = run_case(c, i, Device::cpu());
      const Run gpu = run_case(c, i, Device::cuda());
      check_tensors(gpu.out, cpu.out, relative_tolerance(c.tol), name + " forward");
      REQUIRE(gpu.grads.size() == cpu.grads.size());
      for (std::size_t k = 0; k < cpu.grads.size(); ++k) {
        // The gradient of a broadcast input is summed back to its shape (sum_to_shape).
        const bool summed = shape_numel(c.shapes[k]) != static_cast<std::int64_t>(cpu.out.size());
        const double rel = std::max(relative_tolerance(c.tol), summed ? relative_tolerance(Tol::sum) : 0.0);
        check_tensors(gpu.grads[k], cpu.grads[k], rel, name + " gradient of input " + std::to_string(k));
      }
    }
  }
}

TEST_CASE("backend ops: argmax_rows of a CUDA tensor equals the CPU's") {
  const Shape shape{6, 5};
  const std::vector<float> x = input_values(900, 0, shape, Domain::any);
  const Tensor cpu = Tensor::from_vector(x, shape);
  const std::vector<std::int32_t> expected = argmax_rows(cpu);
  CHECK(argmax_rows(cpu.to(Device::cuda())) == expected);
  // A known answer: row r's largest value is at column (2 r) mod 5.
  std::vector<float> k(30, 0.f);
  for (int r = 0; r < 6; ++r) k[r * 5 + (2 * r) % 5] = 1.f;
  CHECK(argmax_rows(Tensor::from_vector(k, shape).to(Device::cuda())) == std::vector<std::int32_t>{0, 2, 4, 1, 3, 0});
}

TEST_CASE("backend ops: gradients accumulate on CUDA leaves as on the CPU") {
  // x used twice in one graph, then a second backward: x.grad = 2·3 + 3 = 9
  // per element for y = Σ 3(x + x) then Σ 3x.
  for (Device d : {Device::cpu(), Device::cuda()}) {
    Tensor x = Tensor::from_vector(std::vector<float>{1.f, -2.f, 0.5f}, {3}).to(d).set_requires_grad(true);
    sum(mul_scalar(add(x, x), 3.0)).backward();
    sum(mul_scalar(x, 3.0)).backward();
    INFO(d.str());
    CHECK(x.grad().device() == d);
    CHECK(x.grad().to_vector() == std::vector<float>{9.f, 9.f, 9.f});
  }
}

TEST_CASE("backend ops: inputs on different devices or float64 on CUDA raise one DeviceError naming the op") {
  const Tensor a = Tensor::ones({2, 2});
  const Tensor b = Tensor::ones({2, 2}).to(Device::cuda());
  CHECK_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("cpu") && Catch::Contains("cuda:0"));
  CHECK_THROWS_AS(matmul(a, b), DeviceError);
  const Tensor d64 = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2});
  // float64 cannot even be moved by an op: the engine refuses it on CUDA by name.
  CHECK_THROWS_WITH(exp(d64.to(Device::cuda())), Catch::Contains("exp") && Catch::Contains("float64"));
}

TEST_CASE("backend ops: dropout on CUDA draws the CPU's mask and advances the generator alike") {
  const Shape shape{9, 7};  // 63 values: 16 Philox blocks, the last one partly used
  const Tensor x = Tensor::ones(shape);
  Generator cpu_gen(11, 3), gpu_gen(11, 3);
  cpu_gen.set_offset(5);
  gpu_gen.set_offset(5);
  const std::vector<float> cpu = dropout(x, 0.25, true, cpu_gen).to_vector();
  const std::vector<float> gpu = dropout(x.to(Device::cuda()), 0.25, true, gpu_gen).to_vector();
  CHECK(gpu == cpu);
  CHECK(gpu_gen.offset() == 5 + 16);
  CHECK(cpu_gen.offset() == gpu_gen.offset());
  // Kept values are 1/(1 - p) = 4/3 exactly as float division rounds it, dropped ones 0.
  for (float v : gpu) CHECK((v == 0.f || v == 1.f / 0.75f));
}

TEST_CASE("backend ops: two SGD steps of a small MLP on CUDA follow the CPU's") {
  // x [8, 6] -> linear 6->5 -> relu -> dropout -> linear 5->3 -> log_softmax
  // picked by cross_entropy; plain SGD (lr 0.1) through add_ on the leaves.
  // Values are GEMM-based: 1e-5 relative (see relative_tolerance(Tol::gemm)).
  const std::vector<Shape> shapes{{5, 6}, {5}, {3, 5}, {3}};
  check_training_parity([&](Device d) {
    std::vector<Tensor> params;
    for (std::size_t k = 0; k < shapes.size(); ++k) {
      std::vector<float> v = input_values(700, k, shapes[k], Domain::any);
      for (float& e : v) e *= 0.5f;
      params.push_back(Tensor::from_vector(v, shapes[k]).to(d).set_requires_grad(true));
    }
    const Tensor x = Tensor::from_vector(input_values(701, 0, {8, 6}, Domain::any), {8, 6}).to(d);
    const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 0, 1, 2, 2, 1}, {8}).to(d);
    Generator gen(5);
    std::vector<float> losses;
    for (int step = 0; step < 2; ++step) {
      const Tensor h = dropout(relu(linear(x, params[0], params[1])), 0.2, true, gen);
      const Tensor loss = cross_entropy(linear(h, params[2], params[3]), labels);
      losses.push_back(static_cast<float>(loss.item()));
      loss.backward();
      sgd_step(params, d, 0.1);
    }
    return trace(losses, params);
  });
}

TEST_CASE("backend ops: copy_ into a strided CUDA view, and from a float64 CPU source, writes the known values") {
  // Columns 1..2 of a [2, 4] zeros on the GPU <- [[1, 2], [3, 4]] (float64 on the CPU, converted there).
  Tensor y = Tensor::zeros({2, 4}, DType::Float32, Device::cuda());
  Tensor view = y.slice(1, 1, 3);
  view.copy_(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}));
  CHECK(y.to_vector() == std::vector<float>{0, 1, 2, 0, 0, 3, 4, 0});
  // A transposed source into a transposed view: y[:, 0] <- (5, 6) through a [1, 2] view of a column.
  y.slice(1, 0, 1).transpose(0, 1).copy_(Tensor::from_vector(std::vector<float>{5, 6}, {1, 2}).to(Device::cuda()));
  CHECK(y.to_vector() == std::vector<float>{5, 1, 2, 0, 6, 3, 4, 0});
  // The dtype error names the conversion and the device.
  CHECK_THROWS_WITH(y.to(DType::Float64),
                    Catch::Contains("to(dtype)") && Catch::Contains("float32 -> float64") && Catch::Contains("cuda:0"));
}

TEST_CASE("backend ops: batch_norm's running statistics on CUDA are the CPU's") {
  // Two training steps (momentum 0.1) then eval: running_mean and running_var
  // (unbiased, m / (m - 1) with m = 3·5 = 15) and the eval output, bit for bit.
  const Shape shape{3, 2, 5};
  auto run = [&](Device d) {
    Tensor rm = Tensor::zeros({2}, DType::Float32, d), rv = Tensor::ones({2}, DType::Float32, d);
    for (int step = 0; step < 2; ++step) {
      const Tensor x = Tensor::from_vector(input_values(950, step, shape, Domain::any), shape).to(d);
      batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
    }
    const Tensor x = Tensor::from_vector(input_values(950, 2, shape, Domain::any), shape).to(d);
    REQUIRE(rm.device() == d);
    return Trace{rm.to_vector(), rv.to_vector(), batch_norm(x, Tensor(), Tensor(), rm, rv, false).to_vector()};
  };
  const Trace cpu = run(Device::cpu()), gpu = run(Device::cuda());
  for (std::size_t k = 0; k < cpu.size(); ++k) check_tensors(gpu[k], cpu[k], 0, "trace " + std::to_string(k));
  // A known answer: one step from (0, 1) on x = {1, 3} per channel ([2, 1]):
  // mean 2, unbiased variance 2, so r = (0.1·2, 0.9 + 0.1·2) = (0.2, 1.1).
  Tensor rm = Tensor::zeros({1}).to(Device::cuda()), rv = Tensor::ones({1}).to(Device::cuda());
  batch_norm(Tensor::from_vector(std::vector<float>{1.f, 3.f}, {2, 1}).to(Device::cuda()), Tensor(), Tensor(), rm, rv,
             true, 0.1, 1e-5);
  CHECK(rm.item() == Approx(0.2).epsilon(1e-7));
  CHECK(rv.item() == Approx(1.1).epsilon(1e-7));
}

TEST_CASE("backend ops: Device::cuda(i) runs on GPU i; an index past the GPUs found is a DeviceError naming it") {
  const int count = cuda_kernels().device_count();
  REQUIRE(count >= 1);
  const Device past = Device::cuda(count);
  const std::string name = past.str();
  CHECK_THROWS_WITH(Tensor::ones({2}).to(past), Catch::Contains(name) && Catch::Contains("out of range"));
  Tensor moved = Tensor::ones({2});
  CHECK_THROWS_WITH(moved.move_to_(past), Catch::Contains(name) && Catch::Contains("out of range"));
  CHECK(moved.device() == Device::cpu());
  for (int i = 0; i < count; ++i) {
    INFO("cuda:" << i);
    const Tensor x = Tensor::from_vector(std::vector<float>{1.f, -2.f, 0.5f}, {3}).to(Device::cuda(i));
    const Tensor y = mul(x, x);
    CHECK(y.device() == Device::cuda(i));
    CHECK(cuda_kernels().current_device() == i);
    CHECK(y.to_vector() == std::vector<float>{1.f, 4.f, 0.25f});
  }
}

#ifdef AIMC_CUDA_EMULATION
TEST_CASE("backend ops: with 3 emulated GPUs, cuda:2 runs there, cuda:3 is refused, mixed GPUs name both") {
  ::setenv("AIMC_CUDA_EMULATED_DEVICES", "3", 1);
  const Tensor a = Tensor::from_vector(std::vector<float>{1.f, 2.f}, {2}).to(Device::cuda(2));
  const Tensor b = a.to(Device::cuda(1));  // a copy between GPUs
  CHECK(b.device() == Device::cuda(1));
  CHECK(cuda_kernels().current_device() == 1);
  const Tensor c = add(a, a);
  CHECK(cuda_kernels().current_device() == 2);
  CHECK(c.to_vector() == std::vector<float>{2.f, 4.f});
  CHECK_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("cuda:2") && Catch::Contains("cuda:1"));
  CHECK_THROWS_WITH(Tensor::ones({1}).to(Device::cuda(3)),
                    Catch::Contains("cuda:3") && Catch::Contains("out of range") && Catch::Contains("3 GPU(s)"));
  ::unsetenv("AIMC_CUDA_EMULATED_DEVICES");
  use_cuda_device(Device::cuda(0));
  CHECK(cuda_kernels().current_device() == 0);
}
#endif

TEST_CASE("backend ops: an SGD step of a LeNet-shaped network on CUDA follows the CPU's") {
  // x [4, 1, 12, 12] -> conv 1->3 (5x5) -> relu -> max_pool 2 -> conv 3->4
  // (3x3) -> tanh -> avg_pool 2 -> flatten -> linear 4->5 -> cross_entropy,
  // then SGD (lr 0.05). The CPU's conv uses another GEMM layout than the
  // GPU's (im2col x kernels), so values agree within Tol::gemm.
  const std::vector<Shape> shapes{{3, 1, 5, 5}, {3}, {4, 3, 3, 3}, {4}, {5, 4}, {5}};
  auto geometry = [](std::int64_t k) { return ConvGeometry{v({k, k}), v({1, 1}), v({0, 0}), v({1, 1}), 1}; };
  check_training_parity([&](Device d) {
    std::vector<Tensor> params;
    for (std::size_t k = 0; k < shapes.size(); ++k) {
      std::vector<float> w = input_values(800, k, shapes[k], Domain::any);
      for (float& e : w) e *= 0.3f;
      params.push_back(Tensor::from_vector(w, shapes[k]).to(d).set_requires_grad(true));
    }
    const Tensor x = Tensor::from_vector(input_values(801, 0, {4, 1, 12, 12}, Domain::any), {4, 1, 12, 12}).to(d);
    const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{4, 0, 2, 1}, {4}).to(d);
    std::vector<float> losses;
    for (int step = 0; step < 2; ++step) {
      Tensor h = max_pool(relu(conv(x, params[0], params[1], geometry(5))), {2, 2}, {2, 2}, {0, 0});  // [4, 3, 4, 4]
      h = avg_pool(tanh(conv(h, params[2], params[3], geometry(3))), {2, 2}, {2, 2}, {0, 0});      // [4, 4, 1, 1]
      const Tensor loss = cross_entropy(linear(flatten(h), params[4], params[5]), labels);
      losses.push_back(static_cast<float>(loss.item()));
      loss.backward();
      sgd_step(params, d, 0.05);
    }
    return trace(losses, params);
  });
}
