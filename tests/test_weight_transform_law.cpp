// Tests of the shared weight-transform law (kernels/analog/weight_transform_law.h)
// on the CPU: the body of the CUDA modifier kernel (modify_element over every
// element, with the row scales computed as the kernels compute them) and the
// CUDA clip / remap flows, run on the host, give the bits of the CPU transforms
// (layers/tiles/weight_transforms.h). This checks the CUDA code paths' logic
// and random layout where no GPU is present; tests/test_cuda_transforms.cpp
// compares the real kernels when one is.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "engine/generator.h"
#include "kernels/analog/weight_transform_law.h"
#include "layers/tiles/weight_transforms.h"

using namespace aimc;

namespace {

using MT = WeightModifierType;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// What kernels/cuda/weight_transforms.cu computes, element by element on the host.
std::vector<float> emulate_cuda_modifier(const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                                         const ModifierLaw& law, std::uint64_t seed, std::uint64_t stream,
                                         std::uint64_t counter) {
  const ModifierSections s = modifier_sections(law, rows, cols);
  const std::int64_t cols_used = law.copy_last_column ? cols - 1 : cols;
  std::vector<float> amax(static_cast<std::size_t>(rows), 0.0f);
  if (s.main_step) {  // row_abs_max_kernel, then modifier_scale_kernel
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols_used; ++c) amax[r] = law_max(amax[r], std::fabs(x[r * cols + c]));
    float g = 0.0f;
    for (float a : amax) g = law_max(g, a);
    for (float& a : amax) {
      if (!law.rel_to_actual_wmax) a = law.assumed_wmax;
      else a = modifier_scale(modifier_is_per_channel(law.kind) ? a : g);
    }
  }
  std::vector<float> out(x.size());
  for (std::int64_t i = 0; i < rows * cols; ++i) {  // modifier_kernel
    const std::int64_t row = i / cols, col = i - row * cols;
    out[i] = col >= cols_used ? x[i]
                              : modify_element(law, s, seed, stream, counter, static_cast<std::uint64_t>(i), x[i],
                                               s.main_step ? amax[row] : 1.0f, s.main_step ? amax[0] : 1.0f);
  }
  return out;
}

std::vector<Tensor> test_weights() {
  Generator g(41);
  std::vector<Tensor> out;
  for (const Shape& s : {Shape{37, 53}, Shape{130, 257}}) {
    Tensor w = g.uniform(s, -1.0, 1.0);
    float* x = w.data<float>();
    for (std::int64_t r = 0; r < s[0]; ++r)
      for (std::int64_t c = 0; c < s[1]; ++c)
        x[r * s[1] + c] *= r == 2 ? 0.0f : 0.2f + 0.8f * static_cast<float>(r % 5) / 4.0f;
    out.push_back(w);
  }
  return out;
}

}  // namespace

TEST_CASE("ModifierKind, ClipKind and RemapKind follow the order of the parameter enums") {
  for (int k = 0; k <= static_cast<int>(MT::Copy); ++k) {
    WeightModifierParameter p;
    p.type = static_cast<MT>(k);
    CHECK(static_cast<int>(make_modifier_law(p).kind) == k);
  }
  for (int k = 0; k <= static_cast<int>(WeightRemapType::ChannelwiseSymmetric); ++k) {
    WeightRemapParameter p;
    p.type = static_cast<WeightRemapType>(k);
    CHECK(static_cast<int>(make_remap_law(p).kind) == k);
  }
  CHECK(static_cast<int>(ClipKind::LayerGaussianPerChannel) ==
        static_cast<int>(WeightClipType::LayerGaussianPerChannel));
}

TEST_CASE("make_modifier_law copies the polynomial and rejects more than 16 coefficients") {
  WeightModifierParameter p;
  p.type = MT::Poly;
  p.std_dev = 0.1f;
  const ModifierLaw law = make_modifier_law(p);
  REQUIRE(law.coeff_count == 3);
  CHECK(law.coeffs[0] == 0.0105392f);
  CHECK(law.coeffs[2] == -0.046925f);
  // 2 + 3x at x = 0.5 (Horner).
  const float c[] = {2.0f, 3.0f};
  CHECK(modifier_poly(c, 2, 0.5f) == 3.5f);
  p.coeffs.assign(17, 0.01f);
  CHECK_THROWS_AS(make_modifier_law(p), ConfigError);
  CHECK_THROWS_WITH(make_modifier_law(p), Catch::Contains("coeffs"));
  Tensor w = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, Shape{1, 2});
  CHECK_THROWS_AS(apply_weight_modifier(w, p, 0, 0, 0, nullptr), ConfigError);
  p.coeffs.assign(16, 0.01f);
  CHECK_NOTHROW(apply_weight_modifier(w, p, 0, 0, 0, nullptr));
}

TEST_CASE("the CUDA modifier kernel body gives the CPU modifier's bits and block count, every type and option") {
  std::size_t mismatches = 0, compared = 0;
  for (const Tensor& w : test_weights()) {
    const std::vector<float> x = w.to_vector();
    const std::int64_t rows = w.size(0), cols = w.size(1);
    for (int k = 0; k <= static_cast<int>(MT::Copy); ++k) {
      for (int variant = 0; variant < 6; ++variant) {
        WeightModifierParameter p;
        p.type = static_cast<MT>(k);
        p.std_dev = variant == 5 ? 0.0f : (p.type == MT::PCMNoise ? 1.0f : 0.07f);
        p.res = 0.05f;
        p.sto_round = variant % 2 == 1;
        p.pdrop = variant >= 2 ? 0.2f : 0.0f;
        p.copy_last_column = variant == 3;
        p.rel_to_actual_wmax = variant != 4;
        p.assumed_wmax = 0.7f;
        p.pcm_t_inference = variant % 2 ? 1000.0f : 0.0f;
        if (variant == 2) p.pcm_prob_at_reset = p.pcm_prob_at_gmax = p.pcm_prob_at_random = 0.05f;
        p.pcm_zero_thres = variant == 3 ? 0.5f : 0.0f;
        INFO("type " << to_string(p.type) << ", variant " << variant << ", shape " << shape_str(w.shape()));
        std::uint64_t blocks = 0;
        const std::vector<float> cpu = apply_weight_modifier(w, p, 7, 3, 11, &blocks).to_vector();
        const ModifierLaw law = make_modifier_law(p);
        CHECK(modifier_sections(law, rows, cols).used == blocks);
        const std::vector<float> emulated = emulate_cuda_modifier(x, rows, cols, law, 7, 3, 11);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < cpu.size(); ++i) bad += !same_bits(emulated[i], cpu[i]);
        CHECK(bad == 0);
        mismatches += bad;
        compared += cpu.size();
      }
    }
  }
  CHECK(compared == 14 * 6 * (37 * 53 + 130 * 257));
  CHECK(mismatches == 0);
}

TEST_CASE("the CUDA clip and remap flows give the CPU's bits") {
  for (const Tensor& w : test_weights()) {
    const std::vector<float> x = w.to_vector();
    const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
    std::vector<float> m(static_cast<std::size_t>(rows), 0.0f);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) m[r] = law_max(m[r], std::fabs(x[r * cols + c]));

    for (int k = 1; k <= static_cast<int>(WeightClipType::LayerGaussianPerChannel); ++k) {
      WeightClipParameter p;
      p.type = static_cast<WeightClipType>(k);
      p.sigma = 1.5f;
      p.fixed_value = p.type == WeightClipType::FixedValue ? 0.45f : 0.6f;
      INFO("clip type " << to_string(p.type));
      Tensor cpu = w.clone();
      apply_weight_clip_(cpu, p);
      // weight_clip in kernels/cuda/weight_transforms.cu.
      std::vector<float> clip(static_cast<std::size_t>(rows), p.fixed_value);
      if (p.type == WeightClipType::AverageChannelMax) {
        std::fill(clip.begin(), clip.end(), average_channel_max_clip(m.data(), rows, p.fixed_value));
      } else if (p.type == WeightClipType::LayerGaussian) {
        std::vector<double> part(static_cast<std::size_t>(rows));
        for (std::int64_t r = 0; r < rows; ++r) part[r] = row_sum_double(x.data() + r * cols, cols);
        const double mean = sum_in_row_order(part.data(), rows) / static_cast<double>(n);
        for (std::int64_t r = 0; r < rows; ++r) part[r] = row_squared_deviation(x.data() + r * cols, cols, mean);
        std::fill(clip.begin(), clip.end(),
                  gaussian_clip_value(sum_in_row_order(part.data(), rows), n, p.sigma, p.fixed_value));
      } else if (p.type == WeightClipType::LayerGaussianPerChannel) {
        for (std::int64_t r = 0; r < rows; ++r) {
          const float* v = x.data() + r * cols;
          const double mean = row_sum_double(v, cols) / static_cast<double>(cols);
          clip[r] = gaussian_clip_value(row_squared_deviation(v, cols, mean), cols, p.sigma, p.fixed_value);
        }
      }
      std::vector<float> emulated = x;
      for (std::int64_t i = 0; i < n; ++i)
        if (clip[i / cols] > 0.0f) emulated[i] = clip_symmetric(emulated[i], clip[i / cols]);
      CHECK(emulated == cpu.to_vector());
      CHECK(emulated != x);  // the clip acts
    }

    for (const float range : {0.0f, 2.5f}) {
      WeightRemapParameter p;
      p.type = WeightRemapType::ChannelwiseSymmetric;
      p.max_scale_range = range;
      std::vector<float> s0(static_cast<std::size_t>(rows));
      for (std::int64_t r = 0; r < rows; ++r) s0[r] = 0.5f + 0.02f * static_cast<float>(r % 40);
      Tensor cpu = w.clone();
      Tensor cpu_s = Tensor::from_vector(s0, Shape{rows});
      apply_weight_remap_(cpu, cpu_s, p);
      // weight_remap in kernels/cuda/weight_transforms.cu.
      std::vector<float> s = s0, mul(s0.size(), 1.0f), div(s0.size(), 1.0f), emulated = x;
      remap_row_factors(make_remap_law(p), m.data(), rows, s.data(), mul.data(), div.data());
      for (std::int64_t i = 0; i < n; ++i)
        if (mul[i / cols] != 1.0f || div[i / cols] != 1.0f)
          emulated[i] = remap_weight(x[i], mul[i / cols], div[i / cols]);
      CHECK(emulated == cpu.to_vector());
      CHECK(s == cpu_s.to_vector());
    }
  }
}
