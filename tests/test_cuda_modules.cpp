// Module::to / Optimizer::to on the CUDA backend (a real GPU in test_cuda,
// the host emulation in test_cuda_emulated): a trained, programmed and
// drifted analog mlp moves to the GPU and back in place, every state tensor
// on the way, and then computes the same bits as a twin that never moved.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/analog/drift_compensation_law.h"
#include "kernels/cuda/backend.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/conv.h"
#include "layers/modules/init.h"
#include "layers/optim/adam.h"
#include "layers/optim/analog_sgd.h"
#include "layers/optim/sgd.h"
#include "layers/tiles/analog_tile.h"
#include "tests/cuda_test_util.h"
#include "tests/programming_parity.h"

using namespace aimc;

namespace {

struct TrainedModel {
  std::shared_ptr<Module> model;
  std::unique_ptr<SGD> optimizer;
};

// The mlp on several 256x128 tiles (InferenceRPUConfig defaults, PCM noise
// model): one SGD step with momentum (gradients kept), then programmed and
// drifted to one hour. The same every call.
TrainedModel trained_programmed_drifted() {
  nlohmann::json description = model_description("mlp");
  InferenceRPUConfig config;
  config.mapping.max_input_size = 256;
  config.mapping.max_output_size = 128;
  description["rpu_config"] = RPUConfig(config).to_json();
  description["analog_seed"] = 11;
  Generator gen(4);
  TrainedModel t;
  t.model = build_model_from_description(description, gen);
  SGDOptions options;
  options.momentum = 0.9;
  t.optimizer = std::make_unique<SGD>(t.model->parameters(), 0.05, options);
  Generator data(5);
  const Tensor x = data.normal({8, 1, 28, 28});
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});
  cross_entropy(t.model->forward(x), labels).backward();
  t.optimizer->step();
  t.model->post_update_step();
  t.model->eval();
  t.model->program_analog_weights();
  t.model->drift_analog_weights(3600.0);
  return t;
}

// Every tensor a move must carry: the state dict, the gradients, the optimizer state.
std::vector<std::pair<std::string, Tensor>> all_state(const TrainedModel& t) {
  std::vector<std::pair<std::string, Tensor>> out = t.model->state_dict();
  for (const auto& [name, p] : t.model->named_parameters())
    if (p.grad().defined()) out.emplace_back(name + ".grad", p.grad());
  for (const auto& [name, s] : t.optimizer->named_state()) out.emplace_back("optimizer." + name, s);
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

}  // namespace

TEST_CASE("to(cuda) then to(cpu) moves a trained, programmed, drifted model in place, bit for bit",
          "[cuda][modules]") {
  TrainedModel moved = trained_programmed_drifted();
  TrainedModel twin = trained_programmed_drifted();
  const auto before = all_state(moved);
  // Programmed conductances, drift state and tile states are all among them.
  REQUIRE(before.size() == all_state(twin).size());
  std::size_t conductances = 0;
  for (const auto& [name, t] : before) conductances += name.find("_conductances") != std::string::npos;
  REQUIRE(conductances > 0);
  AnalogTile* tile = moved.model->analog_tiles().at(0);

  moved.model->cuda();
  moved.optimizer->to(Device::cuda());
  CHECK(moved.model->device() == Device::cuda(0));
  for (const auto& [name, t] : all_state(moved)) {
    INFO(name);
    CHECK(t.device().is_cuda());
  }
  // Handles held outside the module (the tile's own, the optimizer's) followed.
  CHECK(tile->weight().device().is_cuda());
  for (const Tensor& p : moved.optimizer->params()) CHECK(p.device().is_cuda());
  // An input left on the host is refused, naming both devices, before any
  // pass runs (and changes nothing: see below).
  Generator probe(7);
  CHECK_THROWS_WITH(moved.model->forward(probe.normal({2, 1, 28, 28})),
                    Catch::Contains("the input is on cpu") && Catch::Contains("cuda:0"));
  CHECK(tile->seed() == twin.model->analog_tiles().at(0)->seed());  // read back from the GPU
  // A drift on the GPU draws the CPU's numbers: the twin drifts on the host.
  moved.model->drift_analog_weights(7200.0);
  twin.model->drift_analog_weights(7200.0);
  for (const auto& [name, t] : all_state(moved)) {
    INFO(name);
    CHECK(t.device().is_cuda());  // the state went back to the GPU
  }

  moved.model->cpu();
  moved.optimizer->to(Device::cpu());
  const auto after = all_state(moved), reference = all_state(twin);
  REQUIRE(after.size() == reference.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].first);
    CHECK(after[i].first == reference[i].first);
    CHECK(after[i].second.device().is_cpu());
    CHECK(same_bits(after[i].second, reference[i].second));
    // The same handles as before the move (in place, not replaced).
    CHECK(after[i].second.impl() == before[i].second.impl());
  }

  // It computes what the twin computes: a forward on the drifted chip, a new
  // drift, and a training step of the momentum optimizer.
  Generator data(6);
  const Tensor x = data.normal({4, 1, 28, 28});
  CHECK(same_bits(moved.model->forward(x), twin.model->forward(x)));
  moved.model->drift_analog_weights(86400.0);
  twin.model->drift_analog_weights(86400.0);
  CHECK(same_bits(moved.model->forward(x), twin.model->forward(x)));
  moved.model->train();
  twin.model->train();
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{1, 2, 3, 4}, {4});
  for (TrainedModel* t : {&moved, &twin}) {
    t->model->zero_grad();
    cross_entropy(t->model->forward(x), labels).backward();
    t->optimizer->step();
  }
  const auto stepped = all_state(moved), stepped_twin = all_state(twin);
  for (std::size_t i = 0; i < stepped.size(); ++i) {
    INFO(stepped[i].first);
    CHECK(same_bits(stepped[i].second, stepped_twin[i].second));
  }
}

TEST_CASE("to(cuda:N) past the GPUs found is refused with a DeviceError and moves nothing", "[cuda][modules]") {
  TrainedModel t = trained_programmed_drifted();
  const int past = cuda_kernels().device_count();
  CHECK_THROWS_AS(t.model->to(Device::cuda(past)), DeviceError);
  CHECK_THROWS_WITH(t.model->to(Device::cuda(past)),
                    Catch::Contains("GPU index " + std::to_string(past)) && Catch::Contains("out of range"));
  CHECK_THROWS_AS(t.optimizer->to(Device::cuda(past)), DeviceError);
  for (const auto& [name, s] : all_state(t)) {
    INFO(name);
    CHECK(s.device().is_cpu());
  }
}

namespace {

// Three steps of `make(params)` on a CPU parameter and on its CUDA twin with
// the same gradients: the weights and states agree.
template <class Make>
void check_optimizer_parity(Make make) {
  Generator gen(21);
  // 1000 elements: several blocks of the grid-stride loop.
  Tensor p_cpu = gen.normal({10, 100}).set_requires_grad(true);
  Tensor p_gpu = p_cpu.clone().detach().set_requires_grad(true);
  p_gpu.move_to_(Device::cuda());
  const std::vector<float> initial = p_cpu.to_vector();
  auto cpu_opt = make(std::vector<Tensor>{p_cpu});
  auto gpu_opt = make(std::vector<Tensor>{p_gpu});
  for (int step = 0; step < 3; ++step) {
    const Tensor g = gen.normal({10, 100});
    p_cpu.set_grad(g);
    p_gpu.set_grad(g.to(Device::cuda()));
    cpu_opt->step();
    gpu_opt->step();
  }
  CHECK(p_gpu.device().is_cuda());
  // Within a float rounding per operation (the compilers fuse multiply-adds differently).
  test::check_close(p_gpu.to_vector(), p_cpu.to_vector());
  const auto cpu_state = cpu_opt->named_state(), gpu_state = gpu_opt->named_state();
  REQUIRE(cpu_state.size() == gpu_state.size());
  for (std::size_t i = 0; i < cpu_state.size(); ++i) {
    INFO(cpu_state[i].first);
    CHECK(gpu_state[i].second.device().is_cuda());
    test::check_close(gpu_state[i].second.to_vector(), cpu_state[i].second.to_vector());
  }
  // The steps moved the weights (the comparison is not of untouched copies).
  CHECK(p_gpu.to_vector() != initial);
}

}  // namespace

TEST_CASE("SGD and Adam steps on CUDA agree with the CPU's", "[cuda][optim]") {
  SECTION("SGD, plain") {
    check_optimizer_parity([](std::vector<Tensor> ps) { return std::make_unique<SGD>(ps, 0.1); });
  }
  SECTION("SGD, momentum, dampening, weight decay") {
    SGDOptions o;
    o.momentum = 0.5;
    o.dampening = 0.1;
    o.weight_decay = 0.01;
    check_optimizer_parity([o](std::vector<Tensor> ps) { return std::make_unique<SGD>(ps, 0.1, o); });
  }
  SECTION("SGD, Nesterov") {
    SGDOptions o;
    o.momentum = 0.9;
    o.nesterov = true;
    check_optimizer_parity([o](std::vector<Tensor> ps) { return std::make_unique<SGD>(ps, 0.05, o); });
  }
  SECTION("Adam with weight decay") {
    AdamOptions o;
    o.weight_decay = 0.01;
    check_optimizer_parity([o](std::vector<Tensor> ps) { return std::make_unique<Adam>(ps, 0.01, o); });
  }
}

using test::check_tile_parity;

TEST_CASE("AnalogTile forward and backward on CUDA agree with the CPU (InferenceRPUConfig defaults)",
          "[cuda][tiles]") {
  const InferenceRPUConfig config;
  const std::int64_t out = 48, in = 64, n = 32;
  AnalogTile on_cpu(out, in, config.forward, config.backward, 17, 3);
  AnalogTile on_gpu(out, in, config.forward, config.backward, 17, 3);
  Generator gen(9);
  const Tensor w = gen.normal({out, in}) * 0.3;
  {
    NoGradGuard no_grad;
    on_cpu.weight().detach().copy_(w);
    on_gpu.weight().detach().copy_(w);
  }
  // What a layer's Module::to does to its tile: the weights and every state entry.
  on_gpu.weight().detach().move_to_(Device::cuda());
  for (const auto& [name, t] : on_gpu.state().entries()) t.detach().move_to_(Device::cuda());

  for (int pass = 0; pass < 2; ++pass) {  // twice: the counters and running values carry over
    INFO("pass " << pass);
    const Tensor x = gen.normal({n, in}), d = gen.normal({n, out});
    Tensor y = Tensor::empty({n, out}), dx = Tensor::empty({n, in});
    on_cpu.forward(x.data<float>(), n, y.data<float>(), pass == 1);
    on_cpu.backward(d.data<float>(), n, dx.data<float>(), pass == 1);
    const Tensor x_gpu = x.to(Device::cuda()), d_gpu = d.to(Device::cuda());
    Tensor y_gpu = Tensor::empty({n, out}, DType::Float32, Device::cuda());
    Tensor dx_gpu = Tensor::empty({n, in}, DType::Float32, Device::cuda());
    on_gpu.forward(x_gpu.data<float>(), n, y_gpu.data<float>(), pass == 1);
    on_gpu.backward(d_gpu.data<float>(), n, dx_gpu.data<float>(), pass == 1);
    check_tile_parity(y_gpu.to_vector(), y.to_vector());
    check_tile_parity(dx_gpu.to_vector(), dx.to_vector());
    // The same Philox blocks consumed, the counters kept on the GPU.
    CHECK(on_gpu.forward_counter() == on_cpu.forward_counter());
    CHECK(on_gpu.backward_counter() == on_cpu.backward_counter());
    CHECK(on_gpu.forward_counter() > 0);
    CHECK(on_gpu.nm_running(0) == Approx(on_cpu.nm_running(0)).epsilon(1e-6));
  }
  CHECK(on_gpu.state().find("forward_counter")->device().is_cuda());
  // A new chip on the GPU: the CPU's per-line values, counters and running
  // values (reseeded state, then one more eval pass on each).
  on_cpu.reseed(5);
  on_gpu.reseed(5);
  CHECK(on_gpu.seed() == 5);
  CHECK(on_gpu.forward_counter() == 0);
  CHECK(on_gpu.nm_running(0) == -1.f);
  for (const auto& [name, t] : on_gpu.state().entries()) {
    INFO(name);
    CHECK(t.device().is_cuda());
    CHECK(same_bits(t, *on_cpu.state().find(name)));
  }
  const Tensor x = gen.normal({n, in});
  Tensor y = Tensor::empty({n, out});
  Tensor y_gpu = Tensor::empty({n, out}, DType::Float32, Device::cuda());
  on_cpu.forward(x.data<float>(), n, y.data<float>(), true);
  on_gpu.forward(x.to(Device::cuda()).data<float>(), n, y_gpu.data<float>(), true);
  check_tile_parity(y_gpu.to_vector(), y.to_vector());
}

TEST_CASE("A programmed, drifted tile moved with its layer reads on CUDA as on the CPU (drift compensation too)",
          "[cuda][tiles][programming]") {
  // InferenceRPUConfig defaults: PCM noise model, global drift compensation.
  const InferenceRPUConfig config;
  const std::int64_t in = 40, out = 24, n = 16;
  auto make = [&] {
    Generator gen(12);
    auto layer = std::make_shared<AnalogLinear>(in, out, true, config, gen);
    layer->eval();
    layer->drift_analog_weights(86400.0);
    return layer;
  };
  auto on_cpu = make(), on_gpu = make();
  on_gpu->cuda();
  AnalogTile& t_cpu = *on_cpu->analog_tiles().at(0);
  AnalogTile& t_gpu = *on_gpu->analog_tiles().at(0);
  REQUIRE(t_gpu.programmed());  // the programming state, read back from the GPU
  REQUIRE(t_gpu.programming()->alpha().defined());
  CHECK(t_gpu.programming()->alpha().device().is_cuda());
  CHECK(t_gpu.programming()->t_inference() == 86400.0);
  Generator data(13);
  const Tensor x = data.normal({n, in});
  Tensor y = Tensor::empty({n, out});
  t_cpu.forward(x.data<float>(), n, y.data<float>(), /*is_test=*/true);
  const Tensor x_gpu = x.to(Device::cuda());
  Tensor y_gpu = Tensor::empty({n, out}, DType::Float32, Device::cuda());
  t_gpu.forward(x_gpu.data<float>(), n, y_gpu.data<float>(), /*is_test=*/true);
  check_tile_parity(y_gpu.to_vector(), y.to_vector());
  CHECK(t_gpu.forward_counter() == t_cpu.forward_counter());
  // Drifted again on the GPU (the CUDA kernels of the PCM model): the CPU's
  // state (tests/programming_parity.h) and every tensor stays on the GPU.
  on_cpu->drift_analog_weights(3600.0);
  on_gpu->drift_analog_weights(3600.0);
  test::check_state_parity(on_gpu->state_dict(), on_cpu->state_dict());
  CHECK(t_gpu.programming()->t_inference() == 3600.0);
}

TEST_CASE("A layer programmed and drifted on CUDA (per-output compensation) equals its CPU twin",
          "[cuda][tiles][programming]") {
  InferenceRPUConfig config;
  config.drift_compensation = {{"type", "PerColumnDriftCompensation"}};
  const std::int64_t in = 36, out = 20, n = 10;
  auto make = [&] {
    Generator gen(21);
    auto layer = std::make_shared<AnalogLinear>(in, out, true, config, gen);
    layer->eval();
    return layer;
  };
  auto on_cpu = make(), on_gpu = make();
  on_gpu->cuda();  // moved before the first programming: its buffers are made on the host, then moved
  for (auto* layer : {on_cpu.get(), on_gpu.get()}) {
    layer->program_analog_weights();
    layer->drift_analog_weights(1000.0);
  }
  AnalogTile& t_cpu = *on_cpu->analog_tiles().at(0);
  AnalogTile& t_gpu = *on_gpu->analog_tiles().at(0);
  REQUIRE(t_gpu.programmed());
  REQUIRE(t_gpu.programming()->alpha().numel() == out);
  for (const auto& [name, t] : t_gpu.programming()->buffers()) {
    INFO(name);
    CHECK(t.device().is_cuda());
  }
  test::check_state_parity(on_gpu->state_dict(), on_cpu->state_dict());
  // One α per output, not all the same (each column drifted with its own noise).
  const std::vector<float> alpha = t_gpu.programming()->alpha().to_vector();
  CHECK(*std::max_element(alpha.begin(), alpha.end()) > *std::min_element(alpha.begin(), alpha.end()) + 0.01f);
  Generator data(22);
  const Tensor x = data.normal({n, in});
  Tensor y = Tensor::empty({n, out});
  Tensor y_gpu = Tensor::empty({n, out}, DType::Float32, Device::cuda());
  t_cpu.forward(x.data<float>(), n, y.data<float>(), true);
  t_gpu.forward(x.to(Device::cuda()).data<float>(), n, y_gpu.data<float>(), true);
  check_tile_parity(y_gpu.to_vector(), y.to_vector());
}

namespace {
// Three AnalogSGD-style steps on every tile of the layer: (x, d) recorded on
// `where`, then apply_updates (the pulsed update and post-update steps).
void pulse_three_steps(AnalogLinear& layer, Device where) {
  Generator data(51);
  for (int step = 0; step < 3; ++step)
    for (AnalogTile* tile : layer.analog_tiles()) {
      const Tensor x = data.normal({6, tile->in_size()}), d = data.normal({6, tile->out_size()}) * 0.5;
      tile->record_update(x.to(where), d.to(where));
      tile->apply_updates(0.1f);
    }
}

void check_pulsed_parity(const RPUConfig& config) {
  const std::int64_t in = 30, out = 12;
  auto make = [&] {
    Generator gen(50);
    return std::make_shared<AnalogLinear>(in, out, true, config, gen);
  };
  auto on_cpu = make(), on_gpu = make();
  std::vector<std::vector<float>> before;  // copies: the state dict shares the tiles' storage
  for (const auto& [name, t] : on_cpu->state_dict())
    before.push_back(t.dtype() == DType::Float32 ? t.to_vector() : std::vector<float>{});
  on_gpu->cuda();
  pulse_three_steps(*on_cpu, Device::cpu());
  pulse_three_steps(*on_gpu, Device::cuda());
  const auto a = on_gpu->state_dict(), b = on_cpu->state_dict();
  REQUIRE(a.size() == b.size());
  bool weights_moved = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].second.device().is_cuda());
    CHECK(same_bits(a[i].second, b[i].second));
    if (a[i].first == "tile_0_0") weights_moved |= b[i].second.to_vector() != before[i];
  }
  CHECK(weights_moved);  // the steps did pulse (key "tile_0_0": the tile's weights)
  // Reseeded on the GPU: the hidden parameters drawn again, as on the CPU.
  on_cpu->analog_tiles().at(0)->reseed(77);
  on_gpu->analog_tiles().at(0)->reseed(77);
  const auto c = on_gpu->state_dict(), e = on_cpu->state_dict();
  for (std::size_t i = 0; i < c.size(); ++i) {
    INFO(c[i].first);
    CHECK(c[i].second.device().is_cuda());
    CHECK(same_bits(c[i].second, e[i].second));
  }
}
}  // namespace

TEST_CASE("A pulsed layer trained 3 steps on CUDA equals its CPU twin bit for bit", "[cuda][modules][pulsed]") {
  SECTION("SoftBoundsDevice with decay and diffusion (cuda::pulsed_update, pulsed_post_update)") {
    SingleRPUConfig config;
    config.device = {{"type", "SoftBoundsDevice"}, {"lifetime", 50.0}, {"diffusion", 0.01}};
    check_pulsed_parity(config);
  }
  SECTION("SoftBoundsDevice with write noise (through the host)") {
    SingleRPUConfig config;
    config.device = {{"type", "SoftBoundsDevice"}, {"write_noise_std", 0.5}};
    check_pulsed_parity(config);
  }
  SECTION("TransferCompound (through the host)") {
    UnitCellRPUConfig config;
    config.device = {{"type", "TransferCompound"},
                     {"unit_cell_devices", {{{"type", "SoftBoundsDevice"}}, {{"type", "SoftBoundsDevice"}}}}};
    check_pulsed_parity(config);
  }
}

TEST_CASE("A pulsed (SingleRPUConfig) layer trained by AnalogSGD survives to(cuda) and back bit for bit",
          "[cuda][modules][pulsed]") {
  // The device's hidden parameters are tile-state buffers; nothing may keep a
  // pointer to their old storage.
  const SingleRPUConfig config;
  const std::int64_t in = 30, out = 12, n = 8;
  struct Pulsed {
    std::shared_ptr<AnalogLinear> layer;
    std::unique_ptr<AnalogSGD> optimizer;
  };
  Generator data(31);
  const Tensor x = data.normal({n, in}), target = data.normal({n, out});
  auto make = [&] {
    Generator gen(30);
    Pulsed p;
    p.layer = std::make_shared<AnalogLinear>(in, out, true, config, gen);
    p.optimizer = std::make_unique<AnalogSGD>(p.layer->parameters(), p.layer->analog_tiles(), 0.1);
    return p;
  };
  auto step = [&](Pulsed& p) {
    p.optimizer->zero_grad();
    sum((p.layer->forward(x) - target) * (p.layer->forward(x) - target)).backward();
    p.optimizer->step();
    p.layer->post_update_step();
  };
  Pulsed moved = make(), twin = make();
  step(moved);
  step(twin);
  moved.layer->cuda();
  moved.optimizer->to(Device::cuda());
  for (const auto& [name, t] : moved.layer->state_dict()) {
    INFO(name);
    CHECK(t.device().is_cuda());
  }
  moved.layer->cpu();
  moved.optimizer->to(Device::cpu());
  step(moved);
  step(twin);
  const auto a = moved.layer->state_dict(), b = twin.layer->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(same_bits(a[i].second, b[i].second));
  }
  CHECK(same_bits(moved.layer->forward(x), twin.layer->forward(x)));
}

TEST_CASE("Initialisers fill a CUDA tensor with the CPU's numbers", "[cuda][modules]") {
  Generator g_cpu(41), g_gpu(41);
  Tensor w_cpu = Tensor::empty({20, 30}), b_cpu = Tensor::empty({20});
  Tensor w_gpu = Tensor::empty({20, 30}, DType::Float32, Device::cuda());
  Tensor b_gpu = Tensor::empty({20}, DType::Float32, Device::cuda());
  default_layer_init_(w_cpu, b_cpu, g_cpu);
  default_layer_init_(w_gpu, b_gpu, g_gpu);
  CHECK(w_gpu.device().is_cuda());
  CHECK(same_bits(w_gpu, w_cpu));
  CHECK(same_bits(b_gpu, b_cpu));
  // Both generators moved on by the same draws.
  CHECK(g_gpu.next_u64() == g_cpu.next_u64());
}

TEST_CASE("drift_compensate on CUDA: the CPU's law, bit for bit (global and per-output alpha)", "[cuda][programming]") {
  const std::size_t rows = 7, cols = 13;
  Generator gen(61);
  const std::vector<float> y = gen.normal({std::int64_t(rows), std::int64_t(cols)}).to_vector();
  for (const std::size_t alpha_size : {std::size_t(1), cols}) {
    INFO("alpha_size " << alpha_size);
    const std::vector<float> alpha = (gen.uniform({std::int64_t(alpha_size)}) + 0.5).to_vector();
    std::vector<float> expected(y);
    for (std::size_t k = 0; k < y.size(); ++k)
      expected[k] = drift_compensated(y[k], alpha.data(), std::int64_t(alpha_size), std::int64_t(k % cols));
    test::DeviceVector dy(y), dalpha(alpha);
    cuda::drift_compensate(dy.ptr, rows, cols, dalpha.ptr, alpha_size);
    const std::vector<float> got = dy.host();
    CHECK(std::memcmp(got.data(), expected.data(), y.size() * sizeof(float)) == 0);
    // Column 3 of row 2 really took its own α (or the one global α).
    CHECK(got[2 * cols + 3] == y[2 * cols + 3] * alpha[alpha_size == 1 ? 0 : 3]);
  }
}

// ---- Steady-state training allocates nothing new on the GPU -----------------

namespace {

// cudaMalloc calls (block-cache misses) made by steps 3..`steps` of Adam
// (lr 1e-3) training lenet5 on CUDA, batch 8 of new normal inputs each step,
// digital or converted onto `config`'s tiles. Steps 1 and 2 create the
// optimizer's moments and fill the cache with every scratch size a step
// needs; after them each step frees what the next one asks for again.
std::size_t allocations_after_warmup(const RPUConfig* config, int steps) {
  cuda::release_cached_memory();  // the blocks earlier tests left: every block below is this run's
  Generator gen(41);
  std::shared_ptr<Module> model = build_model("lenet5", gen);
  if (config) model = convert_to_analog(model, *config, gen);
  model->to(Device::cuda());
  model->train();
  Adam optimizer(model->parameters(), 1e-3);
  Generator data(42);
  const std::size_t before = cuda::raw_device_allocations();
  std::size_t after_warmup = 0;
  for (int step = 1; step <= steps; ++step) {
    const Tensor x = data.normal({8, 1, 28, 28}).to(Device::cuda());
    const Tensor labels =
        Tensor::from_vector(std::vector<std::int32_t>{3, 0, 9, 5, 1, 7, 2, 8}, {8}).to(Device::cuda());
    optimizer.zero_grad();
    const Tensor loss = cross_entropy(model->forward(x), labels);
    loss.backward();
    optimizer.step();
    model->post_update_step();
    CHECK(std::isfinite(loss.item()));
    if (step == 2) after_warmup = cuda::raw_device_allocations();
  }
  CHECK(after_warmup > before);  // the counter sees the warm-up's new blocks (activations, moments)
  return cuda::raw_device_allocations() - after_warmup;
}

}  // namespace

TEST_CASE("Steady-state training of lenet5 on CUDA allocates no new device blocks (digital and HWA)",
          "[cuda][modules]") {
  SECTION("digital") { CHECK(allocations_after_warmup(nullptr, 6) == 0); }
  SECTION("hardware-aware (InferenceRPUConfig)") {
    const RPUConfig config = InferenceRPUConfig{};
    CHECK(allocations_after_warmup(&config, 6) == 0);
  }
}

// aihwkit's use_indexed=None: explicit unfolding on the CPU, implicit
// indexing on CUDA. An unset layer moved to the GPU runs its eval batch in
// chunks exactly as one set to true (same chunks, same noise draws: the same
// bits), and not as one set to false (one call draws the whole batch's
// output noise, out_noise 0.06, differently). Moved back it unfolds again.
TEST_CASE("Analog conv: use_indexed unset runs indexed on CUDA and explicit on the CPU, as aihwkit", "[cuda][modules]") {
  Generator gen(301);
  Conv2d digital(3, 8, 3, gen, ConvOptions{.padding = {1, 1}});
  const InferenceRPUConfig config;
  auto make = [&](std::optional<bool> indexed) {
    Generator g(302);
    auto layer = AnalogConvNd::from_digital(digital, config, g);
    layer->set_use_indexed(indexed, 2 * 27 * 256);  // 27 inputs x 256 patches per image: 2 images per chunk
    layer->eval();
    return layer;
  };
  auto unset = make(std::nullopt), indexed = make(true), unfolded = make(false);
  CHECK_FALSE(unset->use_indexed());  // on the CPU
  for (auto* layer : {unset.get(), indexed.get(), unfolded.get()}) layer->to(Device::cuda());
  CHECK(unset->use_indexed());
  CHECK(indexed->use_indexed());
  CHECK_FALSE(unfolded->use_indexed());
  CHECK(unset->config()["use_indexed"] == nullptr);  // unset stays unset in an architecture
  Generator data(303);
  const Tensor x = data.normal({10, 3, 16, 16}).to(Device::cuda());
  NoGradGuard no_grad;
  const std::vector<float> y_unset = (*unset)(x).to(Device::cpu()).to_vector();
  const std::vector<float> y_indexed = (*indexed)(x).to(Device::cpu()).to_vector();
  const std::vector<float> y_unfolded = (*unfolded)(x).to(Device::cpu()).to_vector();
  REQUIRE(y_unset.size() == std::size_t(10 * 8 * 256));
  CHECK(y_unset == y_indexed);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < y_unset.size(); ++i) differ += y_unset[i] != y_unfolded[i];
  CHECK(differ > y_unset.size() / 2);
  unset->to(Device::cpu());
  CHECK_FALSE(unset->use_indexed());
}
