// AnalogCore (see analog_core.h).
#include "layers/tiles/analog_core.h"

#include "layers/devices/tile_device.h"
#include "layers/tiles/input_range.h"
#include "layers/tiles/realistic_read.h"
#include "layers/tiles/tile_state.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <mutex>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cpu/parallel.h"

namespace aimc {
namespace {

Tensor ones_or_rows(std::int64_t rows, bool per_row) { return Tensor::ones({per_row ? rows : 1}); }

// Element i of a float32 vector wherever Module::to put it (on a GPU: one
// small copy, never a host pointer).
float element(const Tensor& t, std::int64_t i) { return read_state_scalar<float>(t.detach().slice(0, i, i + 1)); }
void set_element(const Tensor& t, std::int64_t i, float v) {
  Tensor e = t.detach().slice(0, i, i + 1);
  write_state_scalar<float>(e, v);
}

// The data initialisation of range r (element 0 of a [1] tensor) with batch
// counter k (element i of update_idx) from x, on any device.
void update_range(const Tensor& x, const InputRangeParameter& p, const Tensor& r, const Tensor& update_idx,
                  std::int64_t i) {
  float k = element(update_idx, i);
  if (!(k < float(p.init_from_data))) return;  // the usual case after the first batches: no copies
  float rv = element(r, 0);
  update_input_range_from_data(x, p, rv, k);
  set_element(r, 0, rv);
  set_element(update_idx, i, k);
}

}  // namespace

const MappingParameter& rpu_mapping(const RPUConfig& c) {
  return std::visit([](const auto& family) -> const MappingParameter& { return family.mapping; }, c.config);
}

const PrePostProcessingParameter& rpu_pre_post(const RPUConfig& c) {
  return std::visit([](const auto& family) -> const PrePostProcessingParameter& { return family.pre_post; },
                    c.config);
}

std::pair<int, int> tile_size_limits(const RPUConfig& c) {
  const bool array = std::visit([](const auto& family) { return !family.tile_array_class.empty(); }, c.config);
  const MappingParameter& m = rpu_mapping(c);
  return array ? std::pair{m.max_output_size, m.max_input_size} : std::pair{0, 0};
}

std::pair<IOParameters, IOParameters> tile_io_parameters(const RPUConfig& rpu_config, bool with_core_periphery) {
  rpu_config.validate();
  const TileRecipe r = rpu_config.tile_recipe();
  if (r.lightning && !with_core_periphery)
    throw ConfigError(std::string(r.family) + " (lightning-style forward) needs an AnalogCore; this layer supports "
                      "InferenceRPUConfig and FloatingPointRPUConfig");
  const MappingParameter& m = rpu_mapping(rpu_config);
  const InputRangeParameter& ir = rpu_pre_post(rpu_config).input_range;
  if (!m.digital_bias) throw ConfigError("mapping.digital_bias = false is not implemented yet");
  if (m.weight_scaling_lr_compensation)
    throw ConfigError("mapping.weight_scaling_lr_compensation = true is not implemented yet");
  if (ir.enable && ir.manage_output_clipping)
    throw ConfigError("pre_post.input_range.manage_output_clipping = true is not implemented yet");
  if (!with_core_periphery && (m.weight_scaling_omega > 0 || m.learn_out_scaling || ir.enable))
    throw ConfigError("mapping.weight_scaling_omega / learn_out_scaling and pre_post.input_range.enable are "
                      "not implemented for this layer yet (use 0 / false / false)");
  if (r.lightning) {
    check_lightning_config(*r.lightning);
    if (m.weight_scaling_omega > 0 || m.learn_out_scaling)
      throw ConfigError(std::string(r.family) + ": mapping.weight_scaling_omega / learn_out_scaling are not part "
                        "of the lightning-style forward (use 0 / false)");
  }
  if (r.device && (m.weight_scaling_omega > 0 || m.learn_out_scaling || ir.enable))
    // Pulsed tiles: the update reaches the devices as x and d of the tile
    // itself; the digital scales around the tile would change that d.
    throw ConfigError(std::string(r.family) +
                      ": mapping.weight_scaling_omega / learn_out_scaling and pre_post.input_range.enable are not "
                      "implemented for pulsed tiles yet (use 0 / false / false)");
  if (!r.lightning && r.modifier.per_batch_sample)
    throw ConfigError("modifier.per_batch_sample = true is not implemented yet (one weight-noise sample per "
                      "mini-batch and tile; use false)");
  if (!with_core_periphery && (r.modifier.type != WeightModifierType::None || r.clip.type != WeightClipType::None ||
                               r.remap.type != WeightRemapType::None))
    throw ConfigError("weight clip / modifier / remap are not implemented for this layer (use type NONE)");
  return {r.forward, r.backward};
}

namespace {
TileArray make_tile_array(const TileGrid& grid, const RPUConfig& rpu_config, std::uint64_t seed,
                          std::uint64_t first_tile_id) {
  const auto [forward_io, backward_io] = tile_io_parameters(rpu_config, /*with_core_periphery=*/true);
  return TileArray(grid, forward_io, backward_io, seed, first_tile_id);
}
}  // namespace

AnalogCore::AnalogCore(const TileGrid& grid, const RPUConfig& rpu_config, std::uint64_t seed,
                       std::uint64_t first_tile_id)
    : tiles_(make_tile_array(grid, rpu_config, seed, first_tile_id)),
      mapping_(rpu_mapping(rpu_config)),
      input_range_param_(rpu_pre_post(rpu_config).input_range) {
  const TileRecipe recipe = rpu_config.tile_recipe();
  clip_ = recipe.clip;
  modifier_ = recipe.modifier;
  remap_ = recipe.remap;
  if (recipe.lightning) {
    lightning_ = true;
    lightning_config_ = *recipe.lightning;
    // Warned once per process (every layer and every checkpoint load would repeat it).
    std::ostringstream warning;
    if (lightning_disable_modifier_during_test(lightning_config_, warning)) {
      static std::once_flag once;
      std::call_once(once, [&] { std::cerr << warning.str(); });
    }
    modifier_ = lightning_config_.modifier;  // enable_during_test may have been turned off above
    if (input_range_param_.enable) {
      for (std::int64_t c = 0; c < tiles_.columns(); ++c) {
        input_ranges_.push_back(Tensor::full({1}, input_range_param_.init_value));
        if (input_range_param_.learn_input_range) input_ranges_.back().set_requires_grad(true);
      }
      input_range_update_idx_ = Tensor::zeros({tiles_.columns()});
    }
    return;
  }
  if (input_range_param_.enable && tiles_.grid().tiles() == 1) {
    input_range_ = Tensor::full({1}, input_range_param_.init_value);
    if (input_range_param_.learn_input_range) input_range_.set_requires_grad(true);
    input_range_update_idx_ = Tensor::zeros({1});
  } else if (input_range_param_.enable) {
    // A mapped layer: one range per tile, as aihwkit's TileModuleArray.
    for (std::int64_t t = 0; t < tiles_.grid().tiles(); ++t) {
      input_ranges_.push_back(Tensor::full({1}, input_range_param_.init_value));
      if (input_range_param_.learn_input_range) input_ranges_.back().set_requires_grad(true);
    }
    input_range_update_idx_ = Tensor::zeros({tiles_.grid().tiles()});
  }
  if (recipe.noise_model) {
    const std::string family = recipe.family;
    std::shared_ptr<const NoiseModel> model = make_noise_model(*recipe.noise_model, family + ".noise_model");
    std::shared_ptr<const DriftCompensation> compensation =
        make_drift_compensation(recipe.drift_compensation, family + ".drift_compensation");
    for (AnalogTile* t : tiles_.tiles())
      t->set_inference_devices(model, compensation, recipe.reconvert_weights_before_drift);
  }
  if (recipe.device) {
    std::shared_ptr<const DeviceModel> device = make_device_model(*recipe.device, std::string(recipe.family) + ".device");
    for (AnalogTile* t : tiles_.tiles()) t->set_device(*device, recipe.update.kernel_params());
  }
  const bool per_row_scales =
      mapping_.weight_scaling_columnwise || remap_.type == WeightRemapType::ChannelwiseSymmetric;
  if (mapping_.weight_scaling_omega > 0 || remap_.type != WeightRemapType::None)
    mapping_scales_ = ones_or_rows(out_size(), per_row_scales);
  if (mapping_.learn_out_scaling) {
    out_scaling_ = ones_or_rows(out_size(), mapping_.out_scaling_columnwise);
    out_scaling_.set_requires_grad(true);
  }
}

std::string AnalogCore::input_range_name(std::size_t i) const {
  if (lightning_) return "input_range_" + std::to_string(i);
  const std::size_t C = static_cast<std::size_t>(tiles_.columns());
  return "input_range_" + std::to_string(i / C) + "_" + std::to_string(i % C);
}

void AnalogCore::init_input_range_from_data(const Tensor& x) {
  if (!input_ranges_.empty()) {
    // One range per tile column (lightning) or per tile (mapped inference),
    // each from its own input slice.
    const TileGrid& g = tiles_.grid();
    const std::int64_t C = tiles_.columns();
    for (std::size_t i = 0; i < input_ranges_.size(); ++i) {
      const std::int64_t c = lightning_ ? std::int64_t(i) : std::int64_t(i) % C;
      update_range(x.detach().slice(1, g.in_offsets[c], g.in_offsets[c] + g.in_pieces[c]), input_range_param_,
                   input_ranges_[i], input_range_update_idx_, std::int64_t(i));
    }
    return;
  }
  update_range(x, input_range_param_, input_range_, input_range_update_idx_, 0);
}

Tensor AnalogCore::forward(const Tensor& x_rows, bool training) {
  if (x_rows.dim() != 2 || x_rows.size(1) != in_size())
    throw ShapeError("AnalogCore: input " + shape_str(x_rows.shape()) + " does not match [M, " +
                     std::to_string(in_size()) + "]");
  check_dtype(x_rows, DType::Float32, "AnalogCore");
  const Device where = tiles_.tile(0, 0).weight().device();
  if (x_rows.device() != where)
    throw DeviceError("AnalogCore: the input is on " + x_rows.device().str() + ", the layer's tiles on " +
                      where.str() + " (move the model or the input with .to(device))");
  if (lightning_) {
    std::vector<Tensor> weights;
    for (AnalogTile* t : tiles_.tiles()) weights.push_back(t->weight());
    const AnalogTile& first = tiles_.tile(0, 0);
    const LightningRandom random{first.seed(), first.tile_id(), &lightning_counter_};
    if (training && !input_ranges_.empty()) init_input_range_from_data(x_rows);
    // Without gradients the fused CUDA kernel (no autograd, fewer launches);
    // else the differentiable op, on the CPU or CUDA (the same numbers).
    if (where.is_cuda() && !grad_mode_enabled())
      return lightning_forward_cuda(x_rows.contiguous(), weights, tiles_.grid(), lightning_config_, input_ranges_,
                                    training, random);
    return lightning_forward(x_rows, weights, tiles_.grid(), lightning_config_, input_ranges_, training, random);
  }
  Tensor v = x_rows;
  // Digital output factor r·s (no gradient to r or s).
  std::vector<float> out_factor{1.f};
  if (input_range_.defined()) {
    if (training) init_input_range_from_data(x_rows);
    v = input_range_clip(x_rows, input_range_, input_range_param_);
    out_factor[0] = std::abs(element(input_range_, 0));
  }
  // Per-tile ranges: tile (r, c) reads clip(x_c, ±r_rc)/r_rc and its output is scaled by r_rc.
  std::vector<Tensor> tile_inputs;
  std::vector<float> tile_factors;
  if (!input_ranges_.empty()) {
    if (training) init_input_range_from_data(x_rows);
    const TileGrid& g = tiles_.grid();
    for (std::size_t t = 0; t < input_ranges_.size(); ++t) {
      const std::int64_t c = std::int64_t(t) % tiles_.columns();
      const Tensor x_c = slice(x_rows, 1, g.in_offsets[c], g.in_offsets[c] + g.in_pieces[c]);
      tile_inputs.push_back(input_range_clip(x_c, input_ranges_[t], input_range_param_));
      tile_factors.push_back(std::abs(element(input_ranges_[t], 0)));
    }
  }
  std::vector<float> weight_grad_scale;
  if (mapping_scales_.defined()) {
    const auto s = mapping_scales_.to_vector();
    const float r = out_factor[0];
    out_factor.assign(s.size(), 0.f);
    weight_grad_scale.resize(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      out_factor[i] = r * s[i];
      weight_grad_scale[i] = 1.f / (s[i] * s[i]);
    }
  }
  std::vector<Tensor> modified;
  if (modifier_.type != WeightModifierType::None && (training || modifier_.enable_during_test)) {
    // Each tile gets its own modifier stream.
    for (AnalogTile* t : tiles_.tiles()) {
      std::uint64_t used = 0;
      modified.push_back(
          apply_weight_modifier(t->weight().detach(), modifier_, t->seed(),
                                             analog::tile_stream(t->tile_id(), analog::TileStream::WeightModifier),
                                             modifier_counter_, &used));
      // Tiles draw from disjoint streams, so one shared counter advance is enough.
      if (t == tiles_.tiles().front()) modifier_counter_ += used;
    }
  }
  Tensor y = tile_inputs.empty()
                 ? tiles_.forward(v, !training, std::move(weight_grad_scale), std::move(modified))
                 : tiles_.forward_tiles(tile_inputs, tile_factors, !training, std::move(weight_grad_scale),
                                        std::move(modified));
  if (out_factor.size() > 1 || out_factor[0] != 1.f)
    y = mul(y, Tensor::from_vector(out_factor, {std::int64_t(out_factor.size())}).to(where));
  if (out_scaling_.defined()) y = mul(y, out_scaling_);
  return y;
}

Tensor AnalogCore::get_weights() const { return apply_digital_scales(tiles_.get_weights()); }

Tensor AnalogCore::read_weights_realistic() {
  // The least-squares read is host code (Eigen on the tile's host outputs).
  if (tiles_.tile(0, 0).weight().device().is_cuda())
    throw DeviceError("AnalogCore::read_weights_realistic: the layer's tiles are on " +
                      tiles_.tile(0, 0).weight().device().str() +
                      "; the realistic read runs on the CPU (move the model with .cpu() first)");
  // Read inputs from a stream of the first tile's seed; each tile uses its id.
  return apply_digital_scales(read_tile_array_realistic(tiles_, tiles_.tile(0, 0).seed() ^ 0x5245414455ull));
}

Tensor AnalogCore::apply_digital_scales(Tensor w) const {
  if (!mapping_scales_.defined() && !out_scaling_.defined()) return w;
  std::vector<float> scale(out_size(), 1.f);
  for (const Tensor* t : {&mapping_scales_, &out_scaling_}) {
    if (!t->defined()) continue;
    const auto v = t->to_vector();
    for (std::int64_t i = 0; i < out_size(); ++i) scale[i] *= v.size() == 1 ? v[0] : v[i];
  }
  // Row i times scale[i] (one float product per element), on w's device.
  NoGradGuard no_grad;
  return mul(w, Tensor::from_vector(scale, {out_size(), 1}).to(w.device()));
}

void AnalogCore::set_weights(const Tensor& weights) {
  if (weights.shape() != Shape{out_size(), in_size()})
    throw ShapeError("AnalogCore::set_weights: got " + shape_str(weights.shape()) + ", expected " +
                     shape_str({out_size(), in_size()}));
  NoGradGuard no_grad;
  for (AnalogTile* t : tiles_.tiles()) t->reset_programming();
  if (out_scaling_.defined()) out_scaling_.detach().fill_(1.0);
  if (!mapping_scales_.defined()) {
    tiles_.set_weights(weights);
    return;
  }
  // The scales are computed on the host (set_weights is not a per-batch step).
  Tensor w = weights.detach().to(Device::cpu()).to(DType::Float32).contiguous().clone();
  float* ws = w.data<float>();
  const std::int64_t rows = out_size(), cols = in_size();
  std::vector<float> row_max(rows, 0.f);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) row_max[i] = std::max(row_max[i], std::abs(ws[i * cols + j]));
  std::vector<float> s(mapping_.weight_scaling_columnwise ? rows : 1);
  if (s.size() == 1) {
    float m = 0.f;
    for (float v : row_max) m = std::max(m, v);
    s[0] = m;
  } else {
    s = row_max;
  }
  for (float& v : s) {
    v = mapping_.weight_scaling_omega > 0 ? v / mapping_.weight_scaling_omega : 1.f;
    if (v == 0.f) v = 1.f;  // as aihwkit: an all-zero weight keeps scale 1
  }
  if (s.size() == 1 && mapping_scales_.numel() > 1) s.assign(rows, s[0]);  // per-row scales for the remap
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) ws[i * cols + j] /= s.size() == 1 ? s[0] : s[i];
  mapping_scales_.copy_(Tensor::from_vector(s, {std::int64_t(s.size())}));
  tiles_.set_weights(w);
}

void AnalogCore::program_weights() {
  for (AnalogTile* t : tiles_.tiles())
    if (t->can_program()) t->program_weights();
}

void AnalogCore::drift_weights(double t_inference) {
  for (AnalogTile* t : tiles_.tiles())
    if (t->can_program()) t->drift_weights(t_inference);
}

void AnalogCore::reseed(std::uint64_t seed) {
  for (AnalogTile* t : tiles_.tiles()) t->reseed(seed);
  modifier_counter_ = 0;
  lightning_counter_ = 0;
}

void AnalogCore::position_streams(std::uint64_t draw, std::uint64_t stride) {
  const std::uint64_t at = draw * stride;
  for (AnalogTile* t : tiles_.tiles()) t->set_counters(at, at);
  modifier_counter_ = at;
  lightning_counter_ = at;
}

AnalogCore::NamedTensorList AnalogCore::programming_buffers() const {
  NamedTensorList out;
  for (std::int64_t r = 0; r < tiles_.rows(); ++r)
    for (std::int64_t c = 0; c < tiles_.columns(); ++c) {
      const TileProgramming* p = tiles_.tile(r, c).programming();
      if (p == nullptr) continue;
      for (const auto& [name, t] : p->buffers())
        out.emplace_back("tile_" + std::to_string(r) + "_" + std::to_string(c) + "_" + name, t);
    }
  return out;
}

void AnalogCore::post_update_step() {
  NoGradGuard no_grad;
  for (AnalogTile* t : tiles_.tiles()) t->reset_programming();
  if (clip_.type != WeightClipType::None && lightning_) {
    // aihwkit-lightning clips the whole layer matrix (std over all of it, or
    // over whole output rows), not tile by tile.
    Tensor w = tiles_.get_weights();
    apply_weight_clip_(w, clip_);
    tiles_.set_weights(w);
  } else if (clip_.type != WeightClipType::None) {
    for (AnalogTile* t : tiles_.tiles()) {
      Tensor w = t->weight().detach();
      apply_weight_clip_(w, clip_);
    }
  }
  if (remap_.type != WeightRemapType::None) {
    // The remap sees whole output rows, across the tile columns.
    // On a GPU the remap runs there (apply_weight_remap_'s CUDA twin).
    Tensor w = tiles_.get_weights();
    Tensor scales = Tensor::ones({out_size()}).to(w.device());
    apply_weight_remap_(w, scales, remap_);
    tiles_.set_weights(w);
    // mapping_scales ×= the remap factors (layerwise: one factor, element 0).
    mapping_scales_.copy_(mul(mapping_scales_, mapping_scales_.numel() == 1 ? slice(scales, 0, 0, 1) : scales));
  }
  if (post_update_step_) post_update_step_(*this);
}

AnalogCore::NamedTensorList AnalogCore::parameters() const {
  NamedTensorList out;
  for (std::int64_t r = 0; r < tiles_.rows(); ++r)
    for (std::int64_t c = 0; c < tiles_.columns(); ++c)
      out.emplace_back("tile_" + std::to_string(r) + "_" + std::to_string(c), tiles_.tile(r, c).weight());
  if (input_range_.defined() && input_range_param_.learn_input_range) out.emplace_back("input_range", input_range_);
  if (input_range_param_.learn_input_range)
    for (std::size_t i = 0; i < input_ranges_.size(); ++i) out.emplace_back(input_range_name(i), input_ranges_[i]);
  if (out_scaling_.defined()) out.emplace_back("out_scaling", out_scaling_);
  return out;
}

AnalogCore::NamedTensorList AnalogCore::buffers() const {
  NamedTensorList out;
  for (std::int64_t r = 0; r < tiles_.rows(); ++r)
    for (std::int64_t c = 0; c < tiles_.columns(); ++c)
      for (const auto& [name, t] : tiles_.tile(r, c).state().entries())
        out.emplace_back("tile_" + std::to_string(r) + "_" + std::to_string(c) + "_" + name, t);
  if (mapping_scales_.defined()) out.emplace_back("mapping_scales", mapping_scales_);
  if (input_range_.defined() && !input_range_param_.learn_input_range) out.emplace_back("input_range", input_range_);
  if (!input_range_param_.learn_input_range)
    for (std::size_t i = 0; i < input_ranges_.size(); ++i) out.emplace_back(input_range_name(i), input_ranges_[i]);
  if (input_range_update_idx_.defined()) out.emplace_back("input_range_update_idx", input_range_update_idx_);
  return out;
}

}  // namespace aimc
