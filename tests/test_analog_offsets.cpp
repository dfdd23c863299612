// The periphery fields of aihwkit 1.1.0's IOParameters that act on the
// crossbar lines (kernels/cpu/analog_mvm.h): voltage offsets with the
// reference column (v_offset_std, v_offset_w_min), series resistance
// (r_series), ADC slope calibration (slope_calibration) and the read
// asymmetry of the weights (w_read_asymmetry_dtod). Known answers small
// enough to compute by hand, the documented draws, their statistics, and the
// tile's wiring (drawn once per chip).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/random.h"
#include "kernels/random_normal.h"
#include "layers/tiles/analog_tile.h"
#include "tests/analog_mvm_test_util.h"

using namespace aimc;
using namespace aimc::cpu;
using aimc::test::forward;
using aimc::test::quiet;
using aimc::test::random_vector;

namespace {

// The 4 normals of Philox block b of (seed, stream), as the kernels draw them.
void block_normals(std::uint64_t seed, std::uint64_t stream, std::uint64_t b, float z[4]) {
  auto k = rng::philox(seed, stream, b);
  rng::box_muller_fast(k.v[0], k.v[1], z[0], z[1]);
  rng::box_muller_fast(k.v[2], k.v[3], z[2], z[3]);
}

struct Moments {
  double mean = 0, sd = 0;
};
Moments moments(const std::vector<double>& v) {
  double s = 0, s2 = 0;
  for (double x : v) s += x, s2 += x * x;
  Moments m;
  m.mean = s / static_cast<double>(v.size());
  m.sd = std::sqrt(s2 / static_cast<double>(v.size()) - m.mean * m.mean);
  return m;
}

}  // namespace

TEST_CASE("voltage offsets and series resistance: known answers by hand", "[analog_mvm][offsets]") {
  // W = [[0.5, 0.25], [-0.5, 1]], x = (1, 0.5): W·x = (0.625, 0), Σ_j x_j = 1.5.
  const std::vector<float> w = {0.5f, 0.25f, -0.5f, 1.f}, x = {1.f, 0.5f};
  const std::vector<float> v_off = {0.1f, 0.f};  // line 0 offset by 10 %, line 1 not
  AnalogLineValues lines;
  lines.v_offset = v_off.data();
  IOParameters io = quiet();
  io.v_offset_std = 0.1f;  // values from `lines`

  SECTION("reference column at w_min = -1, no series resistance") {
    // (1 − v)·(y + Σx) − (1 + v)·Σx = (1 − v)·y − 2v·Σx (aihwkit's CPU form).
    const auto y = forward(io, w, 2, 2, x, 1, nullptr, lines);
    CHECK(y[0] == Approx(0.9 * 0.625 - 2 * 0.1 * 1.5).margin(1e-6));  // 0.2625
    CHECK(y[1] == Approx(0.0).margin(1e-6));
  }
  SECTION("no reference column (w_min = 0): a plain gain 1 − v_i") {
    io.v_offset_w_min = 0.f;
    const auto y = forward(io, w, 2, 2, x, 1, nullptr, lines);
    CHECK(y[0] == Approx(0.9 * 0.625).margin(1e-6));
    CHECK(y[1] == Approx(0.0).margin(1e-6));
  }
  SECTION("series resistance with the reference column") {
    io.r_series = 0.5f;
    // (1 − v)·c/(1 + r|c|) for c = y + Σx, less (1 + v)·Σx/(1 + r·Σx).
    const auto y = forward(io, w, 2, 2, x, 1, nullptr, lines);
    const double ref = 1.5 / (1 + 0.5 * 1.5);
    CHECK(y[0] == Approx(0.9 * 2.125 / (1 + 0.5 * 2.125) - 1.1 * ref).margin(1e-6));  // -0.015584
    CHECK(y[1] == Approx(1.5 / (1 + 0.5 * 1.5) - ref).margin(1e-6));                 // 0: the same compression
  }
  SECTION("series resistance alone (w_min = 0, no offsets) compresses y/(1 + r|y|)") {
    IOParameters r = quiet();
    r.r_series = 0.5f;
    r.v_offset_w_min = 0.f;
    const std::vector<float> w2 = {2.f, -1.f, -1.f, -2.f};  // W·x = (1.5, -2)
    const auto y = forward(r, w2, 2, 2, x, 1);
    CHECK(y[0] == Approx(1.5 / (1 + 0.5 * 1.5)).margin(1e-6));
    CHECK(y[1] == Approx(-2.0 / (1 + 0.5 * 2.0)).margin(1e-6));
  }
  SECTION("off at the defaults: w_min = -1 alone changes nothing") {
    IOParameters d = quiet();
    CHECK(d.v_offset_w_min == -1.f);
    const auto y = forward(d, w, 2, 2, x, 1, nullptr, lines);
    CHECK(y[0] == 0.625f);
    CHECK(y[1] == 0.f);
  }
  SECTION("an offset spread without the per-line offsets is a usage error") {
    CHECK_THROWS_AS(forward(io, w, 2, 2, x, 1), ValueError);
  }
}

TEST_CASE("voltage offsets act per pass: after the IR drop, before the ADC, in backward too",
          "[analog_mvm][offsets]") {
  const std::vector<float> w = {0.5f, 0.25f, -0.5f, 1.f};
  SECTION("backward: Wᵀ·d = (0.25, 0.75), offsets per input line") {
    IOParameters io = quiet();
    io.r_series = 0.5f;
    io.v_offset_w_min = 0.f;
    io.v_offset_std = 0.2f;
    const std::vector<float> v_off = {0.2f, 0.f}, d = {1.f, 0.5f};
    AnalogLineValues lines;
    lines.v_offset = v_off.data();
    std::vector<float> dx(2);
    analog_mvm_backward(io, w.data(), 2, 2, d.data(), 1, dx.data(), lines, {1, 2, 3});
    CHECK(dx[0] == Approx(0.8 * 0.25 / (1 + 0.5 * 0.25)).margin(1e-6));
    CHECK(dx[1] == Approx(0.75 / (1 + 0.5 * 0.75)).margin(1e-6));
  }
  SECTION("before the ADC: the compressed value is what the ADC clips") {
    // W = 1, x = 1.5, out_bound 1, r = 0.5: compressed first, 1.5/1.75 =
    // 0.857 stays inside the bound (clipping first would give 1/1.5 = 0.667).
    IOParameters io = quiet();
    io.out_bound = 1.f;
    io.r_series = 0.5f;
    io.v_offset_w_min = 0.f;
    const auto y = forward(io, {1.f}, 1, 1, {1.5f}, 1);
    CHECK(y[0] == Approx(1.5 / 1.75).margin(1e-6));
  }
  SECTION("before the weight noise: the offset does not scale the read noise") {
    // W = 1, x = 1, v = 0.5 (w_min 0), additive weight noise 0.1·‖x‖·z:
    // y = 0.5 + 0.1·z, with z the weight-noise normal of (pass 0, row 0,
    // phase 0) at block offset + 2·Bi (Bi = 1; analog_mvm.h). After the noise
    // it would be 0.5·(1 + 0.1·z).
    IOParameters io = quiet();
    io.v_offset_std = 0.1f;
    io.v_offset_w_min = 0.f;
    io.w_noise = 0.1f;
    io.w_noise_type = WeightNoiseType::AdditiveConstant;
    const std::vector<float> half = {0.5f};
    AnalogLineValues lines;
    lines.v_offset = half.data();
    const AnalogRandom rnd{17, 5, 40};
    const auto y = forward(io, {1.f}, 1, 1, {1.f}, 1, nullptr, lines, rnd);
    float z[4];
    block_normals(17, 5, 40 + 2, z);
    CHECK(std::fabs(z[0]) > 0.05f);  // the two orders differ visibly
    CHECK(y[0] == Approx(0.5 + 0.1 * z[0]).margin(1e-6));
  }
  SECTION("pos/neg: each pass compressed on its own, with its own reference current") {
    // W = [1, 1], x = (0.8, -0.4), w_min = -1, r = 0.5. Negative pass v = (0, -0.4):
    // y = -0.4, ref = -0.4 → s(-0.8) − s(-0.4); positive pass v = (0.8, 0):
    // y = 0.8, ref = 0.8 → s(1.6) − s(0.8); s(c) = c/(1 + 0.5|c|).
    IOParameters io = quiet();
    io.r_series = 0.5f;
    io.mv_type = AnalogMVType::PosNegSeparate;
    auto s = [](double c) { return c / (1 + 0.5 * std::fabs(c)); };
    const double expect = (s(-0.8) - s(-0.4)) + (s(1.6) - s(0.8));
    const auto y = forward(io, {1.f, 1.f}, 1, 2, {0.8f, -0.4f}, 1);
    CHECK(y[0] == Approx(expect).margin(1e-6));
    io.mv_type = AnalogMVType::OnePass;  // one pass: v = (0.8, -0.4), y = 0.4, ref = 0.4
    CHECK(forward(io, {1.f, 1.f}, 1, 2, {0.8f, -0.4f}, 1)[0] == Approx(s(0.8) - s(0.4)).margin(1e-6));
  }
}

TEST_CASE("slope calibration: the gain (1 + (mean n_i + r_series)·c·out_bound)^2", "[analog_mvm][offsets]") {
  IOParameters io = quiet();
  io.out_bound = 10.f;
  io.out_nonlinearity = 0.5f;  // n = 0.5/10 = 0.05
  io.slope_calibration = 0.5f;
  SECTION("nonlinearity alone: g = (1 + 0.05·0.5·10)^2 = 1.5625") {
    CHECK(analog_slope_gain(io, nullptr, 1) == Approx(1.5625));
    const auto y = forward(io, {1.f}, 1, 1, {2.f}, 1);
    CHECK(y[0] == Approx(1.5625 * 2 / (1 + 0.05 * 2)).margin(1e-5));
    io.slope_calibration = 0.f;  // off: the plain nonlinearity
    CHECK(forward(io, {1.f}, 1, 1, {2.f}, 1)[0] == Approx(2 / 1.1).margin(1e-6));
  }
  SECTION("with series resistance: r enters the gain and compresses first") {
    io.r_series = 0.02f;
    io.v_offset_w_min = 0.f;
    const double g = (1 + (0.05 + 0.02) * 0.5 * 10) * (1 + (0.05 + 0.02) * 0.5 * 10);  // 1.8225
    CHECK(analog_slope_gain(io, nullptr, 1) == Approx(g));
    const double c = 2 / (1 + 0.02 * 2);
    CHECK(forward(io, {1.f}, 1, 1, {2.f}, 1)[0] == Approx(g * c / (1 + 0.05 * c)).margin(1e-5));
  }
  SECTION("series resistance turns the calibration on without a nonlinearity") {
    io.out_nonlinearity = 0.f;
    io.r_series = 0.02f;
    io.v_offset_w_min = 0.f;
    const double g = (1 + 0.02 * 5) * (1 + 0.02 * 5);  // 1.21
    CHECK(forward(io, {1.f}, 1, 1, {2.f}, 1)[0] == Approx(g * 2 / 1.04).margin(1e-5));
    io.r_series = 0.f;  // neither: no effect
    CHECK(analog_slope_gain(io, nullptr, 1) == 1.f);
    CHECK(forward(io, {1.f}, 1, 1, {2.f}, 1)[0] == 2.f);
  }
  SECTION("per-line nonlinearities: the gain uses their mean") {
    io.out_nonlinearity_std = 0.2f;
    const std::vector<float> nl = {0.04f, 0.06f};  // mean 0.05
    AnalogLineValues lines;
    lines.out_nonlinearity = nl.data();
    CHECK_THROWS_AS(forward(io, {1.f, 0.f, 0.f, 1.f}, 2, 2, {2.f, 2.f}, 1, nullptr, lines), ValueError);
    lines.slope_gain = analog_slope_gain(io, nl.data(), 2);
    CHECK(lines.slope_gain == Approx(1.5625));
    const auto y = forward(io, {1.f, 0.f, 0.f, 1.f}, 2, 2, {2.f, 2.f}, 1, nullptr, lines);
    CHECK(y[0] == Approx(1.5625 * 2 / (1 + 0.04 * 2)).margin(1e-5));
    CHECK(y[1] == Approx(1.5625 * 2 / (1 + 0.06 * 2)).margin(1e-5));
  }
}

TEST_CASE("read asymmetry: the negative pass reads W·a", "[analog_mvm][offsets]") {
  IOParameters io = quiet();
  io.w_read_asymmetry_dtod = 0.3f;
  const std::vector<float> w = {1.f, 2.f}, x = {0.5f, -0.25f}, a = {1.2f, 0.8f};
  AnalogLineValues lines;
  lines.w_asymmetry = a.data();
  // Without asymmetry 0.5 − 0.5 = 0; the negative input meets 2·0.8.
  for (auto mv : {AnalogMVType::PosNegSeparate, AnalogMVType::PosNegSeparateDigitalSum}) {
    io.mv_type = mv;
    CHECK(forward(io, w, 1, 2, x, 1, nullptr, lines)[0] == Approx(0.5 - 0.25 * 2 * 0.8).margin(1e-6));
    CHECK_THROWS_AS(forward(io, w, 1, 2, x, 1), ValueError);  // factors missing
  }
  io.mv_type = AnalogMVType::OnePass;  // no effect in one pass (as aihwkit)
  CHECK(forward(io, w, 1, 2, x, 1, nullptr, lines)[0] == Approx(0.0).margin(1e-7));
  CHECK(forward(io, w, 1, 2, x, 1)[0] == Approx(0.0).margin(1e-7));

  SECTION("IR drop of the negative pass uses W·a (direct formula)") {
    const long out = 5, in = 30;
    const auto wr = random_vector(out * in, 21, -1.f, 1.f), xr = random_vector(in, 22, -1.f, 1.f);
    const auto ar = random_vector(out * in, 23, 0.5f, 1.5f);
    IOParameters ir = quiet();
    ir.mv_type = AnalogMVType::PosNegSeparate;
    ir.w_read_asymmetry_dtod = 0.3f;
    ir.ir_drop = 0.7f;
    ir.ir_drop_g_ratio = 640.f;
    AnalogLineValues l;
    l.w_asymmetry = ar.data();
    const auto y = forward(ir, wr, out, in, xr, 1, nullptr, l);
    for (long k = 0; k < out; ++k) {
      double total = 0;
      for (int phase = 0; phase < 2; ++phase) {  // 0: negative inputs on W·a, 1: positive on W
        double cur = 0, ideal = 0, ramped = 0;
        for (long j = 0; j < in; ++j) {
          const double v = phase == 0 ? std::min(xr[j], 0.f) : std::max(xr[j], 0.f);
          const double wk = phase == 0 ? double(wr[k * in + j]) * ar[k * in + j] : wr[k * in + j];
          const double q = 1.0 - double(j) / in;
          cur += std::fabs(wk) * std::fabs(v);
          ideal += wk * v;
          ramped += wk * v * (1 - q * q);
        }
        const double aa = in / 640.0 * cur;
        total += ideal - 0.7 * aa * (0.05 * aa * aa - 0.2 * aa + 0.5) * ramped;
      }
      CHECK(y[k] == Approx(total).margin(1e-4));
    }
  }
}

TEST_CASE("offsets and read-asymmetry factors: the documented draws and their statistics",
          "[analog_mvm][offsets]") {
  IOParameters io;
  io.v_offset_std = 0.1f;
  io.w_read_asymmetry_dtod = 0.3f;
  const long n = 100000;
  const std::uint64_t blocks = (n + 3) / 4;
  const AnalogRandom rnd{9, 8, 7};
  std::vector<float> v(n), a(n);
  CHECK(draw_analog_line_values(io, n, rnd, nullptr, nullptr, v.data()) == 4 * blocks);
  CHECK(draw_weight_read_asymmetry(io, n, rnd, a.data()) == blocks);
  for (long i : {0L, 1L, 5L, 99999L}) {  // v: gate from the third range, value from the fourth; a from the first
    float zg[4], zv[4], za[4];
    block_normals(9, 8, 7 + 2 * blocks + i / 4, zg);
    block_normals(9, 8, 7 + 3 * blocks + i / 4, zv);
    block_normals(9, 8, 7 + i / 4, za);
    CHECK(v[i] == (0.1f * zg[i % 4] > 0.f ? 0.1f * zv[i % 4] : 0.f));
    CHECK(a[i] == 1.f + 0.3f * za[i % 4]);
  }
  // v = 0 when ξ <= 0, else σξ' (σ = 0.1), as aihwkit: P(v = 0) = 1/2 (SE
  // 0.5/316 = 0.0016; 0.008 is 5 SE), P(v > 0) = 1/4 (SE 0.0014; 0.007 is 5
  // SE), mean 0 with sd σ/√2 = 0.0707 (SE 2.2e-4; 1.1e-3 is 5 SE), and the
  // relative SE of that sd is sqrt(1.25)/sqrt(n) = 0.35 % (1.8 % is 5 SE).
  std::vector<double> vd(v.begin(), v.end());
  const long zeros = std::count(v.begin(), v.end(), 0.f);
  const long positive = std::count_if(v.begin(), v.end(), [](float t) { return t > 0.f; });
  CHECK(std::fabs(double(zeros) / n - 0.5) < 0.008);
  CHECK(std::fabs(double(positive) / n - 0.25) < 0.007);
  const Moments mv = moments(vd);
  CHECK(std::fabs(mv.mean) < 1.1e-3);
  CHECK(std::fabs(mv.sd / (0.1 / std::sqrt(2.0)) - 1.0) < 0.018);
  // a = 1 + 0.3ξ: mean SE 0.3/316 = 9.5e-4 (4.7e-3 is 5 SE); relative SE of
  // the sd 1/sqrt(2n) = 0.22 % (1.1 % is 5 SE).
  const Moments ma = moments(std::vector<double>(a.begin(), a.end()));
  CHECK(std::fabs(ma.mean - 1.0) < 4.7e-3);
  CHECK(std::fabs(ma.sd / 0.3 - 1.0) < 0.011);
}

TEST_CASE("an analog tile draws offsets and asymmetry once per chip", "[analog_mvm][offsets]") {
  // 4000 output lines, one input, W = 1: line i returns x·(1 − v_i) (w_min 0),
  // and in the pos/neg mode a negative x returns x·a_i.
  const long lines = 4000;
  IOParameters io = quiet();
  io.v_offset_std = 0.2f;
  io.v_offset_w_min = 0.f;
  AnalogTile tile(lines, 1, io, quiet(), 42, 3);
  std::fill_n(tile.weight().data<float>(), lines, 1.f);
  std::vector<float> y(lines), again(lines);
  const float x = 0.5f;
  tile.forward(&x, 1, y.data(), false);
  tile.forward(&x, 1, again.data(), false);
  CHECK(y == again);  // fixed per chip
  // P(v = 0) = 1/2: SE 0.5/sqrt(4000) = 0.0079 (0.04 is 5 SE); mean v = 0,
  // SE (0.2/√2)/sqrt(4000) = 0.0022 (0.0112 is 5 SE); sd 0.2/√2 with relative
  // SE sqrt(1.25)/sqrt(4000) = 1.8 % (8.8 % is 5 SE).
  std::vector<double> v(lines);
  long exact = 0;
  for (long i = 0; i < lines; ++i) {
    v[i] = 1.0 - y[i] / 0.5;
    exact += y[i] == 0.5f ? 1 : 0;
  }
  CHECK(std::fabs(double(exact) / lines - 0.5) < 0.04);
  const Moments mv = moments(v);
  CHECK(std::fabs(mv.mean) < 0.0112);
  CHECK(std::fabs(mv.sd / (0.2 / std::sqrt(2.0)) - 1.0) < 0.088);
  tile.reseed(43);  // another chip: other offsets
  tile.forward(&x, 1, again.data(), false);
  CHECK(y != again);

  IOParameters pn = quiet();
  pn.mv_type = AnalogMVType::PosNegSeparate;
  pn.w_read_asymmetry_dtod = 0.3f;
  AnalogTile asym(lines, 1, pn, quiet(), 42, 3);
  std::fill_n(asym.weight().data<float>(), lines, 1.f);
  const float neg = -0.5f;
  asym.forward(&x, 1, y.data(), false);
  for (float t : y) CHECK(t == 0.5f);  // positive inputs read W
  asym.forward(&neg, 1, y.data(), false);
  // a = 1 + 0.3ξ: mean SE 0.3/sqrt(4000) = 0.0047 (0.024 is 5 SE), relative SE
  // of the sd 1/sqrt(8000) = 1.1 % (5.6 % is 5 SE).
  std::vector<double> f(lines);
  for (long i = 0; i < lines; ++i) f[i] = y[i] / -0.5;
  const Moments m = moments(f);
  CHECK(std::fabs(m.mean - 1.0) < 0.024);
  CHECK(std::fabs(m.sd / 0.3 - 1.0) < 0.056);

  // The per-line nonlinearity spread with calibration: the tile supplies the gain.
  IOParameters cal = quiet();
  cal.out_bound = 10.f;
  cal.out_nonlinearity = 0.5f;
  cal.out_nonlinearity_std = 0.1f;
  cal.slope_calibration = 0.5f;
  AnalogTile calibrated(lines, 1, cal, quiet(), 42, 3);
  std::fill_n(calibrated.weight().data<float>(), lines, 1.f);
  CHECK_NOTHROW(calibrated.forward(&x, 1, y.data(), false));
  // The chip's n_i are the documented draws of its line stream (tile_id·16 + 2,
  // offset 0), and its gain g = (1 + mean n_i·0.5·10)^2 (≈ 1.5625).
  std::vector<float> nl(lines);
  draw_analog_line_values(cal, lines, {42, 3 * 16 + 2, 0}, nl.data(), nullptr);
  const float g = analog_slope_gain(cal, nl.data(), lines);
  CHECK(g == Approx(1.5625).epsilon(0.005));
  for (long i = 0; i < lines; ++i) CHECK(y[i] == Approx(g * 0.5 / (1 + nl[i] * 0.5)).epsilon(1e-6));
}

TEST_CASE("offsets, series resistance, calibration and asymmetry: same bits for 1, 2 and 8 threads",
          "[analog_mvm][offsets]") {
  const long out = 40, in = 60, n = 53;
  const auto w = random_vector(out * in, 31, -0.6f, 0.6f), x = random_vector(n * in, 32, -2.f, 2.f);
  IOParameters io;  // defaults plus everything new
  io.out_bound = 3.f;
  io.mv_type = AnalogMVType::PosNegSeparate;
  io.v_offset_std = 0.05f;
  io.r_series = 0.01f;
  io.slope_calibration = 0.5f;
  io.out_nonlinearity = 0.2f;
  io.w_read_asymmetry_dtod = 0.2f;
  io.w_noise = 0.02f;
  io.w_noise_type = WeightNoiseType::PCMRead;
  io.ir_drop = 0.5f;
  std::vector<float> v(out), a(out * in);
  draw_analog_line_values(io, out, {1, 2, 0}, nullptr, nullptr, v.data());
  draw_weight_read_asymmetry(io, out * in, {1, 2, 1000}, a.data());
  AnalogLineValues lines;
  lines.v_offset = v.data();
  lines.w_asymmetry = a.data();
  std::vector<std::vector<float>> ys;
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    ys.push_back(forward(io, w, out, in, x, n, nullptr, lines, {5, 6, 7}));
  }
  set_num_threads(0);
  CHECK(std::memcmp(ys[0].data(), ys[1].data(), ys[0].size() * sizeof(float)) == 0);
  CHECK(std::memcmp(ys[0].data(), ys[2].data(), ys[0].size() * sizeof(float)) == 0);
}
