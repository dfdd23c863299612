// TransferCompound (aihwkit 1.1.0's TransferResistiveDevice, "Tiki-Taka"):
// n ≥ 2 sub-devices; unit_cell_devices[0] is the fast device A, every other
// one is a copy of unit_cell_devices[1] (the slow devices C). Only A receives
// the SGD pulses; every `transfer_every` samples (units_in_mbatch: times the
// mini-batch rows) the next n_reads_per_transfer columns of device k are read
// with analog forward passes of one-hot inputs (transfer_forward, noise and
// bound management forced to NONE as aihwkit) and pulsed onto device k+1 with
// transfer_update:
//     W_{k+1}[:, c] += lr_t·read(W_k)[:, c],  lr_t = transfer_lr_vec[k]·(scale_transfer_lr ? SGD lr : 1)
// (in expectation; it is a stochastic pulsed update of the read values).
// Columns go round in order (random_selection: a uniform start column).
// The weight is W = Σ_k γ_k·W_k with γ = gamma_vec, or γ_{n−1−i} = gamma^i
// (gamma 0, the default: W = W_{n−1}, A hidden).
// aihwkit's quirk, kept: with fast_lr > 0 (default 1.0) A is pulsed with
// learning rate fast_lr whatever the SGD learning rate; the SGD learning rate
// only scales the transfers.
// Default transfer cycles (transfer_every_vec empty): t_0 = transfer_every,
// t_{k+1} = t_k·out_size/n_reads_per_transfer, and t_{n−1} = 0 with
// no_self_transfer (aihwkit multiplies by the output size, not the input size
// its docs name).
// Setting the weights zeroes every device and writes W/γ_{n−1} to the last.
// Not implemented (ConfigError): transfer_columns = false (row transfers),
// with_reset_prob > 0, a transfer read with weight read asymmetry.
#include "layers/devices/compound/transfer_compound.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/config/io_parameters_json.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {

using compound::value;

void TransferParameter::read(config::ObjectReader& r) {
  r.read("construction_seed", construction_seed);
  r.read("gamma", gamma);
  gamma_vec = compound::read_float_list(r, "gamma_vec", gamma_vec);
  r.read("transfer_every", transfer_every);
  r.read("no_self_transfer", no_self_transfer);
  transfer_every_vec = compound::read_float_list(r, "transfer_every_vec", transfer_every_vec);
  r.read("units_in_mbatch", units_in_mbatch);
  r.read("n_reads_per_transfer", n_reads_per_transfer);
  r.read("transfer_columns", transfer_columns);
  r.read("with_reset_prob", with_reset_prob);
  r.read("random_selection", random_selection);
  r.read("fast_lr", fast_lr);
  r.read("transfer_lr", transfer_lr);
  transfer_lr_vec = compound::read_float_list(r, "transfer_lr_vec", transfer_lr_vec);
  r.read("scale_transfer_lr", scale_transfer_lr);
  if (auto* v = r.find("transfer_forward")) transfer_forward = io_parameters_from_json(*v, r.path("transfer_forward"));
  if (auto* v = r.find("transfer_update")) transfer_update = UpdateParameters::from_json(*v, r.path("transfer_update"));
}

void TransferParameter::write(nlohmann::json& j) const {
  using compound::float_list_json;
  using config::float_to_json;
  j["construction_seed"] = construction_seed;
  j["gamma"] = float_to_json(gamma);
  j["gamma_vec"] = float_list_json(gamma_vec);
  j["transfer_every"] = float_to_json(transfer_every);
  j["no_self_transfer"] = no_self_transfer;
  j["transfer_every_vec"] = float_list_json(transfer_every_vec);
  j["units_in_mbatch"] = units_in_mbatch;
  j["n_reads_per_transfer"] = n_reads_per_transfer;
  j["transfer_columns"] = transfer_columns;
  j["with_reset_prob"] = float_to_json(with_reset_prob);
  j["random_selection"] = random_selection;
  j["fast_lr"] = float_to_json(fast_lr);
  j["transfer_lr"] = float_to_json(transfer_lr);
  j["transfer_lr_vec"] = float_list_json(transfer_lr_vec);
  j["scale_transfer_lr"] = scale_transfer_lr;
  j["transfer_forward"] = aimc::to_json(transfer_forward);
  j["transfer_update"] = transfer_update.to_json();
}

void TransferParameter::validate(const std::string& where, std::size_t n, bool negative_every) const {
  const config::RangeCheck c(where);
  auto check_list = [&](const char* field, const std::vector<float>& list, bool non_negative) {
    if (!list.empty() && list.size() != n)
      c.fail(field, compound::float_list_json(list).dump(),
             "empty or one value per device (" + std::to_string(n) + ")");
    for (float e : list) non_negative ? c.at_least(field, e, 0.0) : c.finite(field, e);
  };
  c.finite("gamma", gamma);
  check_list("gamma_vec", gamma_vec, false);
  if (!gamma_vec.empty() && gamma_vec.back() == 0.f)
    c.fail("gamma_vec", compound::float_list_json(gamma_vec).dump(), "a last value other than 0");
  if (!negative_every) c.at_least("transfer_every", transfer_every, 0.0);
  c.finite("transfer_every", transfer_every);
  check_list("transfer_every_vec", transfer_every_vec, true);
  c.at_least("n_reads_per_transfer", n_reads_per_transfer, 1.0);
  if (!transfer_columns) c.fail("transfer_columns", "false", "true (row transfers are not implemented yet)");
  if (with_reset_prob != 0.f)
    c.fail("with_reset_prob", config::format_number(with_reset_prob), "0 (resets on transfer are not implemented yet)");
  c.at_least("fast_lr", fast_lr, 0.0);
  c.finite("fast_lr", fast_lr);
  c.at_least("transfer_lr", transfer_lr, 0.0);
  c.finite("transfer_lr", transfer_lr);
  check_list("transfer_lr_vec", transfer_lr_vec, true);
  if (transfer_forward.w_read_asymmetry_dtod != 0.f)
    config::RangeCheck(where + ".transfer_forward")
        .fail("w_read_asymmetry_dtod", config::format_number(transfer_forward.w_read_asymmetry_dtod),
              "0 (not implemented for transfer reads yet)");
}

UpdateParameters single_pulse_update_parameters() {
  UpdateParameters up;
  up.desired_bl = 1;
  up.update_bl_management = false;
  up.update_management = false;
  return up;
}

compound::Models TransferCompoundModel::devices() const {
  compound::Models m{devices_[0]};
  for (std::size_t k = 1; k < devices_.size(); ++k) m.push_back(devices_[1]);
  return m;
}

float TransferCompoundModel::granularity(std::size_t k) const {
  const auto* pulsed = dynamic_cast<const PulsedDeviceModel*>(devices_[std::min<std::size_t>(k, 1)].get());
  return pulsed != nullptr ? pulsed->granularity() : 0.f;
}

nlohmann::json TransferCompoundModel::to_json() const {
  nlohmann::json j{{"type", type_}, {"unit_cell_devices", compound::devices_json(devices_)}};
  p_.write(j);
  write_own(j);
  return j;
}

std::unique_ptr<TileDevice> TransferCompoundModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const TransferCompoundModel>(shared_from_this());
  return std::make_unique<TransferTileDevice>(self, ctx);
}

namespace {

// The transfer read: aihwkit turns noise and bound management off.
IOParameters read_io(IOParameters io) {
  io.noise_management = NoiseManagementType::None;
  io.bound_management = BoundManagementType::None;
  return io;
}

}  // namespace

TransferTileDevice::TransferTileDevice(std::shared_ptr<const TransferCompoundModel> model,
                                       const TileDeviceContext& ctx)
    : model_(std::move(model)),
      p_(model_->parameter()),
      n_(model_->devices().size()),
      subs_(ctx, model_->devices(), updates(ctx), /*shared_pulses=*/false),
      streams_(ctx),
      out_(ctx.out_size),
      in_(ctx.in_size),
      reader_(ctx, read_io(p_.transfer_forward)) {
  const std::size_t n = n_;
  n_reads_ = std::min<std::int64_t>(p_.n_reads_per_transfer, in_);
  gamma_ = p_.gamma_vec;
  if (gamma_.empty()) {
    gamma_.assign(n, 0.f);
    for (std::size_t i = 0; i < n; ++i) gamma_[n - 1 - i] = i == 0 ? 1.f : std::pow(p_.gamma, float(i));
  }
  every_ = p_.transfer_every_vec;
  if (every_.empty()) {
    every_.assign(n, 0.f);
    every_[0] = p_.transfer_every;
    for (std::size_t k = 1; k < n; ++k) every_[k] = every_[k - 1] * float(out_) / float(n_reads_);
    if (p_.no_self_transfer) every_[n - 1] = 0.f;
  }
  lr_vec_ = p_.transfer_lr_vec.empty() ? std::vector<float>(n, p_.transfer_lr) : p_.transfer_lr_vec;
  update_count_ = compound::add_counter(ctx, "update_count");
  slices_ = compound::add_counter(ctx, "current_slice", std::int64_t(n));
  choices_ = compound::add_counter(ctx, "choice_counter");
}

std::vector<analog::UpdatePulseParams> TransferTileDevice::updates(const TileDeviceContext& ctx) const {
  // A learns with the config's UpdateParameters, the others with transfer_update.
  std::vector<analog::UpdatePulseParams> u(n_, p_.transfer_update.kernel_params());
  u[0] = ctx.update;
  return u;
}

std::int64_t TransferTileDevice::transfer_every(std::size_t k, std::int64_t m_batch) const {
  return p_.units_in_mbatch ? std::max<std::int64_t>(std::int64_t(std::ceil(every_[k] * float(m_batch))), 0)
                            : std::max<std::int64_t>(std::int64_t(std::round(every_[k])), 0);
}

void TransferTileDevice::pulse_fast(const float* x, const float* d, std::int64_t rows, float sgd_lr,
                                    std::uint64_t seed) {
  const float count_lr = p_.fast_lr > 0.f ? p_.fast_lr : sgd_lr;
  subs_.device(0).update(x, d, rows, count_lr, subs_.weights(0), seed);
}

void TransferTileDevice::update(const float* x, const float* d, std::int64_t n, float lr, float* w,
                                std::uint64_t seed) {
  sgd_lr_ = lr;
  std::vector<std::int64_t> every(n_);
  for (std::size_t k = 0; k < n_; ++k) every[k] = transfer_every(k, n);
  std::int64_t& count = value(update_count_);
  std::int64_t start = 0;
  for (std::int64_t m = 0; m < n; ++m) {
    ++count;
    bool any = false;
    for (std::size_t k = 0; k < n_; ++k) any = any || (every[k] > 0 && count % every[k] == 0);
    if (!any) continue;
    // The samples so far reach A before the transfer reads it.
    pulse_fast(x + start * in_, d + start * out_, m + 1 - start, lr, seed);
    start = m + 1;
    for (std::size_t k = 0; k < n_; ++k)
      if (every[k] > 0 && count % every[k] == 0) transfer(std::min(k + 1, n_ - 1), k, lr, seed);
  }
  if (start < n) pulse_fast(x + start * in_, d + start * out_, n - start, lr, seed);
  subs_.reduce(gamma_, w);
}

void TransferTileDevice::post_update(float* w, std::uint64_t seed) {
  subs_.post_update(seed);
  subs_.reduce(gamma_, w);
}

void TransferTileDevice::weights_set(float* w) {
  const std::int64_t size = subs_.numel();
  for (std::size_t k = 0; k < n_; ++k) {
    float* wk = subs_.weights(k);
    for (std::int64_t i = 0; i < size; ++i) wk[i] = k + 1 == n_ ? w[i] / gamma_[k] : 0.f;
    subs_.device(k).weights_set(wk);
  }
  subs_.reduce(gamma_, w);
}

void TransferTileDevice::reseed(std::uint64_t seed) {
  subs_.reseed(seed);
  value(update_count_) = 0;
  for (std::size_t k = 0; k < n_; ++k) value(slices_, std::int64_t(k)) = 0;
  value(choices_) = 0;
  reader_.reseed(seed);
  reset_state();
}

void TransferTileDevice::transfer(std::size_t to, std::size_t from, float sgd_lr, std::uint64_t seed) {
  std::int64_t first = value(slices_, std::int64_t(from));
  if (p_.random_selection) {
    first = std::min(in_ - 1, std::int64_t(streams_.uniform(seed, std::uint64_t(value(choices_))) * float(in_)));
    ++value(choices_);
  }
  const float lr = lr_vec_[from] * (p_.scale_transfer_lr ? sgd_lr : 1.f);
  read_and_update(to, from, first, lr, seed);
  value(slices_, std::int64_t(from)) = (first + n_reads_) % in_;
}

void TransferTileDevice::read_and_update(std::size_t to, std::size_t from, std::int64_t first, float lr,
                                         std::uint64_t seed) {
  std::vector<float> v(std::size_t(n_reads_ * in_), 0.f), y(std::size_t(n_reads_ * out_), 0.f);
  for (std::int64_t r = 0; r < n_reads_; ++r) v[std::size_t(r * in_ + (first + r) % in_)] = 1.f;
  reader_.read(subs_.weights(from), v.data(), n_reads_, y.data(), seed);
  // W_to −= lr·d·vᵀ with d = −y.
  for (float& e : y) e = -e;
  subs_.device(to).update(v.data(), y.data(), n_reads_, lr, subs_.weights(to), seed);
}

std::shared_ptr<const DeviceModel> make_transfer_compound(const nlohmann::json& j, const std::string& where) {
  TransferParameter p;
  config::ObjectReader r(j, where);
  r.find("type");
  compound::Models devices = compound::read_devices(r, 2);
  p.read(r);
  r.finish();
  p.validate(where, devices.size(), false);
  return std::make_shared<TransferCompoundModel>("TransferCompound", std::move(p), std::move(devices));
}

}  // namespace aimc
