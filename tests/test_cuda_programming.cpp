// Programming and drift of analog tiles on the GPU (a real GPU in test_cuda,
// the host emulation in test_cuda_emulated): a layer moved to CUDA programs
// and drifts there through the CUDA twins of its noise model and converter
// (AnalogTile::programs_on_gpu), and its programming state follows a CPU twin
// for every built-in noise model, at 1 s, 1 day and 1 year, with each drift
// compensation; a plug-in model without kernels falls back to the host.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/generator.h"
#include "layers/config/rpu_config.h"
#include "layers/devices/noise_model.h"
#include "layers/modules/analog_linear.h"
#include "layers/tiles/analog_tile.h"
#include "layers/tiles/tile_programming.h"
#include "tests/cuda_test_util.h"
#include "tests/programming_parity.h"

using namespace aimc;
using json = nlohmann::json;

namespace {

struct Case {
  std::string name;
  json noise_model, compensation;
  bool reconvert = false;
};

// Programs a 24x32 layer (one tile; InferenceRPUConfig's forward, so the
// readout carries output noise and ADC steps) on the CPU and on the GPU,
// then drifts both to 1 s, 1 day and 1 year, comparing after each step.
void check_case(const Case& c) {
  INFO(c.name);
  InferenceRPUConfig config;
  config.noise_model = c.noise_model;
  config.drift_compensation = c.compensation;
  config.reconvert_weights_before_drift = c.reconvert;
  const std::int64_t in = 32, out = 24;
  auto make = [&] {
    Generator gen(31);
    auto layer = std::make_shared<AnalogLinear>(in, out, true, config, gen);
    layer->eval();
    return layer;
  };
  auto on_cpu = make(), on_gpu = make();
  on_gpu->cuda();
  AnalogTile& tile = *on_gpu->analog_tiles().at(0);
  REQUIRE(tile.programs_on_gpu());
  auto check_layer_state = [&](AnalogLinear& gpu, AnalogLinear& cpu) {
    test::check_state_parity(gpu.state_dict(), cpu.state_dict());
  };
  on_cpu->program_analog_weights();
  on_gpu->program_analog_weights();
  REQUIRE(tile.programmed());
  for (const auto& [name, t] : tile.programming()->buffers()) {
    INFO(name);
    CHECK(t.device().is_cuda());  // made on the host, moved before the programming ran
  }
  check_layer_state(*on_gpu, *on_cpu);
  std::vector<float> w_first;
  for (double t : {1.0, 86400.0, 31536000.0}) {
    INFO("t_inference " << t);
    on_cpu->drift_analog_weights(t);
    on_gpu->drift_analog_weights(t);
    CHECK(tile.programming()->t_inference() == t);
    check_layer_state(*on_gpu, *on_cpu);
    const std::vector<float> w = on_gpu->analog_tiles().at(0)->programming()->buffers().at(2).second.to_vector();
    if (w_first.empty())
      w_first = w;
    else
      CHECK(w != w_first);  // fresh read noise (and drift) at every time: the comparison is not of constants
  }
  // The tile's eval forward reads the drifted weights and multiplies by alpha on either side.
  Generator data(32);
  const std::int64_t n = 6;
  const Tensor x = data.normal({n, in}), x_gpu = x.to(Device::cuda());
  Tensor y = Tensor::empty({n, out}), y_gpu = Tensor::empty({n, out}, DType::Float32, Device::cuda());
  on_cpu->analog_tiles().at(0)->forward(x.data<float>(), n, y.data<float>(), /*is_test=*/true);
  tile.forward(x_gpu.data<float>(), n, y_gpu.data<float>(), /*is_test=*/true);
  test::check_tile_parity(y_gpu.to_vector(), y.to_vector());
}

}  // namespace

TEST_CASE("Programming and drift on CUDA follow the CPU for every noise model, converter and compensation",
          "[cuda][tiles][programming]") {
  const json global{{"type", "GlobalDriftCompensation"}};
  const std::vector<Case> cases{
      {"PCMLikeNoiseModel, SinglePair, global", {{"type", "PCMLikeNoiseModel"}}, global},
      {"PCMLikeNoiseModel, DualPair, per column, reconverted",
       {{"type", "PCMLikeNoiseModel"},
        {"g_converter", {{"type", "DualPairConductanceConverter"}, {"f_lst", {1.0, 3.0}}}}},
       {{"type", "PerColumnDriftCompensation"}},
       true},
      {"CustomDriftPCMLikeNoiseModel, CustomPair, exact reference",
       {{"type", "CustomDriftPCMLikeNoiseModel"},
        {"custom_drift_model",
         {{"g_lst", {0.0, 10.0, 25.0}}, {"nu_mean_lst", {0.08, 0.06, 0.03}}, {"nu_std_lst", {0.01, 0.02, 0.01}}}},
        {"g_converter",
         {{"type", "CustomPairConductanceConverter"},
          {"f_lst", {1.0}},
          {"g_lst", {{0.0, 0.0, 0.0, 12.5, 25.0}, {25.0, 12.5, 0.0, 0.0, 0.0}}}}}},
       {{"type", "GlobalDriftCompensationWithExactReference"}}},
      {"ReRamCMONoiseModel, SingleDevice, global", {{"type", "ReRamCMONoiseModel"}}, global},
      {"GenericNoiseModel, NPair, global",
       {{"type", "GenericNoiseModel"},
        {"drift_mean", {{"coeff", {0.05, -0.01}}, {"min", 0.02}, {"max", 0.12}}},
        {"g_converter", {{"type", "NPairConductanceConverter"}, {"f_lst", {1.0, 2.0, 4.0}}, {"g_min", 1}}}},
       global},
      {"StateIndependentNoiseModel, SinglePair, per column", {{"type", "StateIndependentNoiseModel"}},
       {{"type", "PerColumnDriftCompensation"}}},
      {"PCMLikeNoiseModel, no compensation", {{"type", "PCMLikeNoiseModel"}}, json()},
  };
  for (const Case& c : cases) check_case(c);
}

namespace {
// A plug-in model without CUDA twins: g_prog = g_T + 0.5·ξ, ν = 0, g = g_prog + 0.1·ξ µS.
class HostOnlyNoiseModel : public NoiseModel {
 public:
  HostOnlyNoiseModel() : NoiseModel(make_conductance_converter(nullptr, "g_converter")) {}
  std::string type() const override { return "TestHostOnlyNoiseModel"; }
  json to_json() const override { return {{"type", type()}, {"g_converter", converter_json()}}; }
  void program(const float* g_target, const float* xi, std::int64_t n, float* g_prog) const override {
    for (std::int64_t i = 0; i < n; ++i) g_prog[i] = g_target[i] + 0.5f * xi[i];
  }
  void drift_coefficients(const float*, const float*, std::int64_t n, float* nu) const override {
    for (std::int64_t i = 0; i < n; ++i) nu[i] = 0.f;
  }
  void drift(const float* g_prog, const float*, double, const float* xi, std::int64_t n, float* g) const override {
    for (std::int64_t i = 0; i < n; ++i) g[i] = g_prog[i] + 0.1f * xi[i];
  }
};
}  // namespace

TEST_CASE("A noise model without CUDA kernels programs and drifts a GPU tile through the host",
          "[cuda][tiles][programming]") {
  static const bool registered = [] {
    register_noise_model("TestHostOnlyNoiseModel",
                         [](const json&, const std::string&) { return std::make_shared<HostOnlyNoiseModel>(); });
    return true;
  }();
  REQUIRE(registered);
  InferenceRPUConfig config;
  config.noise_model = json{{"type", "TestHostOnlyNoiseModel"}};
  auto make = [&] {
    Generator gen(41);
    auto layer = std::make_shared<AnalogLinear>(20, 12, true, config, gen);
    layer->eval();
    return layer;
  };
  auto on_cpu = make(), on_gpu = make();
  on_gpu->cuda();
  AnalogTile& tile = *on_gpu->analog_tiles().at(0);
  CHECK_FALSE(tile.programs_on_gpu());
  const auto model = make_noise_model(config.noise_model, "nm");
  CHECK_FALSE(model->runs_on_gpu());
  CHECK_THROWS_AS(model->drift_cuda(nullptr, nullptr, 1.0, nullptr, 0, nullptr), DeviceError);
  for (auto* layer : {on_cpu.get(), on_gpu.get()}) {
    layer->program_analog_weights();
    layer->drift_analog_weights(100.0);
  }
  // The host path: the CPU's code on a host copy, every bit the same.
  const auto a = on_gpu->state_dict(), b = on_cpu->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].second.device().is_cuda());
    const Tensor g = a[i].second.to(Device::cpu()).contiguous(), c = b[i].second.contiguous();
    CHECK(std::memcmp(g.raw_data(), c.raw_data(), static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype())) == 0);
  }
}
