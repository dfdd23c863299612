// ChoppedTransferCompound (aihwkit 1.1.0's ChoppedTransferResistiveDevice,
// TTv3 / c-TTv2; with in_chop_prob 0 the TTv2 presets): two devices, A fully
// hidden (W = C), one column per transfer, a float buffer H.
// Gradient pulses onto A: the sign of coincidence (i, j) flips when
// in_chopper[j] ≠ out_chopper[i]; with auto_scale the running maxima
//   m ← (1 − τ)·m + τ·max|v|,  τ = (1 − auto_momentum)/m_batch (the first value sets m)
// of x and d set the pulse lr fast_lr·desired_bl·g_A/(m_x·m_d), else fast_lr
// (> 0) or the SGD lr.
// Transfer of column c (transfer_every samples apart, units_in_mbatch: times
// the mini-batch rows; transfer_every < 0: every round(num_states_A/in·|t|)):
//   bg = buffer_granularity·(auto_granularity > 0 ? g_A·auto_granularity/(in·|transfer_every|) : g_A)
//   s  = correct_gradient_magnitudes ? |lr|/count_lr/(bg·g_C/g_A) : |lr|/bg
//   h  = (no_buffer ? 0 : H[r, c]) ± s·read(A)[r, c]   (− when in_chopper[c] ≠ out_chopper[r])
//   |h| ≥ 1: n = clamp(trunc(h), ±transfer_update.desired_bl), h = forget_buffer ? momentum·h : h − (1 − momentum)·n
//   C[:, c] moves +n steps (pulsed update, lr step·g_C)
// then in_chopper[c] flips with probability in_chop_prob (in_chop_random)
// or every ceil(1/in_chop_prob) sweeps; after the last column each
// out_chopper[r] flips with probability out_chop_prob.
// With transfer_every < 0 only A's transfer is automatic (C never transfers).
#include <algorithm>
#include <cmath>

#include "layers/devices/compound/transfer_compound.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

using compound::value;

struct ChoppedParameter {
  float in_chop_prob = 0.1f;
  bool in_chop_random = true;
  float out_chop_prob = 0.f;
  float buffer_granularity = 1.f;
  float auto_granularity = 0.f;
  float step = 1.f;
  float momentum = 0.f;
  bool forget_buffer = true;
  bool no_buffer = false;
  bool auto_scale = false;
  float auto_momentum = 0.99f;
  bool correct_gradient_magnitudes = false;
};

class ChoppedModel : public TransferCompoundModel {
 public:
  ChoppedModel(TransferParameter p, ChoppedParameter c, compound::Models devices)
      : TransferCompoundModel("ChoppedTransferCompound", std::move(p), std::move(devices)), c_(c) {}
  const ChoppedParameter& chopped() const { return c_; }
  // Device k's (w_max − w_min)/granularity with its mean parameters.
  float num_states(std::size_t k) const {
    const auto& pulsed = static_cast<const PulsedDeviceModel&>(*devices()[k]);
    return (pulsed.common().w_max - pulsed.common().w_min) / pulsed.granularity();
  }
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 protected:
  void write_own(nlohmann::json& j) const override {
    using config::float_to_json;
    j["in_chop_prob"] = float_to_json(c_.in_chop_prob);
    j["in_chop_random"] = c_.in_chop_random;
    j["out_chop_prob"] = float_to_json(c_.out_chop_prob);
    j["buffer_granularity"] = float_to_json(c_.buffer_granularity);
    j["auto_granularity"] = float_to_json(c_.auto_granularity);
    j["step"] = float_to_json(c_.step);
    j["momentum"] = float_to_json(c_.momentum);
    j["forget_buffer"] = c_.forget_buffer;
    j["no_buffer"] = c_.no_buffer;
    j["auto_scale"] = c_.auto_scale;
    j["auto_momentum"] = float_to_json(c_.auto_momentum);
    j["correct_gradient_magnitudes"] = c_.correct_gradient_magnitudes;
  }

 private:
  ChoppedParameter c_;
};

class ChoppedTileDevice : public TransferTileDevice {
 public:
  ChoppedTileDevice(std::shared_ptr<const ChoppedModel> model, const TileDeviceContext& ctx)
      : TransferTileDevice(model, ctx), c_(model->chopped()), chopped_model_(std::move(model)),
        desired_bl_(ctx.update.desired_bl) {
    TileState& s = *ctx.state;
    buffer_ = s.add(ctx.prefix + "transfer_buffer", Tensor::zeros({out_, in_}));
    in_chopper_ = compound::add_counter(ctx, "in_chopper", in_);
    out_chopper_ = compound::add_counter(ctx, "out_chopper", out_);
    m_ = s.add(ctx.prefix + "auto_scale_m", Tensor::zeros({2}));  // m_x, m_d
    count_lr_ = s.add(ctx.prefix + "count_lr", Tensor::zeros({1}));
    transfer_counter_ = compound::add_counter(ctx, "transfer_counter");
  }

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override {
    m_batch_ = n;
    TransferTileDevice::update(x, d, n, lr, w, seed);
  }

 protected:
  std::int64_t transfer_every(std::size_t k, std::int64_t m_batch) const override {
    if (k == 0 && p_.transfer_every < 0.f)
      return std::max<std::int64_t>(
          1, std::int64_t(std::round(chopped_model_->num_states(0) / float(in_) * std::abs(p_.transfer_every))));
    return TransferTileDevice::transfer_every(k, m_batch);
  }

  void pulse_fast(const float* x, const float* d, std::int64_t rows, float sgd_lr, std::uint64_t seed) override {
    // The chopped copies of x and d (the signs carry the choppers).
    std::vector<float> xc(x, x + rows * in_), dc(d, d + rows * out_);
    const std::int64_t* in_chop = in_chopper_.data<std::int64_t>();
    const std::int64_t* out_chop = out_chopper_.data<std::int64_t>();
    for (std::int64_t m = 0; m < rows; ++m) {
      for (std::int64_t j = 0; j < in_; ++j)
        if (in_chop[j]) xc[std::size_t(m * in_ + j)] = -xc[std::size_t(m * in_ + j)];
      for (std::int64_t i = 0; i < out_; ++i)
        if (out_chop[i]) dc[std::size_t(m * out_ + i)] = -dc[std::size_t(m * out_ + i)];
    }
    float& count_lr = count_lr_.data<float>()[0];
    if (!(c_.auto_scale && p_.fast_lr > 0.f)) {
      count_lr = p_.fast_lr > 0.f ? p_.fast_lr : sgd_lr;
      subs_.device(0).update(xc.data(), dc.data(), rows, count_lr, subs_.weights(0), seed);
      return;
    }
    // Per sample: the running maxima move, and with them the pulse lr.
    float* m = m_.data<float>();
    const float g = chopped_model_->granularity(0);
    for (std::int64_t s = 0; s < rows; ++s) {
      float x_max = 0.f, d_max = 0.f;
      for (std::int64_t j = 0; j < in_; ++j) x_max = std::max(x_max, std::abs(x[s * in_ + j]));
      for (std::int64_t i = 0; i < out_; ++i) d_max = std::max(d_max, std::abs(d[s * out_ + i]));
      auto ema = [&](float& v, float value) {
        if (v <= 0.f) {
          v = value;
        } else if (value > 0.f) {
          const float tau = (1.f - c_.auto_momentum) / float(m_batch_);
          v = (1.f - tau) * v + tau * value;
        }
      };
      ema(m[0], x_max);
      ema(m[1], d_max);
      count_lr = p_.fast_lr * float(desired_bl_) * g;
      if (m[0] > 0.f && m[1] > 0.f) count_lr /= m[0] * m[1];
      subs_.device(0).update(xc.data() + s * in_, dc.data() + s * out_, 1, count_lr, subs_.weights(0), seed);
    }
  }

  void read_and_update(std::size_t to, std::size_t from, std::int64_t c, float lr, std::uint64_t seed) override {
    (void)to, (void)from;  // always A -> C
    if (lr == 0.f) return;
    const float g_from = chopped_model_->granularity(0), g_to = chopped_model_->granularity(1);
    float bg = c_.buffer_granularity > 0.f ? c_.buffer_granularity : 1.f;
    bg *= c_.auto_granularity > 0.f
              ? g_from * c_.auto_granularity / (float(in_) * std::abs(p_.transfer_every))
              : g_from;
    const float count_lr = count_lr_.data<float>()[0];
    const float lr_scale = c_.correct_gradient_magnitudes ? std::abs(lr) / count_lr / (bg * g_to / g_from)
                                                          : std::abs(lr) / bg;
    const float max_steps = float(p_.transfer_update.desired_bl);
    const float keep = 1.f - std::min(1.f, std::max(0.f, c_.momentum));
    std::vector<float> v(static_cast<std::size_t>(in_), 0.f), y(static_cast<std::size_t>(out_)), dvec(static_cast<std::size_t>(out_));
    v[std::size_t(c)] = 1.f;
    reader_.read(subs_.weights(0), v.data(), 1, y.data(), seed);
    std::int64_t* in_chop = in_chopper_.data<std::int64_t>();
    std::int64_t* out_chop = out_chopper_.data<std::int64_t>();
    float* h_buf = buffer_.data<float>();
    bool any = false;
    for (std::int64_t i = 0; i < out_; ++i) {
      float& h_stored = h_buf[i * in_ + c];
      float h = c_.no_buffer ? 0.f : h_stored;
      const float val = y[std::size_t(i)] * lr_scale;
      h += (in_chop[c] != out_chop[i]) ? -val : val;
      float n = 0.f;
      if (std::abs(h) >= 1.f) {
        n = std::max(-max_steps, std::min(max_steps, std::trunc(h)));
        h = c_.forget_buffer ? h * c_.momentum : h - keep * n;
        any = true;
      }
      h_stored = h;
      dvec[std::size_t(i)] = -n;
    }
    if (any) subs_.device(1).update(v.data(), dvec.data(), 1, c_.step * g_to, subs_.weights(1), seed);
    std::int64_t& counter = value(transfer_counter_);
    if (c_.in_chop_prob > 0.f) {
      if (c_.in_chop_random) {
        if (next_uniform(seed) < c_.in_chop_prob) in_chop[c] = !in_chop[c];
      } else {
        const std::int64_t period = std::max<std::int64_t>(std::int64_t(std::ceil(1.f / c_.in_chop_prob)), 2);
        if (counter % period + 1 == period) in_chop[c] = !in_chop[c];
      }
    }
    if (c == in_ - 1 && c_.out_chop_prob > 0.f)
      for (std::int64_t i = 0; i < out_; ++i)
        if (next_uniform(seed) < c_.out_chop_prob) out_chop[i] = !out_chop[i];
    if (c == in_ - 1) ++counter;
  }

  void reset_state() override {
    for (Tensor* t : {&buffer_, &m_, &count_lr_}) std::fill(t->data<float>(), t->data<float>() + t->numel(), 0.f);
    for (Tensor* t : {&in_chopper_, &out_chopper_, &transfer_counter_})
      std::fill(t->data<std::int64_t>(), t->data<std::int64_t>() + t->numel(), 0);
  }

 private:
  float next_uniform(std::uint64_t seed) {
    std::int64_t& k = value(choices_);
    return streams_.uniform(seed, std::uint64_t(k++));
  }

  const ChoppedParameter& c_;
  std::shared_ptr<const ChoppedModel> chopped_model_;
  int desired_bl_;
  std::int64_t m_batch_ = 1;
  Tensor buffer_, in_chopper_, out_chopper_, m_, count_lr_, transfer_counter_;
};

std::unique_ptr<TileDevice> ChoppedModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const ChoppedModel>(shared_from_this());
  return std::make_unique<ChoppedTileDevice>(self, ctx);
}

}  // namespace

std::shared_ptr<const DeviceModel> make_chopped_transfer_compound(const nlohmann::json& j, const std::string& where) {
  TransferParameter p;
  p.units_in_mbatch = false;
  p.transfer_update = single_pulse_update_parameters();
  ChoppedParameter ch;
  config::ObjectReader r(j, where);
  r.find("type");
  compound::Models devices = compound::read_devices(r, 2);
  p.read(r);
  r.read("in_chop_prob", ch.in_chop_prob);
  r.read("in_chop_random", ch.in_chop_random);
  r.read("out_chop_prob", ch.out_chop_prob);
  r.read("buffer_granularity", ch.buffer_granularity);
  r.read("auto_granularity", ch.auto_granularity);
  r.read("step", ch.step);
  r.read("momentum", ch.momentum);
  r.read("forget_buffer", ch.forget_buffer);
  r.read("no_buffer", ch.no_buffer);
  r.read("auto_scale", ch.auto_scale);
  r.read("auto_momentum", ch.auto_momentum);
  r.read("correct_gradient_magnitudes", ch.correct_gradient_magnitudes);
  r.finish();
  p.validate(where, devices.size(), true);
  const config::RangeCheck c(where);
  // aihwkit 1.1.0's checkSupported.
  if (devices.size() != 2)
    c.fail("unit_cell_devices", compound::devices_json(devices).dump(), "exactly two devices");
  if (p.gamma != 0.f || (!p.gamma_vec.empty() && p.gamma_vec[0] != 0.f))
    c.fail("gamma", config::format_number(p.gamma), "0 with gamma_vec empty or [0, g] (a fully hidden fast device)");
  if (p.n_reads_per_transfer != 1)
    c.fail("n_reads_per_transfer", std::to_string(p.n_reads_per_transfer), "1");
  if (p.random_selection) c.fail("random_selection", "true", "false");
  c.in_closed("in_chop_prob", ch.in_chop_prob, 0.0, 1.0);
  c.in_closed("out_chop_prob", ch.out_chop_prob, 0.0, 1.0);
  c.finite("buffer_granularity", ch.buffer_granularity);
  c.at_least("auto_granularity", ch.auto_granularity, 0.0);
  c.finite("auto_granularity", ch.auto_granularity);
  c.greater("step", ch.step, 0.0);
  c.finite("step", ch.step);
  c.finite("momentum", ch.momentum);
  c.in_half_open("auto_momentum", ch.auto_momentum, 0.0, 1.0);
  auto model = std::make_shared<ChoppedModel>(std::move(p), ch, std::move(devices));
  for (std::size_t k = 0; k < 2; ++k)
    if (!(model->granularity(k) > 0.f))
      c.fail("unit_cell_devices", model->to_json()["unit_cell_devices"].dump(), "pulsed devices");
  return model;
}

}  // namespace aimc
