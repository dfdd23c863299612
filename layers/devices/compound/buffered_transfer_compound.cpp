// BufferedTransferCompound (aihwkit 1.1.0's BufferedTransferResistiveDevice,
// "TTv2"): a TransferCompound whose transfer goes through a float buffer H_k
// per device except the last. A transfer reads column c of device k (+1
// scale, transfer_forward) and, with g the granularity of device k+1,
// thr = thres_scale·g and lr the transfer lr (times γ_k/γ_{k+1} when both > 0):
//     h = H[r, c] + |lr|·y_r,  n = clamp(trunc(h/thr), ±transfer_update.desired_bl)
//     H[r, c] = forget_buffer ? (n ≠ 0 ? momentum·h : h) : h − (1 − momentum)·n·thr
// and device k+1 is pulsed with lr step·g towards +n steps (one pulse per
// unit with the default transfer_update: desired_bl 1, no management).
#include <algorithm>
#include <cmath>

#include "layers/devices/compound/transfer_compound.h"

namespace aimc {
namespace {

using compound::value;

struct BufferedParameter {
  float thres_scale = 1.f;
  float step = 1.f;
  float momentum = 0.1f;
  bool forget_buffer = true;
};

class BufferedModel : public TransferCompoundModel {
 public:
  BufferedModel(TransferParameter p, BufferedParameter b, compound::Models devices)
      : TransferCompoundModel("BufferedTransferCompound", std::move(p), std::move(devices)), b_(b) {}
  const BufferedParameter& buffered() const { return b_; }
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 protected:
  void write_own(nlohmann::json& j) const override {
    j["thres_scale"] = config::float_to_json(b_.thres_scale);
    j["step"] = config::float_to_json(b_.step);
    j["momentum"] = config::float_to_json(b_.momentum);
    j["forget_buffer"] = b_.forget_buffer;
  }

 private:
  BufferedParameter b_;
};

class BufferedTileDevice : public TransferTileDevice {
 public:
  BufferedTileDevice(std::shared_ptr<const BufferedModel> model, const TileDeviceContext& ctx)
      : TransferTileDevice(model, ctx), b_(model->buffered()), buffered_model_(std::move(model)) {
    for (std::size_t k = 0; k + 1 < n_; ++k)
      buffers_.push_back(ctx.state->add(ctx.prefix + "transfer_buffer_" + std::to_string(k), Tensor::zeros({out_, in_})));
  }

 protected:
  void read_and_update(std::size_t to, std::size_t from, std::int64_t first, float lr, std::uint64_t seed) override {
    if (lr == 0.f || from + 1 >= n_) return;  // nothing from the last device
    if (gamma_[from] > 0.f && gamma_[to] > 0.f) lr *= gamma_[from] / gamma_[to];
    const float g = buffered_model_->granularity(to);
    const float thr = b_.thres_scale * g;
    const float max_steps = float(p_.transfer_update.desired_bl);
    const float keep = 1.f - std::min(1.f, std::max(0.f, b_.momentum));
    float* h_buf = buffers_[from].data<float>();
    std::vector<float> v(static_cast<std::size_t>(in_)), y(static_cast<std::size_t>(out_)), dvec(static_cast<std::size_t>(out_));
    for (std::int64_t r = 0; r < n_reads_; ++r) {
      const std::int64_t c = (first + r) % in_;
      std::fill(v.begin(), v.end(), 0.f);
      v[std::size_t(c)] = 1.f;
      reader_.read(subs_.weights(from), v.data(), 1, y.data(), seed);
      bool any = false;
      for (std::int64_t i = 0; i < out_; ++i) {
        float& h = h_buf[i * in_ + c];
        const float hv = h + y[std::size_t(i)] * std::abs(lr);
        const float n = std::max(-max_steps, std::min(max_steps, std::trunc(hv / thr)));
        h = n == 0.f ? hv : (b_.forget_buffer ? hv * b_.momentum : hv - keep * n * thr);
        dvec[std::size_t(i)] = -n;
        any = any || n != 0.f;
      }
      if (any) subs_.device(to).update(v.data(), dvec.data(), 1, b_.step * g, subs_.weights(to), seed);
    }
  }

  void reset_state() override {
    for (Tensor& b : buffers_) std::fill(b.data<float>(), b.data<float>() + b.numel(), 0.f);
  }

 private:
  const BufferedParameter& b_;
  std::shared_ptr<const BufferedModel> buffered_model_;
  std::vector<Tensor> buffers_;
};

std::unique_ptr<TileDevice> BufferedModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const BufferedModel>(shared_from_this());
  return std::make_unique<BufferedTileDevice>(self, ctx);
}

}  // namespace

std::shared_ptr<const DeviceModel> make_buffered_transfer_compound(const nlohmann::json& j, const std::string& where) {
  TransferParameter p;
  p.transfer_update = single_pulse_update_parameters();
  BufferedParameter b;
  config::ObjectReader r(j, where);
  r.find("type");
  compound::Models devices = compound::read_devices(r, 2);
  p.read(r);
  r.read("thres_scale", b.thres_scale);
  r.read("step", b.step);
  r.read("momentum", b.momentum);
  r.read("forget_buffer", b.forget_buffer);
  r.finish();
  p.validate(where, devices.size(), false);
  const config::RangeCheck c(where);
  c.greater("thres_scale", b.thres_scale, 0.0);
  c.finite("thres_scale", b.thres_scale);
  c.greater("step", b.step, 0.0);
  c.finite("step", b.step);
  c.finite("momentum", b.momentum);
  if (p.random_selection) c.fail("random_selection", "true", "false (aihwkit's buffered transfer reads in order)");
  auto model = std::make_shared<BufferedModel>(std::move(p), b, std::move(devices));
  for (std::size_t k = 0; k < 2; ++k)
    if (!(model->granularity(k) > 0.f))
      c.fail("unit_cell_devices", model->to_json()["unit_cell_devices"].dump(), "pulsed devices");
  return model;
}

}  // namespace aimc
