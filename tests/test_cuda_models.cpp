// Whole digital models on the CUDA backend (a real GPU in test_cuda, the host
// emulation in test_cuda_emulated): one SGD step of the convert/models.h mlp,
// lenet5 and resnet20 on the GPU follows the same step on the CPU.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "convert/models.h"
#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "layers/optim/sgd.h"

using namespace aimc;

namespace {

struct StepResult {
  float loss;
  std::vector<std::pair<std::string, std::vector<float>>> params;   // after the step
  std::vector<std::pair<std::string, std::vector<float>>> buffers;  // batch_norm's running statistics, ...
};

// Builds `name` from seed 21, moves it to `device`, and takes one SGD step
// (lr 0.1, momentum 0.9) on a batch of 4 normal inputs with fixed labels.
StepResult sgd_step(const std::string& name, Device device) {
  Generator gen(21);
  auto model = build_model(name, gen);
  model->to(device);
  SGDOptions options;
  options.momentum = 0.9;
  SGD optimizer(model->parameters(), 0.1, options);
  Shape shape{4};
  for (std::int64_t d : model_input_shape(name)) shape.push_back(d);
  Generator data(22);
  const Tensor x = data.normal(shape).to(device);
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{3, 0, 9, 5}, {4}).to(device);
  optimizer.zero_grad();
  const Tensor loss = cross_entropy(model->forward(x), labels);
  REQUIRE(loss.device() == device);
  loss.backward();
  optimizer.step();
  StepResult r{static_cast<float>(loss.item()), {}, {}};
  for (const auto& [pname, p] : model->named_parameters()) {
    CHECK(p.device() == device);
    r.params.emplace_back(pname, p.to(Device::cpu()).to_vector());
  }
  for (const auto& [bname, b] : model->named_buffers()) {
    CHECK(b.device() == device);
    r.buffers.emplace_back(bname, b.to(Device::cpu()).to_vector());
  }
  return r;
}

// |gpu - cpu| <= 1e-5·(|cpu| + max|cpu|): the GPU's GEMMs (cuBLAS; the
// emulation's own loops) sum products in another order than Eigen, up to
// K = 784 terms of ~1e-3 each, which moves a float result by a few ulp
// (~1e-7 relative) each layer; 1e-5 leaves two orders of magnitude while a
// wrong gradient or a missed parameter moves values by the whole update.
void check_close(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::string& what) {
  INFO(what);
  REQUIRE(gpu.size() == cpu.size());
  float scale = 0.f;
  for (float v : cpu) scale = std::max(scale, std::abs(v));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i)
    bad += !(std::abs(gpu[i] - cpu[i]) <= 1e-5f * (std::abs(cpu[i]) + scale));
  CHECK(bad == 0);
}

void check_model(const std::string& name) {
  const StepResult cpu = sgd_step(name, Device::cpu());
  const StepResult gpu = sgd_step(name, Device::cuda());
  CHECK(std::isfinite(cpu.loss));
  CHECK(gpu.loss == Approx(cpu.loss).epsilon(1e-5));
  REQUIRE(gpu.params.size() == cpu.params.size());
  for (std::size_t k = 0; k < cpu.params.size(); ++k) {
    CHECK(gpu.params[k].first == cpu.params[k].first);
    check_close(gpu.params[k].second, cpu.params[k].second, name + " " + cpu.params[k].first);
  }
  REQUIRE(gpu.buffers.size() == cpu.buffers.size());
  for (std::size_t k = 0; k < cpu.buffers.size(); ++k) {
    CHECK(gpu.buffers[k].first == cpu.buffers[k].first);
    check_close(gpu.buffers[k].second, cpu.buffers[k].second, name + " " + cpu.buffers[k].first);
  }
}

}  // namespace

TEST_CASE("One SGD step of the digital mlp on CUDA follows the CPU's", "[cuda][models]") { check_model("mlp"); }

TEST_CASE("One SGD step of the digital lenet5 on CUDA follows the CPU's", "[cuda][models]") { check_model("lenet5"); }

// batch_norm in training (running statistics and num_batches_tracked
// updated), 1x1-conv shortcuts and global pooling: the GPU's step and
// buffers follow the CPU's.
TEST_CASE("One SGD step of the digital resnet20 on CUDA follows the CPU's, running statistics too",
          "[cuda][models]") {
  check_model("resnet20");
}
