// MixedPrecisionCompound (aihwkit 1.1.0's MixedPrecResistiveDevice, for
// DigitalRankUpdateRPUConfig): the rank update is computed digitally into a
// float matrix χ and moved onto one analog (pulsed) device in whole steps.
// Per sample (x, d) at SGD learning rate lr:
//   with n_x_bins > 0: x is quantised to q_x = clamp(rint(x/w_x + u − ½), ±⌊n_x_bins/2⌋)·w_x,
//   w_x = max|x|/⌊n_x_bins/2⌋ (1 when max|x| = 0; u uniform when stoc_round_x,
//   else ½); likewise d; with n_x_bins = n_d_bins = 0 no quantisation
//   χ += lr·q_d·q_xᵀ
//   then, when c > 0 and c is a multiple of transfer_every·m_batch (c = the
//   samples before this one), n_rows_per_transfer rows (−1: all; in turn from
//   the last one, or from a random row with random_row) move: for row r,
//   k = trunc(χ_r/g), χ_r −= k·g, and the device is pulsed
//   W_r −= transfer_lr·g·k (lr transfer_lr·g, BL and update management on)
// g = granularity, or the device's weight granularity when 0.
// Setting the weights zeroes χ and the counters.
// aihwkit 1.1.0 stores d with the wrong index when exactly one of
// n_x_bins/n_d_bins is > 0; aimc quantises that one correctly.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/devices/compound/compound_device.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

using compound::value;

struct MixedPrecisionParameter {
  int construction_seed = 0;  // accepted, unused (aimc draws from the chip seed)
  int transfer_every = 1;
  int n_rows_per_transfer = -1;
  bool random_row = false;
  float granularity = 0.f;
  float transfer_lr = 1.f;
  int n_x_bins = 0;
  int n_d_bins = 0;
  bool stoc_round_x = true;
  bool stoc_round_d = true;
};

class MixedPrecisionModel : public DigitalRankUpdateDeviceModel {
 public:
  MixedPrecisionModel(MixedPrecisionParameter p, std::shared_ptr<const DeviceModel> device)
      : p_(p), device_(std::move(device)) {}
  std::string type() const override { return "MixedPrecisionCompound"; }
  const MixedPrecisionParameter& parameter() const { return p_; }
  const std::shared_ptr<const DeviceModel>& device() const { return device_; }
  float granularity() const {
    return p_.granularity > 0.f ? p_.granularity : device_->granularity();
  }
  nlohmann::json to_json() const override {
    using config::float_to_json;
    return {{"type", type()},
            {"device", device_->to_json()},
            {"construction_seed", p_.construction_seed},
            {"transfer_every", p_.transfer_every},
            {"n_rows_per_transfer", p_.n_rows_per_transfer},
            {"random_row", p_.random_row},
            {"granularity", float_to_json(p_.granularity)},
            {"transfer_lr", float_to_json(p_.transfer_lr)},
            {"n_x_bins", p_.n_x_bins},
            {"n_d_bins", p_.n_d_bins},
            {"stoc_round_x", p_.stoc_round_x},
            {"stoc_round_d", p_.stoc_round_d}};
  }
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 private:
  MixedPrecisionParameter p_;
  std::shared_ptr<const DeviceModel> device_;
};

class MixedPrecisionTileDevice : public TileDevice {
 public:
  MixedPrecisionTileDevice(std::shared_ptr<const MixedPrecisionModel> model, const TileDeviceContext& ctx)
      : model_(std::move(model)),
        p_(model_->parameter()),
        subs_(ctx, {model_->device()}, {ctx.update}, false),
        streams_(ctx),
        out_(ctx.out_size),
        in_(ctx.in_size),
        g_(model_->granularity()) {
    transfer_update_ = ctx.update;
    transfer_update_.update_management = true;
    transfer_update_.update_bl_management = true;
    chi_ = ctx.state->add(ctx.prefix + "hidden_weights_chi", Tensor::zeros({out_, in_}));
    update_count_ = compound::add_counter(ctx, "current_update_index");
    row_ = compound::add_counter(ctx, "current_row_index");
    choices_ = compound::add_counter(ctx, "choice_counter");
  }

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override {
    float* chi = chi_.data<float>();
    const std::int64_t every = std::int64_t(p_.transfer_every) * n;
    std::vector<float> qx(static_cast<std::size_t>(in_)), qd(static_cast<std::size_t>(out_));
    for (std::int64_t m = 0; m < n; ++m) {
      quantise(x + m * in_, in_, p_.n_x_bins, p_.stoc_round_x, seed, qx.data());
      quantise(d + m * out_, out_, p_.n_d_bins, p_.stoc_round_d, seed, qd.data());
      for (std::int64_t i = 0; i < out_; ++i) {
        const float a = lr * qd[std::size_t(i)];
        if (a == 0.f) continue;
        float* row = chi + i * in_;
        for (std::int64_t j = 0; j < in_; ++j) row[j] += a * qx[std::size_t(j)];
      }
      std::int64_t& count = value(update_count_);
      if (every > 0 && count > 0 && count % every == 0) transfer(seed);
      ++count;
    }
    subs_.reduce({1.f}, w);
  }

  void post_update(float* w, std::uint64_t seed) override {
    subs_.post_update(seed);
    subs_.reduce({1.f}, w);
  }

  void weights_set(float* w) override {
    std::fill(chi_.data<float>(), chi_.data<float>() + chi_.numel(), 0.f);
    value(update_count_) = 0;
    value(row_) = 0;
    std::copy(w, w + subs_.numel(), subs_.weights(0));
    subs_.device(0).weights_set(subs_.weights(0));
    subs_.reduce({1.f}, w);
  }

  void reseed(std::uint64_t seed) override {
    subs_.reseed(seed);
    std::fill(chi_.data<float>(), chi_.data<float>() + chi_.numel(), 0.f);
    for (Tensor* t : {&update_count_, &row_, &choices_}) value(*t) = 0;
  }

 private:
  // q = v (bins 0) or its quantised value; uniforms from the CompoundChoice stream.
  void quantise(const float* v, std::int64_t size, int bins, bool stochastic, std::uint64_t seed, float* q) {
    if (bins <= 0) {
      std::copy(v, v + size, q);
      return;
    }
    const float half = float(bins / 2);
    float amax = 0.f;
    for (std::int64_t k = 0; k < size; ++k) amax = std::max(amax, std::abs(v[k]));
    float width = amax / half;
    if (width == 0.f || !std::isfinite(width)) width = 1.f;
    std::int64_t& choices = value(choices_);
    for (std::int64_t k = 0; k < size; ++k) {
      const float u = stochastic ? streams_.uniform(seed, std::uint64_t(choices + k)) - 0.5f : 0.f;
      q[k] = std::min(half, std::max(-half, std::rint(v[k] / width + u))) * width;
    }
    if (stochastic) choices += size;
  }

  void transfer(std::uint64_t seed) {
    if (p_.n_rows_per_transfer == 0 || p_.transfer_lr == 0.f) return;
    const std::int64_t rows = p_.n_rows_per_transfer < 0 ? out_ : std::min<std::int64_t>(p_.n_rows_per_transfer, out_);
    std::int64_t first = value(row_);
    if (p_.random_row && rows < out_) {
      first = std::min(out_ - 1, std::int64_t(streams_.uniform(seed, std::uint64_t(value(choices_))) * float(out_)));
      ++value(choices_);
    }
    float* chi = chi_.data<float>();
    std::vector<float> k(std::size_t(rows * in_)), e(std::size_t(rows * out_), 0.f);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = (first + r) % out_;
      e[std::size_t(r * out_ + i)] = 1.f;
      for (std::int64_t j = 0; j < in_; ++j) {
        float& c = chi[i * in_ + j];
        const float steps = std::trunc(c / g_);
        k[std::size_t(r * in_ + j)] = steps;
        c -= steps * g_;
      }
    }
    subs_.device(0).update_with({&transfer_update_, analog::PulseDirections::Both}, k.data(), e.data(), rows,
                                g_ * p_.transfer_lr, subs_.weights(0), seed);
    value(row_) = (first + rows) % out_;
  }

  std::shared_ptr<const MixedPrecisionModel> model_;
  const MixedPrecisionParameter& p_;
  compound::SubDevices subs_;
  compound::Streams streams_;
  std::int64_t out_, in_;
  float g_;
  analog::UpdatePulseParams transfer_update_;
  Tensor chi_, update_count_, row_, choices_;
};

std::unique_ptr<TileDevice> MixedPrecisionModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const MixedPrecisionModel>(shared_from_this());
  return std::make_unique<MixedPrecisionTileDevice>(self, ctx);
}

}  // namespace

std::shared_ptr<const DeviceModel> make_mixed_precision_compound(const nlohmann::json& j, const std::string& where) {
  MixedPrecisionParameter p;
  config::ObjectReader r(j, where);
  r.find("type");
  const nlohmann::json* dev = r.find("device");
  std::shared_ptr<const DeviceModel> device =
      make_device_model(dev != nullptr ? *dev : nlohmann::json{{"type", "ConstantStepDevice"}}, r.path("device"));
  r.read("construction_seed", p.construction_seed);
  r.read("transfer_every", p.transfer_every);
  r.read("n_rows_per_transfer", p.n_rows_per_transfer);
  r.read("random_row", p.random_row);
  r.read("granularity", p.granularity);
  r.read("transfer_lr", p.transfer_lr);
  r.read("n_x_bins", p.n_x_bins);
  r.read("n_d_bins", p.n_d_bins);
  r.read("stoc_round_x", p.stoc_round_x);
  r.read("stoc_round_d", p.stoc_round_d);
  r.finish();
  const config::RangeCheck c(where);
  // The transfers pulse the device with update_with in both directions: a
  // pulsed device or a OneSidedUnitCell (aihwkit's MixedPrecisionPCMPreset).
  if (!std::dynamic_pointer_cast<const PulsedDeviceModel>(device) && device->type() != "OneSidedUnitCell")
    c.fail("device", device->type(), "a pulsed device or a OneSidedUnitCell (other unit cells are not implemented yet)");
  c.at_least("transfer_every", p.transfer_every, 0.0);
  c.at_least("n_rows_per_transfer", p.n_rows_per_transfer, -1.0);
  c.at_least("granularity", p.granularity, 0.0);
  c.finite("granularity", p.granularity);
  c.at_least("transfer_lr", p.transfer_lr, 0.0);
  c.finite("transfer_lr", p.transfer_lr);
  c.at_least("n_x_bins", p.n_x_bins, 0.0);
  c.at_least("n_d_bins", p.n_d_bins, 0.0);
  if (p.n_x_bins == 1) c.fail("n_x_bins", "1", "0 (no quantisation) or >= 2");
  if (p.n_d_bins == 1) c.fail("n_d_bins", "1", "0 (no quantisation) or >= 2");
  auto model = std::make_shared<MixedPrecisionModel>(p, std::move(device));
  if (!(model->granularity() > 0.f)) c.fail("granularity", "0", "> 0 (the device has no weight granularity)");
  return model;
}

}  // namespace aimc
