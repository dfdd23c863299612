// CUDA parity: device buffers, host/device copies, fill and axpy against the
// CPU. Exits 77 (skipped under meson) when no GPU is usable or CUDA is not
// built in.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "engine/generator.h"
#include "kernels/cpu/random_fill.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/cuda_api.h"
#include "tests/cuda_test_util.h"
#include "layers/devices/conductance_converter.h"
#include "layers/devices/drift_compensation.h"
#include "layers/devices/noise_model.h"
#include "layers/devices/pcm_like_noise_model.h"
#include "engine/runtime.h"
#include "engine/tensor.h"

using namespace aimc;
using aimc::test::DeviceVector;
using aimc::test::check_close;

TEST_CASE("libaimc's CUDA backend table holds the kernels this program calls directly") {
  // One copy of the kernels: the library libaimc loaded (or, emulated, the
  // registration main installed) is the one linked into this test.
  const cuda::Backend& b = cuda::backend();
  CHECK(b.gemm == &cuda::gemm);
  CHECK(b.device_malloc == &cuda::device_malloc);
  CHECK(b.analog_mvm_forward == &cuda::analog_mvm_forward);
  CHECK(b.weight_remap == &cuda::weight_remap);
}

TEST_CASE("host -> device -> host round trip keeps every bit") {
  Generator g(1);
  Tensor h = g.normal({1000, 37});
  Tensor d = h.to(Device::cuda());
  CHECK(d.device().is_cuda());
  Tensor back = d.to(Device::cpu());
  CHECK(back.to_vector() == h.to_vector());
  Tensor d2 = d.clone();  // device -> device
  CHECK(d2.to_vector() == h.to_vector());
}

TEST_CASE("fill and axpy on CUDA equal the CPU results") {
  Generator g(2);
  const Tensor x = g.normal({4097});
  const Tensor y = g.normal({4097});
  Tensor cpu_y = y.clone();
  cpu_y.add_(x, 0.37);
  Tensor gpu_y = y.to(Device::cuda());
  gpu_y.add_(x.to(Device::cuda()), 0.37);
  const auto a = cpu_y.to_vector(), b = gpu_y.to_vector();
  REQUIRE(a.size() == b.size());
  // fmaf on the GPU vs a*x + y on the CPU may differ by one rounding.
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).margin(1e-6).epsilon(1e-6));

  Tensor f = Tensor::full({1000}, 3.25, DType::Float32, Device::cuda());
  for (float v : f.to_vector()) CHECK(v == 3.25f);
  f.mul_(2.0);
  for (float v : f.to_vector()) CHECK(v == 6.5f);
}

TEST_CASE("unsupported CUDA ops raise DeviceError") {
  // zeros() would fill on the device itself: allocate, then try the op.
  Tensor d = Tensor::empty({4}, DType::Float64, Device::cuda());
  CHECK_THROWS_AS(d.fill_(1.0), DeviceError);
}


TEST_CASE("device-model normals on CUDA have the bits of cpu::fill_normal") {
  const std::size_t n = 10001;
  std::vector<float> cpu_z(n);
  cpu::fill_normal(77, 4 * 16 + 4, 5, static_cast<std::int64_t>(n), cpu_z.data());
  DeviceVector z(n);
  cuda::fill_normal(77, 4 * 16 + 4, 5, n, z.ptr);
  CHECK(z.host() == cpu_z);
}

TEST_CASE("PCM programming, drift exponents and drift + read noise on CUDA equal the CPU laws") {
  const PCMLikeNoiseModel pcm;
  const std::size_t n = 20000;
  std::vector<float> g_t(n), xi1(n), xi2(n), xi3(n);
  for (std::size_t i = 0; i < n; ++i) g_t[i] = 25.f * static_cast<float>(i % 1000) / 999.f;
  cpu::fill_normal(1, 1, 0, n, xi1.data());
  cpu::fill_normal(1, 2, 0, n, xi2.data());
  cpu::fill_normal(1, 3, 0, n, xi3.data());
  std::vector<float> g_prog(n), nu(n), g(n);
  pcm.program(g_t.data(), xi1.data(), n, g_prog.data());
  pcm.drift_coefficients(g_t.data(), xi2.data(), n, nu.data());
  pcm.drift(g_prog.data(), nu.data(), 86400.0, xi3.data(), n, g.data());
  DeviceVector d_gt(g_t), d_xi1(xi1), d_xi2(xi2), d_xi3(xi3), d_prog(n), d_nu(n), d_g(n);
  cuda::pcm_program(pcm.law(), d_gt.ptr, n, d_xi1.ptr, d_xi2.ptr, d_prog.ptr, d_nu.ptr);
  cuda::pcm_drift(pcm.law(), pcm.drift_time(86400.0), d_prog.ptr, d_nu.ptr, d_xi3.ptr, n, d_g.ptr);
  // Double-precision exp / log / pow may differ in the last double bit between
  // libm and CUDA; after rounding to float the values agree to 1e-6.
  const auto a = d_prog.host(), b = d_nu.host(), c = d_g.host();
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(a[i] == Approx(g_prog[i]).epsilon(1e-6).margin(1e-6));
    CHECK(b[i] == Approx(nu[i]).epsilon(1e-6).margin(1e-9));
    CHECK(c[i] == Approx(g[i]).epsilon(1e-6).margin(1e-6));
  }
}

TEST_CASE("ReRAM-CMO laws and custom drift tables on CUDA equal the CPU models") {
  const std::size_t n = 20000;
  std::vector<float> g_t(n), xi(2 * n);
  for (std::size_t i = 0; i < n; ++i) g_t[i] = 9.f + 79.f * static_cast<float>(i % 1000) / 999.f;
  cpu::fill_normal(2, 1, 0, 2 * n, xi.data());
  // ReRAM-CMO with its defaults (2 % acceptance, [9, 88.2] µS), at one day.
  auto reram = make_noise_model({{"type", "ReRamCMONoiseModel"}}, "test");
  const double t = 86400.0, log_t = std::log(t);
  const ReRamCmoLaw law;
  const ReRamCmoDriftTime dt{true, -0.08900206 * log_t, 0.04201137 * log_t + 0.41183342,
                             0.0277316483 * read_noise_time_factor(t, 1e-6)};
  std::vector<float> g_prog(n), g(n);
  reram->program(g_t.data(), xi.data(), n, g_prog.data());
  reram->drift(g_prog.data(), nullptr, t, xi.data(), n, g.data());
  DeviceVector d_gt(g_t), d_xi(xi), d_prog(n), d_g(n);
  cuda::reram_program(law, d_gt.ptr, n, d_xi.ptr, d_prog.ptr);
  cuda::reram_drift(law, dt, d_prog.ptr, d_xi.ptr, n, d_g.ptr);
  const auto a = d_prog.host(), b = d_g.host();
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(a[i] == Approx(g_prog[i]).epsilon(1e-6));
    CHECK(b[i] == Approx(g[i]).epsilon(1e-5));
  }
  // Custom drift tables.
  const nlohmann::json tables = {{"g_lst", {0.0, 10.0, 25.0}}, {"nu_mean_lst", {0.08, 0.06, 0.03}},
                                 {"nu_std_lst", {0.01, 0.02, 0.005}}};
  auto custom = make_noise_model({{"type", "CustomDriftPCMLikeNoiseModel"}, {"custom_drift_model", tables}}, "test");
  DriftTable table;
  table.points = 3;
  const float g_pts[] = {0.f, 10.f, 25.f}, m_pts[] = {0.08f, 0.06f, 0.03f}, s_pts[] = {0.01f, 0.02f, 0.005f};
  for (int k = 0; k < 3; ++k) {
    table.g[k] = g_pts[k];
    table.mean[k] = m_pts[k];
    table.std[k] = s_pts[k];
  }
  std::vector<float> g25(n), nu(n);
  for (std::size_t i = 0; i < n; ++i) g25[i] = 30.f * static_cast<float>(i % 1000) / 999.f;  // past the table end too
  custom->drift_coefficients(g25.data(), xi.data(), n, nu.data());
  DeviceVector d_g25(g25), d_nu(n);
  cuda::table_drift_exponent(table, 1.0, d_g25.ptr, n, d_xi.ptr, d_nu.ptr);
  const auto c = d_nu.host();
  for (std::size_t i = 0; i < n; ++i) CHECK(c[i] == Approx(nu[i]).epsilon(1e-6).margin(1e-9));
}

TEST_CASE("Conductance converters and the drift-compensation readout on CUDA equal the CPU") {
  const std::size_t n = 5000;
  std::vector<float> w(n);
  cpu::fill_normal(3, 1, 0, n, w.data());
  DeviceVector d_w(w);
  for (const nlohmann::json& j : {nlohmann::json{{"type", "SinglePairConductanceConverter"}},
                                  nlohmann::json{{"type", "DualPairConductanceConverter"}, {"f_lst", {1.0, 3.0}}},
                                  nlohmann::json{{"type", "NPairConductanceConverter"},
                                                 {"f_lst", {1.0, 2.0, 4.0}},
                                                 {"g_min", 1.0}}}) {
    INFO(j.dump());
    auto conv = make_conductance_converter(j, "test");
    std::vector<float> g(n * conv->num_devices()), back(n);
    float s = 0.f;
    conv->to_conductances(w.data(), n, g.data(), &s);
    conv->to_weights(g.data(), n, &s, back.data());
    PairLaw law;
    law.pairs = conv->num_devices() / 2;
    const std::vector<float> f = j.value("f_lst", std::vector<float>{1.f});
    for (int k = 0; k < law.pairs; ++k) law.f[k] = f[k];
    law.g_min = conv->g_min();
    law.g_max = conv->g_max();
    DeviceVector d_g(g.size()), d_back(n);
    cuda::pair_to_conductances(law, s, d_w.ptr, n, d_g.ptr);
    cuda::pair_to_weights(law, s, d_g.ptr, n, d_back.ptr);
    check_close(d_g.host(), g);
    check_close(d_back.host(), back);
  }
  // CustomPair tables (the conductances of 5 evenly spaced weights).
  auto custom = make_conductance_converter({{"type", "CustomPairConductanceConverter"},
                                            {"f_lst", {1.0}},
                                            {"g_lst", {{0.0, 0.0, 0.0, 12.5, 25.0}, {25.0, 12.5, 0.0, 0.0, 0.0}}}},
                                           "test");
  std::vector<float> gc(2 * n);
  float sc = 0.f;
  custom->to_conductances(w.data(), n, gc.data(), &sc);
  PairTables tables;
  tables.devices = 2;
  tables.points = 5;
  const float plus[] = {0, 0, 0, 12.5f, 25}, minus[] = {25, 12.5f, 0, 0, 0};
  for (int p = 0; p < 5; ++p) {
    tables.g[0][p] = plus[p];
    tables.g[1][p] = minus[p];
  }
  float w_max = 0.f;
  for (float v : w) w_max = std::max(w_max, std::abs(v));
  DeviceVector d_gc(2 * n);
  cuda::table_to_conductances(tables, w_max, d_w.ptr, n, d_gc.ptr);
  check_close(d_gc.host(), gc);
  // Single device (ReRAM-CMO's converter).
  auto single = make_conductance_converter({{"type", "SingleDeviceConductanceConverter"}}, "test");
  std::vector<float> g1(n), back1(n), params(2);
  single->to_conductances(w.data(), n, g1.data(), params.data());
  single->to_weights(g1.data(), n, params.data(), back1.data());
  DeviceVector d_g1(n), d_back1(n);
  cuda::single_to_conductances(single->g_min(), params[0], params[1], d_w.ptr, n, d_g1.ptr);
  cuda::single_to_weights(single->g_min(), params[0], params[1], d_g1.ptr, n, d_back1.ptr);
  check_close(d_g1.host(), g1);
  check_close(d_back1.host(), back1);
  // Readout: per-column sums of |Y| in double.
  const std::size_t in = 64, out = 40;
  std::vector<float> y(in * out);
  cpu::fill_normal(4, 1, 0, y.size(), y.data());
  auto per_column = make_drift_compensation({{"type", "PerColumnDriftCompensation"}}, "test");
  const std::vector<float> m = per_column->readout(y.data(), in, out);
  DeviceVector d_y(y);
  double* d_sums = static_cast<double*>(cuda::device_malloc(out * sizeof(double)));
  cuda::column_abs_sums(d_y.ptr, in, out, d_sums);
  std::vector<double> sums(out);
  cuda::synchronize();
  cuda::copy_device_to_host(sums.data(), d_sums, out * sizeof(double));
  cuda::device_free(d_sums);
  for (std::size_t j = 0; j < out; ++j) CHECK(static_cast<float>(sums[j] / in) == m[j]);
}

int main(int argc, char* argv[]) {
#ifdef AIMC_CUDA_EMULATION  // the emulated "device" (tests/cuda_emulation) is always there
  cuda::use_backend(&aimc_cuda_register);
#else
  if (!cuda_available()) {
    std::printf("CUDA tests skipped: no usable GPU\n");
    return 77;
  }
#endif
  return Catch::Session().run(argc, argv);
}
