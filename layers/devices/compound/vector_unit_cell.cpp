// VectorUnitCell (aihwkit's VectorResistiveDevice): n sub-devices, the weight
// W = Σ_k γ_k·W_k (gamma_vec; empty: 1/n each). Which sub-devices receive the
// pulses of one sample (one vector update), the update_policy:
//   ALL               every device (the same coincidences, own step noise)
//   SINGLE_FIXED      device first_update_idx only
//   SINGLE_SEQUENTIAL idx ← (idx + 1) mod n before each sample, so the
//                     first sample goes to first_update_idx + 1
//   SINGLE_RANDOM     idx = floor(U·n) for each sample
// Each device converts lr·d·xᵀ to pulses with its own weight granularity
// (aihwkit uses the mean over the devices: the same for devices of one kind,
// as in every preset).
// Setting the weights gives every device W_k = W (SINGLE_FIXED: only the
// fixed one), each clipped to its bounds, and W is recomputed.
// ReferenceUnitCell (reference_unit_cell.cpp) is this cell with other defaults.
#include "layers/devices/compound/vector_unit_cell.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace aimc {

namespace {

using compound::value;

constexpr config::EnumName<VectorUpdatePolicy> kPolicies[] = {
    {VectorUpdatePolicy::All, "ALL", "All"},
    {VectorUpdatePolicy::SingleFixed, "SINGLE_FIXED", "SingleFixed"},
    {VectorUpdatePolicy::SingleSequential, "SINGLE_SEQUENTIAL", "SingleSequential"},
    {VectorUpdatePolicy::SingleRandom, "SINGLE_RANDOM", "SingleRandom"},
};

class VectorTileDevice : public TileDevice {
 public:
  VectorTileDevice(std::shared_ptr<const VectorUnitCellModel> model, const TileDeviceContext& ctx)
      : model_(std::move(model)),
        p_(model_->parameter()),
        subs_(ctx, model_->devices(), std::vector<analog::UpdatePulseParams>(model_->devices().size(), ctx.update),
              p_.update_policy == VectorUpdatePolicy::All),
        streams_(ctx),
        gamma_(model_->gamma()),
        out_(ctx.out_size),
        in_(ctx.in_size) {
    idx_ = compound::add_counter(ctx, "current_device_idx");
    choices_ = compound::add_counter(ctx, "choice_counter");
    value(idx_) = p_.first_update_idx;
  }

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override {
    const std::int64_t count = std::int64_t(subs_.size());
    if (p_.update_policy == VectorUpdatePolicy::All) {
      for (std::int64_t k = 0; k < count; ++k) subs_.device(k).update(x, d, n, lr, subs_.weights(k), seed);
    } else {
      // One device per sample; runs of samples for the same device go together
      // (the pulse streams are addressed per sample, so the bits are the same).
      std::int64_t& idx = value(idx_);
      std::int64_t& choices = value(choices_);
      std::int64_t start = 0, current = -1;
      auto flush = [&](std::int64_t end) {
        if (current >= 0 && end > start)
          subs_.device(current).update(x + start * in_, d + start * out_, end - start, lr, subs_.weights(current), seed);
      };
      for (std::int64_t m = 0; m < n; ++m) {
        if (p_.update_policy == VectorUpdatePolicy::SingleSequential) {
          idx = (idx + 1) % count;
        } else if (p_.update_policy == VectorUpdatePolicy::SingleRandom) {
          idx = std::min(count - 1, std::int64_t(streams_.uniform(seed, std::uint64_t(choices)) * float(count)));
          ++choices;
        }
        if (idx != current) {
          flush(m);
          start = m;
          current = idx;
        }
      }
      flush(n);
    }
    subs_.reduce(gamma_, w);
  }

  void post_update(float* w, std::uint64_t seed) override {
    subs_.post_update(seed);
    subs_.reduce(gamma_, w);
  }

  void weights_set(float* w) override {
    const std::int64_t size = subs_.numel();
    for (std::size_t k = 0; k < subs_.size(); ++k) {
      if (p_.update_policy == VectorUpdatePolicy::SingleFixed && std::int64_t(k) != value(idx_)) continue;
      std::copy(w, w + size, subs_.weights(k));
      subs_.device(k).weights_set(subs_.weights(k));
    }
    subs_.reduce(gamma_, w);
  }

  void reseed(std::uint64_t seed) override {
    subs_.reseed(seed);
    value(idx_) = p_.first_update_idx;
    value(choices_) = 0;
  }

 private:
  std::shared_ptr<const VectorUnitCellModel> model_;
  const VectorUnitCellParameter& p_;
  compound::SubDevices subs_;
  compound::Streams streams_;
  std::vector<float> gamma_;
  std::int64_t out_, in_;
  Tensor idx_, choices_;
};

}  // namespace

const char* to_string(VectorUpdatePolicy policy) { return config::enum_to_name<VectorUpdatePolicy>(policy, kPolicies); }

VectorUnitCellModel::VectorUnitCellModel(std::string type, VectorUnitCellParameter p, compound::Models devices)
    : type_(std::move(type)), p_(std::move(p)), devices_(std::move(devices)) {}

std::vector<float> VectorUnitCellModel::gamma() const {
  if (!p_.gamma_vec.empty()) return p_.gamma_vec;
  return std::vector<float>(devices_.size(), 1.f / float(devices_.size()));
}

nlohmann::json VectorUnitCellModel::to_json() const {
  return {{"type", type_},
          {"unit_cell_devices", compound::devices_json(devices_)},
          {"construction_seed", p_.construction_seed},
          {"update_policy", to_string(p_.update_policy)},
          {"first_update_idx", p_.first_update_idx},
          {"gamma_vec", compound::float_list_json(p_.gamma_vec)}};
}

std::unique_ptr<TileDevice> VectorUnitCellModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const VectorUnitCellModel>(shared_from_this());
  return std::make_unique<VectorTileDevice>(self, ctx);
}

std::shared_ptr<const DeviceModel> make_vector_like(const char* type, VectorUnitCellParameter p,
                                                    const nlohmann::json& j, const std::string& where,
                                                    std::size_t exact_devices) {
  config::ObjectReader r(j, where);
  r.find("type");
  compound::Models devices = compound::read_devices(r, 1);
  r.read("construction_seed", p.construction_seed);
  r.read_enum("update_policy", p.update_policy, std::span<const config::EnumName<VectorUpdatePolicy>>(kPolicies));
  r.read("first_update_idx", p.first_update_idx);
  p.gamma_vec = compound::read_float_list(r, "gamma_vec", p.gamma_vec);
  r.finish();
  if (exact_devices > 0) {
    // aihwkit's ReferenceUnitCell keeps the first two devices, or duplicates a single one.
    if (devices.size() > exact_devices) devices.resize(exact_devices);
    while (devices.size() < exact_devices) devices.push_back(devices.front());
  }
  const config::RangeCheck c(where);
  const auto n = std::int64_t(devices.size());
  c.in_closed("first_update_idx", p.first_update_idx, 0, double(n - 1));
  if (!p.gamma_vec.empty() && std::int64_t(p.gamma_vec.size()) != n)
    c.fail("gamma_vec", compound::float_list_json(p.gamma_vec).dump(),
           "empty (1/n each) or one value per device (" + std::to_string(n) + ")");
  for (std::size_t k = 0; k < p.gamma_vec.size(); ++k) c.finite("gamma_vec", p.gamma_vec[k]);
  return std::make_shared<VectorUnitCellModel>(type, p, std::move(devices));
}

std::shared_ptr<const DeviceModel> make_vector_unit_cell(const nlohmann::json& j, const std::string& where) {
  return make_vector_like("VectorUnitCell", VectorUnitCellParameter{}, j, where, 0);
}

}  // namespace aimc
