// OneSidedUnitCell (aihwkit 1.1.0's OneSidedResistiveDevice): two devices
// that only ever move up, W = W_1 − W_0 (device 1 is g⁺, device 0 is g⁻).
// Both are built from unit_cell_devices[0] (a second entry is ignored, as in
// aihwkit) and see the same coincidences: an up pulse moves g⁺ up, a down
// pulse moves g⁻ up.
// Refresh (refresh_every > 0): after every refresh_every samples (times the
// mini-batch rows with units_in_mbatch) both devices are read column by column
// with analog forward passes (refresh_forward) giving w⁺, w⁻; with
// w_max the device's mean upper bound, an element is refreshed when
//   w⁺ > w⁻ ? (w⁺/w_max > upper && w⁻/w_max > lower) : (w⁺/w_max > lower && w⁻/w_max > upper)
// (upper, lower = refresh_upper_thres, refresh_lower_thres). Both devices of
// a refreshed element are reset (reset_bias + reset_std·ξ) and the
// difference is written with a pulsed update (refresh_update) onto g⁺ when
// w⁺ > w⁻, else onto g⁻ — as aihwkit 1.1.0 does it: it asks for lr −1 to
// add the difference, but its pulse updater uses |lr|, so the difference is
// subtracted (measured: a pair (0.9, 0.6) with bounds ±1 becomes (−0.3, 0)).
// With devices bounded below at 0 (PCM) a refreshed pair is simply reset.
// Setting the weights gives g⁺ = max(W, 0), g⁻ = max(−W, 0).
// Not implemented (ConfigError): copy_inverted = true.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/io_parameters_json.h"
#include "layers/config/update_parameters.h"
#include "layers/devices/compound/compound_device.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

using compound::value;

struct OneSidedParameter {
  int construction_seed = 0;  // accepted, unused (aimc draws from the chip seed)
  int refresh_every = 0;
  bool units_in_mbatch = true;
  float refresh_upper_thres = 0.75f;
  float refresh_lower_thres = 0.25f;
  IOParameters refresh_forward;
  UpdateParameters refresh_update;
  bool copy_inverted = false;
};

class OneSidedModel : public CompoundDeviceModel {
 public:
  OneSidedModel(OneSidedParameter p, compound::Models devices) : p_(std::move(p)), devices_(std::move(devices)) {}
  std::string type() const override { return "OneSidedUnitCell"; }
  const OneSidedParameter& parameter() const { return p_; }
  // Both devices are the first one.
  compound::Models devices() const { return {devices_[0], devices_[0]}; }
  // The mean of its devices' granularities (aihwkit's VectorRPUDevice).
  float granularity() const override { return devices_[0]->granularity(); }
  // Its mean upper bound (the refresh's scale).
  float w_max() const { return std::abs(static_cast<const PulsedDeviceModel&>(*devices_[0]).common().w_max); }
  nlohmann::json to_json() const override {
    using config::float_to_json;
    return {{"type", type()},
            {"unit_cell_devices", compound::devices_json(devices_)},
            {"construction_seed", p_.construction_seed},
            {"refresh_every", p_.refresh_every},
            {"units_in_mbatch", p_.units_in_mbatch},
            {"refresh_upper_thres", float_to_json(p_.refresh_upper_thres)},
            {"refresh_lower_thres", float_to_json(p_.refresh_lower_thres)},
            {"refresh_forward", aimc::to_json(p_.refresh_forward)},
            {"refresh_update", p_.refresh_update.to_json()},
            {"copy_inverted", p_.copy_inverted}};
  }
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 private:
  OneSidedParameter p_;
  compound::Models devices_;
};

constexpr std::size_t kMinus = 0, kPlus = 1;

class OneSidedTileDevice : public TileDevice {
 public:
  OneSidedTileDevice(std::shared_ptr<const OneSidedModel> model, const TileDeviceContext& ctx)
      : model_(std::move(model)),
        p_(model_->parameter()),
        subs_(ctx, model_->devices(), {ctx.update, ctx.update}, /*shared_pulses=*/true),
        refresh_update_(p_.refresh_update.kernel_params()),
        out_(ctx.out_size),
        in_(ctx.in_size),
        reader_(ctx, p_.refresh_forward) {
    update_count_ = compound::add_counter(ctx, "update_count");
    refresh_count_ = compound::add_counter(ctx, "refresh_count");
  }

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override {
    pulse_both(nullptr, x, d, n, lr, w, seed);
  }

  // As update with other UpdateParameters (a MixedPrecisionCompound's
  // transfers); the cell takes both directions itself.
  void update_with(const PulseOptions& options, const float* x, const float* d, std::int64_t n, float lr, float* w,
                   std::uint64_t seed) override {
    if (options.directions != analog::PulseDirections::Both)
      throw ValueError("OneSidedUnitCell: a one-sided update of a unit cell is not defined");
    pulse_both(options.update, x, d, n, lr, w, seed);
  }


  void post_update(float* w, std::uint64_t seed) override {
    subs_.post_update(seed);
    reduce(w);
  }

  void weights_set(float* w) override {
    const std::int64_t size = subs_.numel();
    float* plus = subs_.weights(kPlus);
    float* minus = subs_.weights(kMinus);
    for (std::int64_t k = 0; k < size; ++k) {
      plus[k] = std::max(w[k], 0.f);
      minus[k] = std::max(-w[k], 0.f);
    }
    subs_.device(kPlus).weights_set(plus);
    subs_.device(kMinus).weights_set(minus);
    reduce(w);
  }

  void reseed(std::uint64_t seed) override {
    subs_.reseed(seed);
    value(update_count_) = 0;
    value(refresh_count_) = 0;
    reader_.reseed(seed);
  }

 private:
  // Up pulses to the plus device and down pulses, as up pulses, to the minus
  // device (update: UpdateParameters other than the cell's, or nullptr),
  // with the refresh checks in between.
  void pulse_both(const analog::UpdatePulseParams* update, const float* x, const float* d, std::int64_t n, float lr,
                  float* w, std::uint64_t seed) {
    const std::int64_t every = std::int64_t(p_.refresh_every) * (p_.units_in_mbatch ? n : 1);
    std::int64_t& count = value(update_count_);
    std::int64_t start = 0;
    auto pulse = [&](std::int64_t end) {
      if (end <= start) return;
      subs_.device(kPlus).update_with({update, analog::PulseDirections::UpOnly}, x + start * in_, d + start * out_,
                                      end - start, lr, subs_.weights(kPlus), seed);
      subs_.device(kMinus).update_with({update, analog::PulseDirections::DownAsUp}, x + start * in_,
                                       d + start * out_, end - start, lr, subs_.weights(kMinus), seed);
      start = end;
    };
    for (std::int64_t m = 0; m < n; ++m) {
      ++count;
      if (every > 0 && count % every == 0) {
        pulse(m + 1);
        refresh(seed);
      }
    }
    pulse(n);
    reduce(w);
  }


  void reduce(float* w) { subs_.reduce({-1.f, 1.f}, w); }

  void refresh(std::uint64_t seed) {
    // Read every column of both devices: one-hot inputs, Y[j, i] = w_ij.
    std::vector<float> eye(std::size_t(in_ * in_), 0.f), yp(std::size_t(in_ * out_)), ym(std::size_t(in_ * out_));
    for (std::int64_t j = 0; j < in_; ++j) eye[std::size_t(j * in_ + j)] = 1.f;
    reader_.read(subs_.weights(kPlus), eye.data(), in_, yp.data(), seed);
    reader_.read(subs_.weights(kMinus), eye.data(), in_, ym.data(), seed);
    const float w_max = model_->w_max();
    const float upper = p_.refresh_upper_thres, lower = p_.refresh_lower_thres;
    std::vector<std::int64_t> elements;
    // Rewrite rows (one per column with a refreshed element): x one-hot, d = the difference.
    std::vector<std::int64_t> columns;
    std::vector<float> d_plus, d_minus;
    for (std::int64_t j = 0; j < in_; ++j) {
      bool any = false;
      std::vector<float> dp(std::size_t(out_), 0.f), dm(std::size_t(out_), 0.f);
      for (std::int64_t i = 0; i < out_; ++i) {
        const float wp = yp[std::size_t(j * out_ + i)], wm = ym[std::size_t(j * out_ + i)];
        const bool refresh = wp > wm ? (wp / w_max > upper && wm / w_max > lower)
                                     : (wp / w_max > lower && wm / w_max > upper);
        if (!refresh) continue;
        any = true;
        elements.push_back(i * in_ + j);
        if (wp > wm)
          dp[std::size_t(i)] = wp - wm;
        else
          dm[std::size_t(i)] = wm - wp;
      }
      if (!any) continue;
      columns.push_back(j);
      d_plus.insert(d_plus.end(), dp.begin(), dp.end());
      d_minus.insert(d_minus.end(), dm.begin(), dm.end());
    }
    if (elements.empty()) return;
    ++value(refresh_count_);
    subs_.device(kPlus).reset_elements(subs_.weights(kPlus), elements, seed);
    subs_.device(kMinus).reset_elements(subs_.weights(kMinus), elements, seed);
    const auto rows = std::int64_t(columns.size());
    std::vector<float> x(std::size_t(rows * in_), 0.f);
    for (std::int64_t r = 0; r < rows; ++r) x[std::size_t(r * in_ + columns[std::size_t(r)])] = 1.f;
    // aihwkit's lr −1 acts as |lr| = 1 (see the top of the file): W −= difference.
    subs_.device(kPlus).update_with({&refresh_update_, analog::PulseDirections::Both}, x.data(), d_plus.data(), rows,
                                    1.f, subs_.weights(kPlus), seed);
    subs_.device(kMinus).update_with({&refresh_update_, analog::PulseDirections::Both}, x.data(), d_minus.data(),
                                     rows, 1.f, subs_.weights(kMinus), seed);
  }

  std::shared_ptr<const OneSidedModel> model_;
  const OneSidedParameter& p_;
  compound::SubDevices subs_;
  analog::UpdatePulseParams refresh_update_;
  std::int64_t out_, in_;
  compound::AnalogReader reader_;
  Tensor update_count_, refresh_count_;
};

std::unique_ptr<TileDevice> OneSidedModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const OneSidedModel>(shared_from_this());
  return std::make_unique<OneSidedTileDevice>(self, ctx);
}

}  // namespace

std::shared_ptr<const DeviceModel> make_one_sided_unit_cell(const nlohmann::json& j, const std::string& where) {
  OneSidedParameter p;
  config::ObjectReader r(j, where);
  r.find("type");
  compound::Models devices = compound::read_devices(r, 1);
  r.read("construction_seed", p.construction_seed);
  r.read("refresh_every", p.refresh_every);
  r.read("units_in_mbatch", p.units_in_mbatch);
  r.read("refresh_upper_thres", p.refresh_upper_thres);
  r.read("refresh_lower_thres", p.refresh_lower_thres);
  if (auto* v = r.find("refresh_forward")) p.refresh_forward = io_parameters_from_json(*v, r.path("refresh_forward"));
  if (auto* v = r.find("refresh_update")) p.refresh_update = UpdateParameters::from_json(*v, r.path("refresh_update"));
  r.read("copy_inverted", p.copy_inverted);
  r.finish();
  const config::RangeCheck c(where);
  if (devices.size() > 2)
    c.fail("unit_cell_devices", compound::devices_json(devices).dump(), "one or two devices");
  for (const auto& d : devices)
    if (d->type() != devices[0]->type())
      c.fail("unit_cell_devices", compound::devices_json(devices).dump(), "devices of one type");
  if (!std::dynamic_pointer_cast<const PulsedDeviceModel>(devices[0]))
    c.fail("unit_cell_devices", devices[0]->type(), "pulsed devices (not unit cells)");
  c.at_least("refresh_every", p.refresh_every, 0.0);
  c.finite("refresh_upper_thres", p.refresh_upper_thres);
  c.finite("refresh_lower_thres", p.refresh_lower_thres);
  if (p.copy_inverted) c.fail("copy_inverted", "true", "false (not implemented yet)");
  if (p.refresh_every > 0 && std::static_pointer_cast<const PulsedDeviceModel>(devices[0])->common().write_noise_std > 0.f)
    c.fail("refresh_every", std::to_string(p.refresh_every),
           "0 with a device that has write noise (aihwkit cannot reset single elements then)");
  if (p.refresh_every > 0 && std::static_pointer_cast<const PulsedDeviceModel>(devices[0])->common().w_max == 0.f)
    c.fail("unit_cell_devices", devices[0]->type(), "a device with w_max > 0 (the refresh divides by it)");
  return std::make_shared<OneSidedModel>(std::move(p), std::move(devices));
}

}  // namespace aimc
