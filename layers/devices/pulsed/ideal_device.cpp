// IdealDevice (aihwkit's IdealResistiveDevice): no bounds and no pulses; the
// update is the exact float W ← W − lr·Σ_m d_mᵀ x_m (one GEMM). After each
// mini-batch: decay W ← (1 − 1/lifetime)·W when lifetime > 1, then diffusion
// W += diffusion·ξ (no clipping).
#include "engine/error.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/random_normal.h"
#include "layers/config/json_fields.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

struct IdealParameter {
  int construction_seed = 0;  // aihwkit's; accepted, unused
  float diffusion = 0.f;
  float lifetime = 0.f;
  float reset_std = 0.01f;  // aihwkit's reset spread (accepted; aimc has no reset yet)
};

class IdealTileDevice : public TileDevice {
 public:
  IdealTileDevice(const IdealParameter& p, const TileDeviceContext& ctx)
      : p_(p), out_(ctx.out_size), in_(ctx.in_size), stream_(analog::tile_stream(ctx.tile_id, analog::TileStream::PostUpdate) + ctx.stream_offset) {
    counter_ = ctx.state->add(ctx.prefix + "post_update_counter", Tensor::zeros({}, DType::Int64));
  }
  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t) override {
    if (n == 0 || lr == 0.f) return;
    // W[out, in] += (−lr)·dᵀ[out, n]·x[n, in]
    cpu::gemm(cpu::gemm_shape(true, false, out_, in_, n), -lr, d, x, 1.f, w);
  }
  void post_update(float* w, std::uint64_t seed) override {
    const bool decay = p_.lifetime > 1.f, diffuse = p_.diffusion > 0.f;
    if (!decay && !diffuse) return;
    const float scale = decay ? 1.f - 1.f / p_.lifetime : 1.f;
    const std::int64_t size = out_ * in_;
    std::int64_t& counter = *counter_.data<std::int64_t>();
    const std::uint64_t block = std::uint64_t(counter);
    cpu::parallel_for(0, size, cpu::grain_for(size, 4096), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t k = lo; k < hi; ++k) {
        float v = w[k] * scale;
        if (diffuse) v += p_.diffusion * rng::normal_at(seed, stream_, block, std::uint64_t(k));
        w[k] = v;
      }
    });
    if (diffuse) counter += (size + 3) / 4;
  }
  void weights_set(float*) override {}
  void reseed(std::uint64_t) override { *counter_.data<std::int64_t>() = 0; }

 private:
  IdealParameter p_;
  std::int64_t out_, in_;
  std::uint64_t stream_;
  Tensor counter_;
};

class IdealDevice : public DeviceModel {
 public:
  static constexpr const char* kType = "IdealDevice";
  explicit IdealDevice(const IdealParameter& p) : p_(p) {}
  std::string type() const override { return kType; }
  nlohmann::json to_json() const override {
    using config::float_to_json;
    return {{"type", kType},
            {"construction_seed", p_.construction_seed},
            {"diffusion", float_to_json(p_.diffusion)},
            {"lifetime", float_to_json(p_.lifetime)},
            {"reset_std", float_to_json(p_.reset_std)}};
  }
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override {
    return std::make_unique<IdealTileDevice>(p_, ctx);
  }

 private:
  IdealParameter p_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_ideal_device(const nlohmann::json& j, const std::string& where) {
  IdealParameter p;
  config::ObjectReader r(j, where);
  r.find("type");
  r.read("construction_seed", p.construction_seed);
  r.read("diffusion", p.diffusion);
  r.read("lifetime", p.lifetime);
  r.read("reset_std", p.reset_std);
  r.finish();
  const config::RangeCheck c(where);
  c.at_least("diffusion", p.diffusion, 0.0);
  c.at_least("lifetime", p.lifetime, 0.0);
  c.at_least("reset_std", p.reset_std, 0.0);
  return std::make_shared<IdealDevice>(p);
}

}  // namespace aimc
