// kernels/cpu/analog_mvm: the batched analog MVM of REFERENCE.md section 1
// against known answers, a plain per-row reference written here (noise off),
// direct formulas for IR drop and weight noise (with the documented random
// layout), output-noise statistics, and bitwise determinism over thread counts.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/random.h"
#include "kernels/random_normal.h"
#include "tests/analog_mvm_test_util.h"

using namespace aimc;
using namespace aimc::cpu;

namespace {

using aimc::test::forward;
using aimc::test::quiet;
using aimc::test::random_vector;

// Plain per-row model of REFERENCE.md section 1 without noise and without
// output quantisation: noise management, the BM loop, DAC, W·v in double,
// clipping and the bound test, the final scaling.
std::vector<float> reference_row(const IOParameters& io, const std::vector<float>& w, long out, long in,
                                 const float* x, float average = 1.f) {
  const float res = io.inp_res > 0.f ? io.inp_res * 2.f * io.inp_bound : 0.f;
  const float ib = io.inp_bound > 0.f ? io.inp_bound : INFINITY;
  const float ob = io.out_bound > 0.f ? io.out_bound : INFINITY;
  auto nm_value = [&](NoiseManagementType t) -> float {
    float amax = 0.f, mx = x[0], ps = 0.f, ns = 0.f;
    for (long j = 0; j < in; ++j) {
      amax = std::max(amax, std::fabs(x[j]));
      mx = std::max(mx, x[j]);
      ps += x[j] > 0 ? x[j] : 0.f;
      ns += x[j] < 0 ? x[j] : 0.f;
    }
    if (io.nm_thres > 0) amax = std::min(amax, io.nm_thres), mx = std::min(mx, io.nm_thres);
    switch (t) {
      case NoiseManagementType::None: return 1.f;
      case NoiseManagementType::AbsMax: return amax;
      case NoiseManagementType::Max: return mx;
      case NoiseManagementType::Constant: return io.nm_thres > 0 ? io.nm_thres : 1.f;
      case NoiseManagementType::AverageAbsMax: return average;
      case NoiseManagementType::AbsMaxNPSum: {
        float s = std::max(ps, -ns) * 0.6f / (io.out_bound > 0 ? io.out_bound : 1.f);
        if (res > 0) s = std::min(amax * io.max_bm_res / res, s);
        return std::max(amax, s);
      }
    }
    return 1.f;
  };
  const bool nm = io.noise_management != NoiseManagementType::None;
  float alpha = nm_value(io.noise_management);
  std::vector<float> y(static_cast<std::size_t>(out), 0.f);
  if (nm && alpha <= 0.f) return y;
  const auto bm = io.bound_management;
  const bool iterative = bm == BoundManagementType::Iterative || bm == BoundManagementType::IterativeWorstCase;
  bool use_alpha = nm;
  float r = 1.f;
  for (int pass = 0;; ++pass) {
    if (bm == BoundManagementType::IterativeWorstCase && pass == 1 &&
        io.noise_management != NoiseManagementType::AbsMaxNPSum) {
      alpha = nm_value(NoiseManagementType::AbsMaxNPSum);
      use_alpha = true;
      r = 1.f;
    }
    float s = 1.f;
    if (use_alpha && alpha > 0) s /= alpha;
    if (iterative) s /= r;
    std::vector<float> v(static_cast<std::size_t>(in));
    for (long j = 0; j < in; ++j) {
      float val = x[j] * s;
      if (res > 0) val = std::rint(val / res) * res;
      v[j] = std::min(std::max(val, -ib), ib);
    }
    bool fail = false;
    for (long i = 0; i < out; ++i) {
      double acc = 0;
      for (long j = 0; j < in; ++j) acc += double(w[i * in + j]) * v[j];
      y[i] = static_cast<float>(acc);
    }
    if (bm == BoundManagementType::Shift) {
      float m = y[0];
      for (float t : y) m = std::max(m, t);
      for (auto& t : y) t = std::min(std::max(t + ob - m, -ob), ob);
      for (auto& t : y) t = t / s;
      return y;
    }
    for (auto& t : y) {
      if (t >= ob || (io.bm_test_negative_bound && t <= -ob)) fail = true;
      t = std::min(std::max(t, -ob), ob);
    }
    const bool stop = !iterative || !fail || r > io.max_bm_factor || (res > 0 && r > io.max_bm_res / res);
    if (stop) {
      for (auto& t : y) t = t * (io.out_scale / s);
      return y;
    }
    r *= 2.f;
  }
}

}  // namespace

TEST_CASE("bound management 1x1 known answer: r = 1..128, returns exactly 10", "[analog_mvm]") {
  IOParameters io = quiet();
  io.inp_bound = 1.f;
  io.out_bound = 0.1f;
  io.bound_management = BoundManagementType::Iterative;
  AnalogMvmStats stats;
  auto y = forward(io, {1.f}, 1, 1, {10.f}, 1, &stats);
  CHECK(y[0] == 10.0f);
  CHECK(stats.passes == 8);  // r = 1, 2, 4, ..., 128
  CHECK(analog_mvm_max_passes(io) == 11);  // r = 1 .. 1024 (1024 > max_bm_factor 1000)
  IOParameters def;
  CHECK(analog_mvm_max_passes(def) == 5);  // defaults: r = 1 .. 16 (16 > 0.25·63)
}

TEST_CASE("DAC grid: on-grid values exact, ties to even, clipping", "[analog_mvm]") {
  IOParameters io = quiet();
  io.inp_bound = 1.f;
  io.inp_res = 1.f / 128.f;  // step 1/64: ties are exact in float
  const float st = 1.f / 64.f;
  std::vector<float> x = {3 * st, -5 * st, 2.5f * st, 3.5f * st, -2.5f * st, 0.4f * st, 0.6f * st, 1.3f};
  std::vector<float> expect = {3 * st, -5 * st, 2 * st, 4 * st, -2 * st, 0.f, st, 1.f};
  const long n = static_cast<long>(x.size());
  auto y = forward(io, {1.f}, 1, 1, x, n);
  for (long i = 0; i < n; ++i) CHECK(y[i] == expect[i]);
  // The default 7-bit grid (step 2/126): every grid point comes back unchanged.
  io.inp_res = 1.f / 126.f;
  std::vector<float> g;
  for (int k = -63; k <= 63; ++k) g.push_back(static_cast<float>(k) * (2.f / 126.f));
  auto yg = forward(io, {1.f}, 1, 1, g, static_cast<long>(g.size()));
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(yg[i] == std::rint(g[i] / (2.f / 126.f)) * (2.f / 126.f));
}

TEST_CASE("ADC grid: ties to even and clipping at out_bound", "[analog_mvm]") {
  IOParameters io = quiet();
  io.out_bound = 4.f;
  io.out_res = 1.f / 64.f;  // step 8/64 = 1/8
  std::vector<float> x = {0.0625f, 0.1875f, 0.3125f, -0.3125f, 0.26f, 5.f, -7.f};
  std::vector<float> expect = {0.f, 0.25f, 0.25f, -0.25f, 0.25f, 4.f, -4.f};
  auto y = forward(io, {1.f}, 1, 1, x, static_cast<long>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y[i] == expect[i]);
}

TEST_CASE("stochastic DAC rounding is unbiased", "[analog_mvm]") {
  IOParameters io = quiet();
  io.inp_bound = 1.f;
  io.inp_res = 1.f / 128.f;
  io.inp_sto_round = true;
  const float st = 1.f / 64.f;
  const long n = 20000;
  std::vector<float> x(n, 2.25f * st);
  auto y = forward(io, {1.f}, 1, 1, x, n);
  long up = 0;
  for (float v : y) {
    REQUIRE((v == 2 * st || v == 3 * st));
    up += v == 3 * st;
  }
  // P(up) = 0.25; binomial std sqrt(.25·.75/20000) = 0.0031: 0.015 is ~5 sigma.
  CHECK(std::fabs(static_cast<double>(up) / n - 0.25) < 0.015);
}

TEST_CASE("noise and bound management modes match a per-row reference", "[analog_mvm]") {
  const long out = 24, in = 40, n = 64;
  auto w = random_vector(out * in, 1, -0.5f, 0.5f);
  auto x = random_vector(n * in, 2, -1.f, 1.f);
  for (long i = 0; i < n; ++i)  // rows of very different magnitude, one all-zero row
    for (long j = 0; j < in; ++j) x[i * in + j] *= (i == 5) ? 0.f : std::pow(2.f, static_cast<float>(i % 7) - 3.f);
  const NoiseManagementType nms[] = {NoiseManagementType::None, NoiseManagementType::AbsMax,
                                     NoiseManagementType::AbsMaxNPSum, NoiseManagementType::Max,
                                     NoiseManagementType::Constant, NoiseManagementType::AverageAbsMax};
  const BoundManagementType bms[] = {BoundManagementType::None, BoundManagementType::Iterative,
                                     BoundManagementType::IterativeWorstCase, BoundManagementType::Shift};
  for (auto nmt : nms) {
    for (auto bmt : bms) {
      IOParameters io = quiet();
      io.inp_bound = 1.f;
      io.inp_res = 1.f / 126.f;
      io.out_bound = 1.5f;
      io.out_scale = 1.25f;
      io.noise_management = nmt;
      io.bound_management = bmt;
      if (nmt == NoiseManagementType::Constant) io.nm_thres = 2.f;
      if (bmt == BoundManagementType::Shift) io.out_scale = 1.f;
      float running = 1.5f;
      std::vector<float> y(static_cast<std::size_t>(n * out));
      const AnalogMvmStats st =
          analog_mvm_forward(io, w.data(), out, in, x.data(), n, y.data(), {}, {1, 2, 0}, &running);
      INFO("nm " << int(nmt) << " bm " << int(bmt));
      // The bound test matters (ABS_MAX_NP_SUM is designed not to saturate).
      if (bmt == BoundManagementType::Iterative && nmt != NoiseManagementType::AbsMaxNPSum) CHECK(st.passes > 2);
      float expected_running = 1.5f;  // AVERAGE_ABS_MAX: each row first updates the running value, then uses it
      for (long i = 0; i < n; ++i) {
        float amax = 0.f;
        for (long j = 0; j < in; ++j) amax = std::max(amax, std::fabs(x[i * in + j]));
        expected_running = expected_running * (1.f - 1e-3f) + 1e-3f * amax;
        auto ref = reference_row(io, w, out, in, x.data() + i * in, expected_running);
        for (long k = 0; k < out; ++k) {
          INFO("nm " << int(nmt) << " bm " << int(bmt) << " row " << i << " out " << k);
          CHECK(y[i * out + k] == Approx(ref[k]).margin(1e-5).epsilon(1e-5));
        }
      }
      if (nmt == NoiseManagementType::AverageAbsMax) CHECK(running == expected_running);
      else CHECK(running == 1.5f);  // the other modes leave it alone
    }
  }
}

// aihwkit's CPU tile: the running mean starts at the first row's max|x| and
// is discounted row by row (nm_decay 1e-3 per row), in training and in eval.
TEST_CASE("average abs max: running value starts at the first input and updates row by row", "[analog_mvm]") {
  IOParameters io = quiet();
  io.noise_management = NoiseManagementType::AverageAbsMax;
  io.inp_bound = 1.f;
  std::vector<float> x = {1.f, -2.f, 0.5f, 4.f}, w = {1.f, 1.f}, y(2);
  float running = -1.f;  // never set
  analog_mvm_forward(io, w.data(), 1, 2, x.data(), 2, y.data(), {}, {}, &running);
  // Row 0: r = 2 (its own max|x|); row 1: r = 2·0.999 + 0.001·4 = 2.002.
  CHECK(running == Approx(2.002f).epsilon(1e-7));
  // α = r per row: without quantisation y = W·(x/α)·α = W·x while |x| ≤ α·inp_bound.
  CHECK(y[0] == Approx(-1.f));
  std::vector<float> x2 = {10.f, 0.f};
  analog_mvm_forward(io, w.data(), 1, 2, x2.data(), 1, y.data(), {}, {}, &running);
  const float r2 = 2.002f * 0.999f + 0.001f * 10.f;  // 2.009998
  CHECK(running == Approx(r2).epsilon(1e-6));
  // The input 10 exceeds α·inp_bound = r2: the DAC clips it at 1, y = r2.
  CHECK(y[0] == Approx(r2).epsilon(1e-6));
}

TEST_CASE("is_perfect is the exact product times out_scale", "[analog_mvm]") {
  const long out = 9, in = 13, n = 5;
  auto w = random_vector(out * in, 3, -1.f, 1.f);
  auto x = random_vector(n * in, 4, -3.f, 3.f);
  IOParameters io;  // default noisy settings are ignored
  io.is_perfect = true;
  io.out_scale = 2.f;
  AnalogMvmStats st;
  auto y = forward(io, w, out, in, x, n, &st);
  CHECK(st.blocks == 0);
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < out; ++k) {
      double acc = 0;
      for (long j = 0; j < in; ++j) acc += double(w[k * in + j]) * x[i * in + j];
      CHECK(y[i * out + k] == Approx(2.0 * acc).margin(1e-5));
    }
}

TEST_CASE("output noise statistics", "[analog_mvm]") {
  // y − W·x = σ·ξ with ADC quantisation off. 2000 rows × 64 outputs = 128000
  // draws: the standard error of the mean is σ/358 (2 % of σ is 7 SE) and the
  // relative standard error of the std is 1/sqrt(2·128000) = 0.2 % (2 % is 10 SE).
  const long out = 64, in = 16, n = 2000;
  auto w = random_vector(out * in, 5, -0.5f, 0.5f);
  auto x = random_vector(n * in, 6, -1.f, 1.f);
  IOParameters io = quiet();
  io.out_noise = 0.06f;
  std::vector<float> sigma(out);
  for (long k = 0; k < out; ++k) sigma[k] = k < out / 2 ? 0.06f : 0.12f;  // per-line σ for the second run
  for (int run = 0; run < 2; ++run) {
    AnalogLineValues lines;
    if (run == 1) lines.out_noise = sigma.data();
    auto y = forward(io, w, out, in, x, n, nullptr, lines, {11, 4, 1000});
    double s[2] = {0, 0}, s2[2] = {0, 0};
    long cnt[2] = {0, 0};
    for (long i = 0; i < n; ++i)
      for (long k = 0; k < out; ++k) {
        double acc = 0;
        for (long j = 0; j < in; ++j) acc += double(w[k * in + j]) * x[i * in + j];
        const int h = k < out / 2 ? 0 : 1;
        const double e = (y[i * out + k] - acc) / (run == 1 ? sigma[k] : 0.06);
        s[h] += e, s2[h] += e * e, ++cnt[h];
      }
    for (int h = 0; h < 2; ++h) {
      const double mean = s[h] / cnt[h], sd = std::sqrt(s2[h] / cnt[h] - mean * mean);
      CHECK(std::fabs(mean) < 0.02 * 1.4);  // each half has 64000 draws: SE 1/253, 0.028 is 7 SE
      CHECK(std::fabs(sd - 1.0) < 0.02);
    }
  }
}

TEST_CASE("IR drop against the direct formula", "[analog_mvm]") {
  const long out = 6, in = 40, n = 3;
  auto w = random_vector(out * in, 7, -1.f, 1.f);
  auto x = random_vector(n * in, 8, -1.f, 1.f);
  IOParameters io = quiet();
  io.ir_drop = 0.7f;
  io.ir_drop_g_ratio = 640.f;
  auto y = forward(io, w, out, in, x, n);
  for (long i = 0; i < n; ++i)
    for (long k = 0; k < out; ++k) {
      double cur = 0, ideal = 0, ramped = 0;
      for (long j = 0; j < in; ++j) {
        const double v = x[i * in + j], wk = w[k * in + j];
        const double q = 1.0 - double(j) / in;
        cur += std::fabs(wk) * std::fabs(v);
        ideal += wk * v;
        ramped += wk * v * (1 - q * q);
      }
      const double a = in / 640.0 * cur;
      const double c = a * (0.05 * a * a - 0.2 * a + 0.5);
      const double expect = ideal - 0.7 * c * ramped;
      CHECK(std::fabs(ideal - expect) > 1e-3);  // the effect is visible
      CHECK(y[i * out + k] == Approx(expect).margin(1e-4));
    }
}

TEST_CASE("weight noise against the direct formula with the documented draws", "[analog_mvm]") {
  const long out = 7, in = 10, n = 3;
  auto w = random_vector(out * in, 9, -1.f, 1.f);
  auto x = random_vector(n * in, 10, -1.f, 1.f);
  const AnalogRandom rnd{123, 45, 678};
  const std::uint64_t bi = (in + 3) / 4, bo = (out + 3) / 4, slot = 2 * bi + 6 * bo;
  for (auto type : {WeightNoiseType::AdditiveConstant, WeightNoiseType::PCMRead}) {
    IOParameters io = quiet();
    io.w_noise = 0.05f;
    io.w_noise_type = type;
    AnalogMvmStats st;
    auto y = forward(io, w, out, in, x, n, &st, {}, rnd);
    CHECK(st.blocks == n * slot);
    for (long i = 0; i < n; ++i) {
      // Weight-noise normals of (pass 0, row i, phase 0): block offset + i·S + 2·Bi.
      std::vector<float> z(4 * bo);
      for (std::uint64_t b = 0; b < bo; ++b) {
        auto k = rng::philox(rnd.seed, rnd.stream, rnd.offset + i * slot + 2 * bi + b);
        rng::box_muller_fast(k.v[0], k.v[1], z[4 * b], z[4 * b + 1]);
        rng::box_muller_fast(k.v[2], k.v[3], z[4 * b + 2], z[4 * b + 3]);
      }
      double norm2 = 0;
      for (long j = 0; j < in; ++j) norm2 += double(x[i * in + j]) * x[i * in + j];
      for (long k = 0; k < out; ++k) {
        double ideal = 0, pcm = 0;
        for (long j = 0; j < in; ++j) {
          ideal += double(w[k * in + j]) * x[i * in + j];
          pcm += std::fabs(w[k * in + j]) * double(x[i * in + j]) * x[i * in + j];
        }
        const double sd = 0.05 * std::sqrt(type == WeightNoiseType::PCMRead ? pcm : norm2);
        CHECK(y[i * out + k] == Approx(ideal + sd * z[k]).margin(1e-5));
      }
    }
  }
}

TEST_CASE("pos/neg separate passes", "[analog_mvm]") {
  IOParameters io = quiet();
  io.out_bound = 1.f;
  std::vector<float> w = {1.f, 1.f, 1.f}, x = {0.6f, 0.6f, -0.6f};
  io.mv_type = AnalogMVType::OnePass;
  CHECK(forward(io, w, 1, 3, x, 1)[0] == Approx(0.6f));
  io.mv_type = AnalogMVType::PosNegSeparate;  // analog sum, then one ADC: 1.2 − 0.6
  CHECK(forward(io, w, 1, 3, x, 1)[0] == Approx(0.6f));
  io.mv_type = AnalogMVType::PosNegSeparateDigitalSum;  // each pass clipped: 1 − 0.6
  CHECK(forward(io, w, 1, 3, x, 1)[0] == Approx(0.4f));
}

TEST_CASE("results are bitwise identical for 1, 2 and 8 threads", "[analog_mvm]") {
  const long out = 48, in = 72, n = 97;
  auto w = random_vector(out * in, 11, -0.6f, 0.6f);
  auto x = random_vector(n * in, 12, -2.f, 2.f);
  IOParameters io;  // defaults: ABS_MAX, ITERATIVE, 7/9 bit, out_noise 0.06
  io.out_bound = 3.f;
  io.inp_noise = 0.01f;
  io.inp_sto_round = true;
  io.out_sto_round = true;
  io.w_noise = 0.02f;
  io.w_noise_type = WeightNoiseType::PCMRead;
  io.ir_drop = 0.5f;
  for (auto mv : {AnalogMVType::OnePass, AnalogMVType::PosNegSeparateDigitalSum}) {
    io.mv_type = mv;
    std::vector<std::vector<float>> ys;
    for (int threads : {1, 2, 8}) {
      set_num_threads(threads);
      AnalogMvmStats st;
      ys.push_back(forward(io, w, out, in, x, n, &st, {}, {5, 6, 7}));
      CHECK(st.passes > 1);
      CHECK(st.blocks == std::uint64_t(analog_mvm_max_passes(io)) * n * (2 * 18 + 6 * 12));
    }
    set_num_threads(0);
    CHECK(std::memcmp(ys[0].data(), ys[1].data(), ys[0].size() * sizeof(float)) == 0);
    CHECK(std::memcmp(ys[0].data(), ys[2].data(), ys[0].size() * sizeof(float)) == 0);
    // A different offset gives different noise.
    auto other = forward(io, w, out, in, x, n, nullptr, {}, {5, 6, 8});
    CHECK(std::memcmp(ys[0].data(), other.data(), other.size() * sizeof(float)) != 0);
  }
}

TEST_CASE("backward is the transposed product with the backward periphery", "[analog_mvm]") {
  const long out = 11, in = 17, n = 6;
  auto w = random_vector(out * in, 13, -1.f, 1.f);
  auto d = random_vector(n * out, 14, -1.f, 1.f);
  IOParameters io = quiet();
  io.noise_management = NoiseManagementType::AbsMax;
  io.inp_bound = 1.f;
  io.inp_res = 1.f / 126.f;
  io.out_bound = 1.2f;
  io.bound_management = BoundManagementType::Iterative;  // ignored in backward
  std::vector<float> wt(in * out);
  for (long k = 0; k < out; ++k)
    for (long j = 0; j < in; ++j) wt[j * out + k] = w[k * in + j];
  std::vector<float> dx(n * in);
  AnalogMvmStats st = analog_mvm_backward(io, w.data(), out, in, d.data(), n, dx.data(), {}, {});
  CHECK(st.passes == 1);
  IOParameters ref_io = io;
  ref_io.bound_management = BoundManagementType::None;
  bool clipped = false;
  for (long i = 0; i < n; ++i) {
    auto ref = reference_row(ref_io, wt, in, out, d.data() + i * out);
    float alpha = 0.f;
    for (long k = 0; k < out; ++k) alpha = std::max(alpha, std::fabs(d[i * out + k]));
    for (long j = 0; j < in; ++j) {
      CHECK(dx[i * in + j] == Approx(ref[j]).margin(1e-5));
      clipped |= std::fabs(std::fabs(dx[i * in + j]) - 1.2f * alpha) < 1e-5f;
    }
  }
  CHECK(clipped);  // some outputs hit the bound and stay clipped (no bound management)
}

TEST_CASE("output nonlinearity, output and input asymmetry", "[analog_mvm]") {
  IOParameters io = quiet();
  std::vector<float> w = {1.f, 0.f, 0.f, 1.f};  // identity 2x2
  std::vector<float> x = {0.5f, -0.5f};
  io.out_nonlinearity = 0.2f;
  std::vector<float> nl = {0.1f, 0.3f};  // per-line n_i, drawn once by the caller
  AnalogLineValues lines;
  lines.out_nonlinearity = nl.data();
  auto y = forward(io, w, 2, 2, x, 1, nullptr, lines);
  CHECK(y[0] == Approx(0.5 / (1 + 0.1 * 0.5)));
  CHECK(y[1] == Approx(-0.5 / (1 + 0.3 * 0.5)));
  io.out_nonlinearity = 0.f;
  io.out_asymmetry = 0.2f;
  y = forward(io, w, 2, 2, x, 1);
  CHECK(y[0] == Approx(0.5f));
  CHECK(y[1] == Approx(-0.4f));
  io.out_asymmetry = 0.f;
  io.inp_asymmetry = 0.5f;
  std::vector<float> ones = {1.f, 1.f};
  y = forward(io, ones, 1, 2, {0.8f, -0.4f}, 1);
  CHECK(y[0] == Approx(0.8f - 0.2f));
  // A per-line spread without the per-line values is a usage error.
  io.out_noise_std = 0.1f;
  io.out_noise = 0.06f;
  CHECK_THROWS_AS(forward(io, ones, 1, 2, {0.8f, -0.4f}, 1), ValueError);
}

TEST_CASE("per-line values are drawn from the documented stream", "[analog_mvm]") {
  IOParameters io;
  io.out_nonlinearity = 0.5f;
  io.out_nonlinearity_std = 0.1f;
  io.out_noise = 0.06f;
  io.out_noise_std = 0.2f;
  const long lines = 6;
  std::vector<float> nl(lines), sd(lines);
  const AnalogRandom rnd{9, 8, 7};
  CHECK(draw_analog_line_values(io, lines, rnd, nl.data(), sd.data()) == 8);  // 4 ranges of 2 blocks
  for (long i = 0; i < lines; ++i) {
    float z[2][4];
    for (int part = 0; part < 2; ++part) {
      auto k = rng::philox(9, 8, 7 + part * 2 + i / 4);
      rng::box_muller_fast(k.v[0], k.v[1], z[part][0], z[part][1]);
      rng::box_muller_fast(k.v[2], k.v[3], z[part][2], z[part][3]);
    }
    CHECK(nl[i] == Approx(std::fabs(0.5f / 12.f * (1 + 0.1f * z[0][i % 4]))));
    CHECK(sd[i] == Approx(std::fabs(0.06f * (1 + 0.2f * z[1][i % 4]))));
  }
}

TEST_CASE("input noise statistics", "[analog_mvm]") {
  // y = W·(x + σ_in·ξ) with W = 1 and x = 0.25: 100000 draws, SE of the mean
  // σ/316 (2 % of σ is 6 SE), relative SE of the std 0.22 % (2 % is 9 SE).
  IOParameters io = quiet();
  io.inp_noise = 0.05f;
  const long n = 100000;
  std::vector<float> x(n, 0.25f);
  auto y = forward(io, {1.f}, 1, 1, x, n);
  double s = 0, s2 = 0;
  for (float v : y) s += (v - 0.25) / 0.05, s2 += ((v - 0.25) / 0.05) * ((v - 0.25) / 0.05);
  const double mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  CHECK(std::fabs(mean) < 0.02);
  CHECK(std::fabs(sd - 1.0) < 0.02);
}

TEST_CASE("fast Box-Muller: bits of the batch path, closeness to rng::box_muller, moments", "[analog_mvm]") {
  // Output noise alone (W = 0, σ = 1, no ADC) returns the normals themselves:
  // they must equal the scalar rng::box_muller_fast of the documented words
  // bit for bit (row i, pass 0, phase 0: output-noise range at offset + i·S + 2Bi + Bo).
  IOParameters io = quiet();
  io.out_noise = 1.f;
  const long out = 1030, n = 3;  // 1030: several 512-value tiles and an odd tail
  std::vector<float> w(out, 0.f), x(n, 0.f);
  const AnalogRandom rnd{21, 22, 23};
  auto y = forward(io, w, out, 1, x, n, nullptr, {}, rnd);
  const std::uint64_t bi = 1, bo = (out + 3) / 4, slot = 2 * bi + 6 * bo;
  long mismatches = 0;
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < out; j += 2) {
      auto k = rng::philox(21, 22, 23 + i * slot + 2 * bi + bo + j / 4);
      float z0, z1;
      rng::box_muller_fast(k.v[j % 4], k.v[j % 4 + 1], z0, z1);
      mismatches += y[i * out + j] != z0;
      if (j + 1 < out) mismatches += y[i * out + j + 1] != z1;
    }
  CHECK(mismatches == 0);
  // Against the double-precision rng::box_muller, and the first four moments.
  double max_diff = 0, m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  const long pairs = 200000;
  for (long b = 0; b < pairs / 2; ++b) {
    auto k = rng::philox(5, 6, b);
    for (int h = 0; h < 2; ++h) {
      float a0, a1, f0, f1;
      rng::box_muller(rng::uniform_open(k.v[2 * h]), rng::uniform_open(k.v[2 * h + 1]), a0, a1);
      rng::box_muller_fast(k.v[2 * h], k.v[2 * h + 1], f0, f1);
      max_diff = std::max({max_diff, double(std::fabs(a0 - f0)), double(std::fabs(a1 - f1))});
      for (double v : {double(f0), double(f1)}) m1 += v, m2 += v * v, m3 += v * v * v, m4 += v * v * v * v;
    }
  }
  const double cnt = 2.0 * pairs;
  CHECK(max_diff < 2e-6);
  // 400000 draws: SE of the mean 0.0016, of E[z²] 0.0022, of E[z³] 0.0039, of E[z⁴] 0.016.
  CHECK(std::fabs(m1 / cnt) < 0.008);
  CHECK(std::fabs(m2 / cnt - 1) < 0.011);
  CHECK(std::fabs(m3 / cnt) < 0.02);
  CHECK(std::fabs(m4 / cnt - 3) < 0.08);
}
