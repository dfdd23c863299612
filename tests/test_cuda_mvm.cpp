// CUDA parity of the tile kernels: the analog MVM (kernels/cuda/analog_mvm.cu
// against kernels/cpu/analog_mvm.cpp), the per-line values, the GEMM, the
// lightning forward (kernels/cuda/lightning.cu against layers/tiles/
// lightning_forward.cpp) and the input range (kernels/cuda/input_range.cu).
// Part of the test_cuda executable (main in test_cuda.cpp: exit 77 without a
// GPU).
//
// Tolerance: both devices draw the same Philox noise and run the same
// per-element code (kernels/analog/periphery.h), but the crossbar GEMM sums in
// a different order (cuBLAS vs Eigen) and the compilers fuse multiply-adds
// differently. So a value near a rounding boundary can land one ADC step away,
// and a row with an output right at the bound can pass the bound test in a
// different bound-management pass (it is then re-run with other noise). The
// MVM checks therefore compare row by row: every output within 1e-4 relative
// (+ 1e-5 of the output range) except in at most one row, whose outputs must
// stay within 10 % of the range, and the pass counts may differ by one. A real
// bug (wrong noise, wrong mode) moves most rows and fails this. The lightning
// forward has no bound management: 99 % of outputs tight, all within 4 % of
// the range (three ADC steps of the widest input range).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cuda/cuda_api.h"
#include "layers/tiles/input_range.h"
#include "layers/tiles/lightning_forward.h"
#include "layers/tiles/split.h"
#include "tests/cuda_test_util.h"

using namespace aimc;
using aimc::test::DeviceVector;
using aimc::test::max_abs;

namespace {

std::vector<float> normal_vector(std::size_t n, std::uint64_t seed, float scale) {
  Generator g(seed);
  std::vector<float> v(n);
  g.normal(v.data(), static_cast<std::int64_t>(n), 0.f, scale);
  return v;
}

bool tight(float gpu, float cpu, float range) { return std::abs(gpu - cpu) <= 1e-4f * std::abs(cpu) + 1e-5f * range; }

// Element-wise: `tight_fraction` (99 %) tight, every one within
// `loose_fraction` of the range.
void check_parity(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::string& label,
                  float loose_fraction, double tight_fraction = 0.99) {
  INFO(label);
  REQUIRE(gpu.size() == cpu.size());
  const float range = max_abs(cpu);
  std::size_t close = 0;
  float worst = 0.f;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    worst = std::max(worst, std::abs(gpu[i] - cpu[i]));
    if (tight(gpu[i], cpu[i], range)) ++close;
  }
  INFO("worst difference " << worst << ", range " << range << ", tight " << close << " of " << cpu.size());
  CHECK(worst <= loose_fraction * range + 1e-6f);
  CHECK(static_cast<double>(close) >= tight_fraction * static_cast<double>(cpu.size()));
}

// Row by row (rows of `len` outputs): all tight but at most one row, which
// stays within 10 % of the range (see the top of the file).
void check_rows(const std::vector<float>& gpu, const std::vector<float>& cpu, std::int64_t len,
                const std::string& label) {
  INFO(label);
  REQUIRE(gpu.size() == cpu.size());
  const float range = max_abs(cpu);
  int rows_off = 0;
  float worst = 0.f;
  for (std::size_t r = 0; r * len < cpu.size(); ++r) {
    bool off = false;
    for (std::int64_t j = 0; j < len; ++j) {
      const std::size_t i = r * len + j;
      worst = std::max(worst, std::abs(gpu[i] - cpu[i]));
      off = off || !tight(gpu[i], cpu[i], range);
    }
    rows_off += off ? 1 : 0;
  }
  INFO("rows off " << rows_off << ", worst difference " << worst << ", range " << range);
  CHECK(rows_off <= 1);
  CHECK(worst <= 0.1f * range + 1e-6f);
}

struct Case {
  std::string name;
  IOParameters io;
  bool backward = false;
  bool per_line = false;  // per-line nonlinearity, noise and offset values (and the slope gain)
  float running = -1.f;   // AVERAGE_ABS_MAX running value on entry (< 0: never set)
};

// Runs one case on both devices and compares outputs, stats and the
// AVERAGE_ABS_MAX running value.
void run_case(const Case& c) {
  const std::int64_t out = 37, in = 53, n = 64;
  const std::int64_t in_len = c.backward ? out : in, out_len = c.backward ? in : out;
  const std::vector<float> w = normal_vector(static_cast<std::size_t>(out * in), 11, 0.3f);
  // Large inputs, so the bound test fails on some rows and BM runs passes.
  std::vector<float> x = normal_vector(static_cast<std::size_t>(n * in_len), 12, 2.f);
  for (std::int64_t j = 0; j < in_len; ++j) x[static_cast<std::size_t>(5 * in_len + j)] = 0.f;  // an all-zero row
  const cpu::AnalogRandom rnd{1234, 7 * 16 + 1, 99};
  std::vector<float> nl(static_cast<std::size_t>(out_len)), sigma(nl.size()), v_off(nl.size());
  std::vector<float> asym(static_cast<std::size_t>(c.io.w_read_asymmetry_dtod > 0.f ? out * in : 1));
  cpu::AnalogLineValues lines;
  if (c.per_line) {
    cpu::draw_analog_line_values(c.io, out_len, {1234, 7 * 16 + 2, 0}, nl.data(), sigma.data(), v_off.data());
    lines.out_nonlinearity = nl.data();
    lines.out_noise = sigma.data();
    lines.v_offset = v_off.data();
    lines.slope_gain = cpu::analog_slope_gain(c.io, nl.data(), out_len);
  }
  if (c.io.w_read_asymmetry_dtod > 0.f) {
    cpu::draw_weight_read_asymmetry(c.io, out * in, {1234, 7 * 16 + 2, 1 << 20}, asym.data());
    lines.w_asymmetry = asym.data();
  }
  std::vector<float> y(static_cast<std::size_t>(n * out_len));
  float running_cpu = c.running;
  float running_gpu = running_cpu;
  const cpu::AnalogMvmStats s_cpu =
      c.backward ? cpu::analog_mvm_backward(c.io, w.data(), out, in, x.data(), n, y.data(), lines, rnd, &running_cpu)
                 : cpu::analog_mvm_forward(c.io, w.data(), out, in, x.data(), n, y.data(), lines, rnd, &running_cpu);

  DeviceVector d_w(w), d_x(x), d_y(y.size()), d_nl(nl), d_sigma(sigma), d_v_off(v_off), d_asym(asym);
  cpu::AnalogLineValues d_lines;
  if (c.per_line) {
    d_lines.out_nonlinearity = d_nl.ptr;
    d_lines.out_noise = d_sigma.ptr;
    d_lines.v_offset = d_v_off.ptr;
    d_lines.slope_gain = lines.slope_gain;  // a host number, computed once per chip
  }
  if (lines.w_asymmetry) d_lines.w_asymmetry = d_asym.ptr;
  const cpu::AnalogMvmStats s_gpu =
      c.backward ? cuda::analog_mvm_backward(c.io, d_w.ptr, out, in, d_x.ptr, n, d_y.ptr, d_lines, rnd, &running_gpu)
                 : cuda::analog_mvm_forward(c.io, d_w.ptr, out, in, d_x.ptr, n, d_y.ptr, d_lines, rnd, &running_gpu);
  INFO(c.name);
  CHECK(s_gpu.blocks == s_cpu.blocks);
  CHECK(std::abs(s_gpu.passes - s_cpu.passes) <= 1);
  CHECK(running_gpu == Approx(running_cpu).epsilon(1e-6));
  check_rows(d_y.host(), y, out_len, c.name);
}

IOParameters defaults() { return IOParameters{}; }

}  // namespace

TEST_CASE("CUDA analog MVM: every noise-management mode equals the CPU") {
  const std::pair<NoiseManagementType, const char*> modes[] = {
      {NoiseManagementType::None, "None"},         {NoiseManagementType::AbsMax, "AbsMax"},
      {NoiseManagementType::Max, "Max"},           {NoiseManagementType::Constant, "Constant"},
      {NoiseManagementType::AbsMaxNPSum, "AbsMaxNPSum"}, {NoiseManagementType::AverageAbsMax, "AverageAbsMax"}};
  for (const auto& [nm, name] : modes) {
    Case c{std::string("nm ") + name, defaults()};
    c.io.noise_management = nm;
    c.io.nm_thres = nm == NoiseManagementType::Constant ? 3.f : 0.f;
    if (nm == NoiseManagementType::None) c.io.inp_bound = 4.f;
    run_case(c);
    if (nm == NoiseManagementType::AverageAbsMax) {
      c.name += " (running value already set)";
      c.running = 1.7f;
      run_case(c);
    }
  }
}

TEST_CASE("CUDA analog MVM: every bound-management mode and pass type equals the CPU") {
  const std::pair<BoundManagementType, const char*> bms[] = {{BoundManagementType::None, "None"},
                                                            {BoundManagementType::Iterative, "Iterative"},
                                                            {BoundManagementType::IterativeWorstCase, "WorstCase"},
                                                            {BoundManagementType::Shift, "Shift"}};
  const std::pair<AnalogMVType, const char*> mvs[] = {{AnalogMVType::OnePass, "OnePass"},
                                                      {AnalogMVType::PosNegSeparate, "PosNeg"},
                                                      {AnalogMVType::PosNegSeparateDigitalSum, "PosNegDigital"}};
  for (const auto& [bm, bm_name] : bms)
    for (const auto& [mv, mv_name] : mvs) {
      Case c{std::string("bm ") + bm_name + ", mv " + mv_name, defaults()};
      c.io.bound_management = bm;
      c.io.mv_type = mv;
      c.io.out_bound = 6.f;  // so that bound management has work to do
      run_case(c);
    }
}

TEST_CASE("CUDA analog MVM: noise, asymmetry, nonlinearity, stochastic rounding, weight noise and IR drop") {
  {
    Case c{"input noise, asymmetries, stochastic rounding", defaults()};
    c.io.inp_noise = 0.02f;
    c.io.inp_asymmetry = 0.05f;
    c.io.out_asymmetry = 0.03f;
    c.io.inp_sto_round = true;
    c.io.out_sto_round = true;
    run_case(c);
  }
  {
    Case c{"per-line nonlinearity and output noise", defaults()};
    c.io.out_nonlinearity = 0.5f;
    c.io.out_nonlinearity_std = 0.1f;
    c.io.out_noise_std = 0.2f;
    c.per_line = true;
    run_case(c);
  }
  {
    Case c{"additive weight noise", defaults()};
    c.io.w_noise_type = WeightNoiseType::AdditiveConstant;
    c.io.w_noise = 0.02f;
    run_case(c);
  }
  {
    Case c{"PCM read noise and IR drop", defaults()};
    c.io.w_noise_type = WeightNoiseType::PCMRead;
    c.io.w_noise = 0.02f;
    c.io.ir_drop = 1.f;
    c.io.ir_drop_g_ratio = 2000.f;  // strong enough to change the outputs visibly
    run_case(c);
  }
  {
    Case c{"no quantisation, no bounds", defaults()};
    c.io.inp_res = 0.f;
    c.io.out_res = 0.f;
    c.io.out_bound = 0.f;
    c.io.bound_management = BoundManagementType::None;
    run_case(c);
  }
  {
    Case c{"is_perfect with out_scale", defaults()};
    c.io.is_perfect = true;
    c.io.out_scale = 2.5f;
    run_case(c);
  }
}

TEST_CASE("CUDA analog MVM: voltage offsets, series resistance, slope calibration and read asymmetry") {
  {
    Case c{"voltage offsets with the reference column, series resistance, calibrated nonlinearity", defaults()};
    c.io.v_offset_std = 0.1f;
    c.io.r_series = 0.02f;
    c.io.slope_calibration = 0.5f;
    c.io.out_nonlinearity = 0.3f;
    c.io.out_nonlinearity_std = 0.1f;
    c.per_line = true;
    run_case(c);
  }
  {
    Case c{"series resistance alone, no reference column", defaults()};
    c.io.r_series = 0.05f;
    c.io.v_offset_w_min = 0.f;
    run_case(c);
  }
  for (auto mv : {AnalogMVType::PosNegSeparate, AnalogMVType::PosNegSeparateDigitalSum}) {
    Case c{mv == AnalogMVType::PosNegSeparate ? "read asymmetry, pos/neg, with IR drop, PCM noise and offsets"
                                              : "read asymmetry, pos/neg digital sum, with IR drop, PCM noise and offsets",
           defaults()};
    c.io.mv_type = mv;
    c.io.w_read_asymmetry_dtod = 0.2f;
    c.io.ir_drop = 1.f;
    c.io.ir_drop_g_ratio = 2000.f;
    c.io.w_noise_type = WeightNoiseType::PCMRead;
    c.io.w_noise = 0.02f;
    c.io.v_offset_std = 0.05f;
    c.io.r_series = 0.01f;
    c.per_line = true;
    run_case(c);
  }
  {
    Case c{"backward: offsets, series resistance and read asymmetry", defaults()};
    c.backward = true;
    c.per_line = true;
    c.io.mv_type = AnalogMVType::PosNegSeparate;
    c.io.w_read_asymmetry_dtod = 0.2f;
    c.io.v_offset_std = 0.1f;
    c.io.r_series = 0.02f;
    run_case(c);
  }
}

TEST_CASE("CUDA analog MVM: backward through the transposed tile equals the CPU") {
  Case c{"backward defaults", defaults()};
  c.backward = true;
  run_case(c);
  Case d{"backward, per-line values, PCM noise, pos/neg", defaults()};
  d.backward = true;
  d.per_line = true;
  d.io.out_noise_std = 0.1f;
  d.io.w_noise_type = WeightNoiseType::PCMRead;
  d.io.w_noise = 0.01f;
  d.io.mv_type = AnalogMVType::PosNegSeparate;
  run_case(d);
}

TEST_CASE("CUDA per-line values have the CPU's bits") {
  IOParameters io;
  io.out_nonlinearity = 0.3f;
  io.out_nonlinearity_std = 0.2f;
  io.out_noise_std = 0.1f;
  const std::int64_t lines = 301;
  io.v_offset_std = 0.1f;
  io.w_read_asymmetry_dtod = 0.3f;
  std::vector<float> nl(lines), sigma(lines), v_off(lines), asym(lines * 3);
  const std::uint64_t used = cpu::draw_analog_line_values(io, lines, {5, 6, 7}, nl.data(), sigma.data(), v_off.data());
  const std::uint64_t used_asym = cpu::draw_weight_read_asymmetry(io, lines * 3, {5, 6, 9}, asym.data());
  DeviceVector d_nl(static_cast<std::size_t>(lines)), d_sigma(static_cast<std::size_t>(lines));
  DeviceVector d_v_off(static_cast<std::size_t>(lines)), d_asym(static_cast<std::size_t>(lines * 3));
  CHECK(cuda::draw_analog_line_values(io, lines, {5, 6, 7}, d_nl.ptr, d_sigma.ptr, d_v_off.ptr) == used);
  CHECK(cuda::draw_weight_read_asymmetry(io, lines * 3, {5, 6, 9}, d_asym.ptr) == used_asym);
  // line_value is a product and a sum: allow the one rounding of a fused multiply-add.
  aimc::test::check_close(d_nl.host(), nl);
  aimc::test::check_close(d_sigma.host(), sigma);
  aimc::test::check_close(d_v_off.host(), v_off);
  aimc::test::check_close(d_asym.host(), asym);
}

TEST_CASE("CUDA GEMM equals the CPU GEMM for every transpose") {
  const std::int64_t m = 33, n = 47, k = 65;
  const std::vector<float> a = normal_vector(static_cast<std::size_t>(m * k), 1, 1.f);
  const std::vector<float> b = normal_vector(static_cast<std::size_t>(k * n), 2, 1.f);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const cpu::GemmShape s = cpu::gemm_shape(ta, tb, m, n, k);
      std::vector<float> c(static_cast<std::size_t>(m * n), 1.f);
      cpu::gemm(s, 0.5f, a.data(), b.data(), 2.f, c.data());
      DeviceVector d_a(a), d_b(b), d_c(std::vector<float>(c.size(), 1.f));
      cuda::gemm(s, 0.5f, d_a.ptr, d_b.ptr, 2.f, d_c.ptr);
      const std::vector<float> g = d_c.host();
      // Sums of 65 products of unit normals: differences of summation order stay below 1e-5.
      for (std::size_t i = 0; i < c.size(); ++i) CHECK(g[i] == Approx(c[i]).margin(1e-4));
    }
}

TEST_CASE("CUDA lightning forward equals the CPU (eval and training, with input ranges and modifiers)") {
  const std::int64_t m = 48, in = 70, out = 45;
  const TileGrid grid = make_tile_grid(out, in, 32, 32);  // 2 x 3 tiles of unequal sizes
  Generator g(21);
  const Tensor x = g.normal({m, in}, 0.0, 1.5);
  std::vector<Tensor> weights;
  for (std::int64_t t = 0; t < grid.tiles(); ++t) {
    const std::int64_t C = std::int64_t(grid.in_pieces.size());
    weights.push_back(g.normal({grid.out_pieces[t / C], grid.in_pieces[t % C]}, 0.0, 0.2));
  }
  std::vector<Tensor> ranges;
  for (std::size_t c = 0; c < grid.in_pieces.size(); ++c) ranges.push_back(Tensor::full({1}, 2.0 + 0.5 * c));
  TorchInferenceRPUConfig cfg;
  cfg.pre_post.input_range.enable = true;
  cfg.forward.inp_res = 1.f / 254.f;
  cfg.forward.out_res = 1.f / 254.f;
  cfg.forward.out_bound = 10.f;
  cfg.forward.out_noise = 0.04f;
  cfg.modifier.std_dev = 0.02f;
  cfg.modifier.res = 1.f / 14.f;
  cfg.clip.sigma = 3.f;
  std::vector<Tensor> d_weights;
  for (const Tensor& w : weights) d_weights.push_back(w.to(Device::cuda()));
  const Tensor d_x = x.to(Device::cuda());
  for (const bool training : {false, true}) {
    for (const bool per_row : {false, true}) {
      // Per row: the ADC bound (clip type), the output noise and the modifier.
      cfg.clip.type = per_row ? WeightClipType::LayerGaussianPerChannel : WeightClipType::None;
      cfg.forward.out_noise_per_channel = per_row;
      cfg.modifier.type =
          per_row ? WeightModifierType::DiscretizeAddNormalPerChannel : WeightModifierType::DiscretizeAddNormal;
      std::uint64_t c_cpu = 17, c_gpu = 17;
      NoGradGuard no_grad;
      const Tensor y = lightning_forward(x, weights, grid, cfg, ranges, training, {99, 3, &c_cpu});
      const Tensor y_gpu = lightning_forward_cuda(d_x, d_weights, grid, cfg, ranges, training, {99, 3, &c_gpu});
      CHECK(c_gpu == c_cpu);
      // In eval the weights are quantised and nothing is noisy: the products
      // are sums of DAC-step × weight-step lattice values, which land exactly
      // on ADC rounding ties far more often than noisy sums, and cuBLAS and
      // Eigen sum in other orders, so a tie goes to the other ADC step. On the
      // H200, 32 and 28 of 2160 outputs (1.5 and 1.3 %) were one ADC step apart
      // (0.16 and 0.20: 2·out_bound·out_res·wmax·r); 95 % must stay tight and
      // every output within 4 % of the range (about one step).
      check_parity(y_gpu.to_vector(), y.to_vector(),
                   std::string("lightning") + (training ? " training" : " eval") + (per_row ? " per row" : ""),
                   0.04f, training ? 0.99 : 0.95);
    }
  }
}

TEST_CASE("CUDA input range: clip, gradients and data statistics equal the CPU") {
  // 70000 inputs: three sum chunks of 32768 (the last one partial).
  const std::int64_t n = 70000;
  Generator g(31);
  const Tensor x = g.normal({100, n / 100}, 0.0, 2.0);
  const Tensor grad = g.normal({100, n / 100});
  InputRangeParameter p;
  p.enable = true;
  p.decay = 0.01f;
  p.input_min_percentage = 0.5f;
  const float r = 2.5f;
  Tensor range = Tensor::full({1}, r);
  range.set_requires_grad(true);
  Tensor x_cpu = x.clone();
  x_cpu.set_requires_grad(true);
  const Tensor v = input_range_clip(x_cpu, range, p);
  v.backward(grad);

  DeviceVector d_x(x.to_vector()), d_g(grad.to_vector()), d_v(static_cast<std::size_t>(n)),
      d_dx(static_cast<std::size_t>(n));
  cuda::input_range_clip(d_x.ptr, n, r, d_v.ptr);
  double clip_sum = 0.0, inside = 0.0;
  cuda::input_range_backward(d_x.ptr, d_g.ptr, n, r, d_dx.ptr, &clip_sum, &inside);
  // A clamp and a division: exactly the CPU's bits.
  CHECK(d_v.host() == v.to_vector());
  CHECK(d_dx.host() == x_cpu.grad().to_vector());
  // The range gradient from the same double sums, in the same order.
  // (the parameter's gradient is float32)
  CHECK(static_cast<float>(input_range_gradient(clip_sum, inside, n, r, p)) == range.grad().to_vector()[0]);

  // Data initialisation: the same update from the CUDA statistics.
  float r_cpu = 1.f, k_cpu = 0.f, r_gpu = 1.f, k_gpu = 0.f;
  update_input_range_from_data(x, p, r_cpu, k_cpu);
  double mean = 0.0, ss = 0.0;
  cuda::input_range_data_stats(d_x.ptr, n, &mean, &ss);
  update_input_range_from_stats(ss, n, p, r_gpu, k_gpu);
  CHECK(k_gpu == k_cpu);
  CHECK(r_gpu == Approx(r_cpu).epsilon(1e-6));
}
