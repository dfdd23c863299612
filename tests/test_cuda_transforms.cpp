// CUDA parity of the hardware-aware-training weight transforms
// (layers/tiles/weight_transforms.h, kernels/cuda/weight_transforms.cu): every
// modifier type and option, every clip type and every remap mode, the same
// input through the CPU path and through a CUDA copy, compared element-wise.
// Part of the test_cuda executable (exits 77 without a GPU).
//
// Tolerances. Modifier: one float rounding (1e-6 relative + 1e-6 absolute;
// nvcc fuses multiply-adds the host compiler keeps apart, and CUDA's tanhf /
// logf / expf may differ from glibc's by an ulp or two). A discretised value
// (DISCRETIZE*, DOREFA) may then land on the other side of a rounding tie and
// differ by exactly one step (a·res, res for DOREFA): allowed for at most 1 in
// 1000 elements. Clip and remap: exact (sums in double without fused
// multiply-adds, combined in row order on the host; the factors on the host).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/error.h"
#include "engine/generator.h"
#include "engine/tensor.h"
#include "layers/tiles/weight_transforms.h"
#include "tests/cuda_test_util.h"

using namespace aimc;

namespace {

using MT = WeightModifierType;

// The discretisation step of row r (0 for the types that do not discretise).
std::vector<float> discretisation_steps(const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                                        const WeightModifierParameter& p) {
  const bool discretise = p.type == MT::Discretize || p.type == MT::DiscretizePerChannel ||
                          p.type == MT::DiscretizeAddNormal || p.type == MT::DiscretizeAddNormalPerChannel;
  const bool per_channel = p.type == MT::DiscretizePerChannel || p.type == MT::DiscretizeAddNormalPerChannel;
  std::vector<float> step(static_cast<std::size_t>(rows), 0.0f);
  if (p.type == MT::DoReFa) {
    std::fill(step.begin(), step.end(), p.res);
    return step;
  }
  if (!discretise) return step;
  const std::int64_t cols_used = p.copy_last_column ? cols - 1 : cols;
  std::vector<float> m(static_cast<std::size_t>(rows), 0.0f);
  float tile = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols_used; ++c) m[r] = std::max(m[r], std::fabs(x[r * cols + c]));
    tile = std::max(tile, m[r]);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    float a = p.assumed_wmax;
    if (p.rel_to_actual_wmax) a = per_channel ? m[r] : tile;
    if (p.rel_to_actual_wmax && a == 0.0f) a = 1.0f;
    step[r] = a * p.res;
  }
  return step;
}

bool within_rounding(float gpu, float cpu) { return std::fabs(gpu - cpu) <= 1e-6f + 1e-6f * std::fabs(cpu); }

// The modifier on the CPU and on CUDA: same blocks, values within the tolerances above.
void check_modifier_parity(const Tensor& w, const WeightModifierParameter& p) {
  const std::int64_t rows = w.size(0), cols = w.size(1);
  std::uint64_t cpu_blocks = 0, gpu_blocks = 1234567;
  const std::vector<float> cpu = apply_weight_modifier(w, p, 29, 5, 1000, &cpu_blocks).to_vector();
  const Tensor out = apply_weight_modifier(w.to(Device::cuda()), p, 29, 5, 1000, &gpu_blocks);
  CHECK(out.device().is_cuda());
  CHECK(gpu_blocks == cpu_blocks);
  const std::vector<float> gpu = out.to_vector();
  REQUIRE(gpu.size() == cpu.size());
  const std::vector<float> step = discretisation_steps(w.to_vector(), rows, cols, p);
  std::size_t bad = 0, one_step = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (within_rounding(gpu[i], cpu[i])) continue;
    const float s = step[i / static_cast<std::size_t>(cols)];
    if (s > 0.0f && within_rounding(std::fabs(gpu[i] - cpu[i]), s)) {
      ++one_step;
    } else {
      if (bad < 5) UNSCOPED_INFO("element " << i << ": cuda " << gpu[i] << " cpu " << cpu[i]);
      ++bad;
    }
  }
  CHECK(bad == 0);
  CHECK(one_step * 1000 <= cpu.size());
}

// 97 x 61 (n not a multiple of 4) and 256 x 300 weights; row r scaled so the
// per-channel maxima differ; one zero row.
std::vector<Tensor> test_weights() {
  Generator g(31);
  std::vector<Tensor> out;
  for (const Shape& s : {Shape{97, 61}, Shape{256, 300}}) {
    Tensor w = g.uniform(s, -1.0, 1.0);
    float* x = w.data<float>();
    for (std::int64_t r = 0; r < s[0]; ++r)
      for (std::int64_t c = 0; c < s[1]; ++c)
        x[r * s[1] + c] *= r == 3 ? 0.0f : 0.2f + 0.8f * static_cast<float>(r % 7) / 6.0f;
    out.push_back(w);
  }
  return out;
}

}  // namespace

TEST_CASE("weight modifier on CUDA equals the CPU for every type and option") {
  const std::vector<Tensor> weights = test_weights();
  for (int k = 0; k <= static_cast<int>(MT::Copy); ++k) {
    // variant: 0 plain, 1 stochastic rounding, 2 drop connect (+ PCM faults),
    // 3 copy_last_column, 4 assumed_wmax, 5 no noise (std_dev 0) with drop connect.
    for (int variant = 0; variant < 6; ++variant) {
      WeightModifierParameter p;
      p.type = static_cast<MT>(k);
      p.std_dev = variant == 5 ? 0.0f : 0.08f;
      p.res = 0.1f;
      p.sto_round = variant == 1;
      p.pdrop = variant == 2 || variant == 5 ? 0.25f : 0.0f;
      p.copy_last_column = variant == 3;
      p.rel_to_actual_wmax = variant != 4;
      p.assumed_wmax = 0.8f;
      if (p.type == MT::PCMNoise) {
        p.std_dev = variant == 5 ? 0.0f : 1.0f;
        p.pcm_t_inference = variant % 2 ? 3600.0f : 0.0f;
        p.pcm_zero_thres = variant == 3 ? 1.0f : 0.0f;
        if (variant == 2) {
          p.pcm_prob_at_reset = 0.05f;
          p.pcm_prob_at_gmax = 0.05f;
          p.pcm_prob_at_random = 0.05f;
        }
      }
      if (p.type == MT::Poly && variant == 4) p.coeffs = {0.01f, 0.05f, -0.02f, 0.003f, 0.001f};
      for (const Tensor& w : weights) {
        INFO("type " << to_string(p.type) << ", variant " << variant << ", shape " << shape_str(w.shape()));
        check_modifier_parity(w, p);
      }
    }
  }
}

TEST_CASE("weight modifier on CUDA leaves its input unchanged and continues the counter like the CPU") {
  const Tensor w = test_weights()[0];
  const Tensor d = w.to(Device::cuda());
  WeightModifierParameter p;
  p.type = MT::DiscretizeAddNormal;
  p.res = 0.05f;
  p.std_dev = 0.1f;
  p.sto_round = true;
  p.pdrop = 0.1f;
  std::uint64_t blocks = 0;
  (void)apply_weight_modifier(d, p, 1, 2, 3, &blocks);
  CHECK(d.to_vector() == w.to_vector());
  CHECK(blocks == 3 * ((97 * 61 + 3) / 4));
  // A later counter gives the CPU's later draws.
  check_modifier_parity(w, p);
  const std::vector<float> cpu = apply_weight_modifier(w, p, 1, 2, 3 + blocks, nullptr).to_vector();
  const std::vector<float> gpu = apply_weight_modifier(d, p, 1, 2, 3 + blocks, nullptr).to_vector();
  std::size_t bad = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) bad += !within_rounding(gpu[i], cpu[i]);
  CHECK(bad * 1000 <= cpu.size());
}

TEST_CASE("weight clip on CUDA equals the CPU for every type") {
  for (const Tensor& w : test_weights()) {
    for (int k = 0; k <= static_cast<int>(WeightClipType::LayerGaussianPerChannel); ++k) {
      for (float cap : {-1.0f, 0.3f}) {
        WeightClipParameter p;
        p.type = static_cast<WeightClipType>(k);
        p.sigma = 1.5f;
        p.fixed_value = p.type == WeightClipType::FixedValue ? 0.45f : cap;
        INFO("type " << to_string(p.type) << ", fixed_value " << p.fixed_value << ", shape " << shape_str(w.shape()));
        Tensor cpu = w.clone();
        apply_weight_clip_(cpu, p);
        Tensor gpu = w.to(Device::cuda());
        apply_weight_clip_(gpu, p);
        CHECK(gpu.device().is_cuda());
        // The clip value comes from double sums; the host compiler may fuse a
        // multiply-add there (GCC does on some -march), the device never does.
        aimc::test::check_close(gpu.to_vector(), cpu.to_vector());
      }
    }
  }
}

TEST_CASE("weight remap on CUDA equals the CPU for every mode (weights and scales)") {
  struct Mode {
    WeightRemapType type;
    float remapped_wmax, max_scale_range, max_scale_ref;
  };
  const Mode modes[] = {{WeightRemapType::None, 1.0f, 0.0f, 0.0f},
                        {WeightRemapType::LayerwiseSymmetric, 1.0f, 0.0f, 0.0f},
                        {WeightRemapType::LayerwiseSymmetric, 0.8f, 0.0f, 0.0f},
                        {WeightRemapType::ChannelwiseSymmetric, 1.0f, 0.0f, 0.0f},
                        {WeightRemapType::ChannelwiseSymmetric, 0.5f, 0.0f, 0.0f},
                        {WeightRemapType::ChannelwiseSymmetric, 1.0f, 3.0f, 0.0f},
                        {WeightRemapType::ChannelwiseSymmetric, 1.0f, 2.0f, 0.9f}};
  for (const Tensor& w : test_weights()) {
    std::vector<float> s0(static_cast<std::size_t>(w.size(0)));
    for (std::size_t r = 0; r < s0.size(); ++r) s0[r] = 0.5f + 0.01f * static_cast<float>(r % 50);
    for (const Mode& m : modes) {
      WeightRemapParameter p;
      p.type = m.type;
      p.remapped_wmax = m.remapped_wmax;
      p.max_scale_range = m.max_scale_range;
      p.max_scale_ref = m.max_scale_ref;
      INFO("type " << to_string(p.type) << ", remapped_wmax " << p.remapped_wmax << ", max_scale_range "
                   << p.max_scale_range << ", max_scale_ref " << p.max_scale_ref);
      Tensor cpu = w.clone();
      Tensor cpu_s = Tensor::from_vector(s0, Shape{w.size(0)});
      apply_weight_remap_(cpu, cpu_s, p);
      Tensor gpu = w.to(Device::cuda());
      Tensor gpu_s = Tensor::from_vector(s0, Shape{w.size(0)}).to(Device::cuda());
      apply_weight_remap_(gpu, gpu_s, p);
      CHECK(gpu.device().is_cuda());
      CHECK(gpu_s.device().is_cuda());
      aimc::test::check_close(gpu.to_vector(), cpu.to_vector());
      aimc::test::check_close(gpu_s.to_vector(), cpu_s.to_vector());
    }
  }
}

TEST_CASE("weight transforms reject CUDA tensors they cannot handle") {
  const Tensor w = test_weights()[0];
  WeightModifierParameter p;
  p.type = MT::AddNormal;
  p.std_dev = 0.1f;
  // A transposed CUDA view is not contiguous.
  Tensor d = w.to(Device::cuda());
  CHECK_THROWS_AS(apply_weight_modifier(d.transpose(0, 1), p, 0, 0, 0, nullptr), DeviceError);
  // Scales on the CPU with weights on CUDA.
  WeightRemapParameter r;
  r.type = WeightRemapType::LayerwiseSymmetric;
  Tensor s = Tensor::ones({w.size(0)});
  CHECK_THROWS_AS(apply_weight_remap_(d, s, r), DeviceError);
}
