// Pulsed devices: the shared fields, the device-to-device draws and the tile
// device that runs the pulsed update (see pulsed_device.h).
#include "layers/devices/pulsed/pulsed_device.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cuda/backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pulsed_update.h"
#include "kernels/random_normal.h"

namespace aimc {

void DriftParameter::read(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return;  // null: the defaults (no drift)
  config::ObjectReader r(j, where);
  r.read("nu", nu);
  r.read("nu_dtod", nu_dtod);
  r.read("nu_std", nu_std);
  r.read("wg_ratio", wg_ratio);
  r.read("g_offset", g_offset);
  r.read("w_offset", w_offset);
  r.read("nu_k", nu_k);
  r.read("log_g0", log_g0);
  r.read("t_0", t_0);
  r.read("reset_tol", reset_tol);
  r.read("w_noise_std", w_noise_std);
  r.finish();
}

nlohmann::json DriftParameter::to_json() const {
  using config::float_to_json;
  return {{"nu", float_to_json(nu)},           {"nu_dtod", float_to_json(nu_dtod)},
          {"nu_std", float_to_json(nu_std)},   {"wg_ratio", float_to_json(wg_ratio)},
          {"g_offset", float_to_json(g_offset)}, {"w_offset", float_to_json(w_offset)},
          {"nu_k", float_to_json(nu_k)},       {"log_g0", float_to_json(log_g0)},
          {"t_0", float_to_json(t_0)},         {"reset_tol", float_to_json(reset_tol)},
          {"w_noise_std", float_to_json(w_noise_std)}};
}

void DriftParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.at_least("nu", nu, 0.0);
  c.at_least("nu_dtod", nu_dtod, 0.0);
  c.at_least("nu_std", nu_std, 0.0);
  c.greater("wg_ratio", wg_ratio, 0.0);
  c.finite("g_offset", g_offset);
  c.finite("w_offset", w_offset);
  c.finite("nu_k", nu_k);
  c.finite("log_g0", log_g0);
  c.greater("t_0", t_0, 0.0);
  c.at_least("reset_tol", reset_tol, 0.0);
  c.at_least("w_noise_std", w_noise_std, 0.0);
}

void PulsedDeviceParameter::read(config::ObjectReader& r) {
  r.read("adjust_bounds_with_up_down", adjust_bounds_with_up_down);
  r.read("adjust_bounds_with_up_down_dev", adjust_bounds_with_up_down_dev);
  r.read("apply_write_noise_on_set", apply_write_noise_on_set);
  r.read("construction_seed", construction_seed);
  r.read("corrupt_devices_prob", corrupt_devices_prob);
  r.read("corrupt_devices_range", corrupt_devices_range);
  r.read("count_pulses", count_pulses);
  r.read("diffusion", diffusion);
  r.read("diffusion_dtod", diffusion_dtod);
  if (const nlohmann::json* v = r.find("drift")) drift.read(*v, r.path("drift"));
  r.read("dw_min", dw_min);
  r.read("dw_min_dtod", dw_min_dtod);
  r.read("dw_min_dtod_log_normal", dw_min_dtod_log_normal);
  r.read("dw_min_std", dw_min_std);
  r.read("enforce_consistency", enforce_consistency);
  r.read("lifetime", lifetime);
  r.read("lifetime_dtod", lifetime_dtod);
  r.read("perfect_bias", perfect_bias);
  r.read("reset", reset);
  r.read("reset_dtod", reset_dtod);
  r.read("reset_std", reset_std);
  r.read("up_down", up_down);
  r.read("up_down_dtod", up_down_dtod);
  r.read("w_max", w_max);
  r.read("w_max_dtod", w_max_dtod);
  r.read("w_min", w_min);
  r.read("w_min_dtod", w_min_dtod);
  r.read("write_noise_std", write_noise_std);
}

void PulsedDeviceParameter::write(nlohmann::json& j) const {
  using config::float_to_json;
  j["adjust_bounds_with_up_down"] = adjust_bounds_with_up_down;
  j["adjust_bounds_with_up_down_dev"] = float_to_json(adjust_bounds_with_up_down_dev);
  j["apply_write_noise_on_set"] = apply_write_noise_on_set;
  j["construction_seed"] = construction_seed;
  j["corrupt_devices_prob"] = float_to_json(corrupt_devices_prob);
  j["corrupt_devices_range"] = float_to_json(corrupt_devices_range);
  j["count_pulses"] = count_pulses;
  j["diffusion"] = float_to_json(diffusion);
  j["diffusion_dtod"] = float_to_json(diffusion_dtod);
  j["drift"] = drift.to_json();
  j["dw_min"] = float_to_json(dw_min);
  j["dw_min_dtod"] = float_to_json(dw_min_dtod);
  j["dw_min_dtod_log_normal"] = dw_min_dtod_log_normal;
  j["dw_min_std"] = float_to_json(dw_min_std);
  j["enforce_consistency"] = enforce_consistency;
  j["lifetime"] = float_to_json(lifetime);
  j["lifetime_dtod"] = float_to_json(lifetime_dtod);
  j["perfect_bias"] = perfect_bias;
  j["reset"] = float_to_json(reset);
  j["reset_dtod"] = float_to_json(reset_dtod);
  j["reset_std"] = float_to_json(reset_std);
  j["up_down"] = float_to_json(up_down);
  j["up_down_dtod"] = float_to_json(up_down_dtod);
  j["w_max"] = float_to_json(w_max);
  j["w_max_dtod"] = float_to_json(w_max_dtod);
  j["w_min"] = float_to_json(w_min);
  j["w_min_dtod"] = float_to_json(w_min_dtod);
  j["write_noise_std"] = float_to_json(write_noise_std);
}

void PulsedDeviceParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  for (const auto& [name, v] :
       {std::pair{"adjust_bounds_with_up_down_dev", adjust_bounds_with_up_down_dev},
        {"corrupt_devices_range", corrupt_devices_range}, {"diffusion_dtod", diffusion_dtod},
        {"dw_min_dtod", dw_min_dtod}, {"dw_min_std", dw_min_std}, {"lifetime_dtod", lifetime_dtod},
        {"reset_dtod", reset_dtod}, {"reset_std", reset_std}, {"up_down_dtod", up_down_dtod},
        {"w_max_dtod", w_max_dtod}, {"w_min_dtod", w_min_dtod}, {"diffusion", diffusion}, {"lifetime", lifetime}})
    c.at_least(name, v, 0.0);
  c.finite("reset", reset);
  c.finite("up_down", up_down);
  c.in_closed("corrupt_devices_prob", corrupt_devices_prob, 0.0, 1.0);
  c.greater("dw_min", dw_min, 0.0);
  c.finite("dw_min", dw_min);
  c.at_least("w_max", w_max, 0.0);
  c.finite("w_max", w_max);
  c.finite("w_min", w_min);
  if (w_min > 0.f) c.fail("w_min", config::format_number(w_min), "<= 0 ([w_min, w_max] must contain 0)");
  c.at_least("write_noise_std", write_noise_std, 0.0);
  if (count_pulses) c.fail("count_pulses", "true", "false (pulse counting is not implemented yet)");
  drift.validate(where + ".drift");
}

nlohmann::json PulsedDeviceModel::to_json() const {
  nlohmann::json j = own_json();
  common_.write(j);
  if (!preset_type_.empty()) j["type"] = preset_type_;
  return j;
}

std::string PulsedDeviceModel::type() const { return preset_type_.empty() ? base_type() : preset_type_; }

namespace {

using analog::TileStream;

// Names of the shared hidden parameters (aihwkit's).
constexpr const char* kMaxBound = "max_bound";
constexpr const char* kMinBound = "min_bound";
constexpr const char* kUp = "dwmin_up";
constexpr const char* kDown = "dwmin_down";
constexpr const char* kDecay = "decay_scales";
constexpr const char* kDiffusion = "diffusion_rates";
constexpr const char* kResetBias = "reset_bias";
constexpr const char* kPersistent = "persistent_weights";

// The DeviceValues stream: blocks 2k, 2k+1 for element k's shared values,
// the lifetime draws from 2^39, the law's own values from 2^40.
constexpr std::uint64_t kLifetimeOffset = 1ull << 39;
constexpr std::uint64_t kLawValuesOffset = 1ull << 40;
// The drift exponents' normals from 2^41.
constexpr std::uint64_t kDriftOffset = 1ull << 41;

class PulsedTileDevice : public TileDevice {
 public:
  PulsedTileDevice(std::shared_ptr<const PulsedDeviceModel> model, const TileDeviceContext& ctx)
      : model_(std::move(model)), out_(ctx.out_size), in_(ctx.in_size), tile_id_(ctx.tile_id), stream_offset_(ctx.stream_offset),
        pulse_stream_offset_(ctx.pulse_stream_offset.value_or(ctx.stream_offset)), update_params_(ctx.update) {
    const Shape shape{out_, in_};
    TileState& s = *ctx.state;
    auto add = [&](const std::string& name) { return s.add(ctx.prefix + name, Tensor::zeros(shape)); };
    max_bound_ = add(kMaxBound);
    min_bound_ = add(kMinBound);
    up_ = add(kUp);
    down_ = add(kDown);
    decay_ = add(kDecay);
    diffusion_ = add(kDiffusion);
    reset_bias_ = add(kResetBias);
    const auto names = model_->law_value_names();
    if (names.size() > 0) p0_ = add(names[0]);
    if (names.size() > 1) p1_ = add(names[1]);
    if (model_->common().write_noise_std > 0.f) persistent_ = add(kPersistent);
    if (model_->common().drift.nu > 0.f) {
      drift_nu_ = add("drift_nu");
      drift_w0_ = add("drift_w0");
      drift_start_ = add("drift_start");
      drift_previous_ = add("drift_previous");
      drift_time_ = s.add(ctx.prefix + "drift_time", Tensor::zeros({}, DType::Float64));
      drift_started_ = s.add(ctx.prefix + "drift_started", Tensor::zeros({}, DType::Int64));
    }
    pulse_counter_ = s.add(ctx.prefix + "pulse_counter", Tensor::zeros({}, DType::Int64));
    noise_counter_ = s.add(ctx.prefix + "noise_counter", Tensor::zeros({}, DType::Int64));
    post_counter_ = s.add(ctx.prefix + "post_update_counter", Tensor::zeros({}, DType::Int64));
    reseed(ctx.seed);
    from_persistent_ = false;  // a new device: the tile's weights are the true ones
  }

  void reseed(std::uint64_t seed) override {
    seed_ = seed;
    // The tile's weights hold last chip's write noise: the next weights_set
    // starts from the true (persistent) weights.
    from_persistent_ = persistent_.defined();
    for (Tensor* t : {&pulse_counter_, &noise_counter_, &post_counter_}) *t->data<std::int64_t>() = 0;
    if (drift_started_.defined()) *drift_started_.data<std::int64_t>() = 0;
    draw(seed);
  }

  // Write noise keeps host-side copies (before_, write_noise): host only.
  bool runs_on_gpu() const override { return !persistent_.defined(); }

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override {
    update_with(PulseOptions{}, x, d, n, lr, w, seed);
  }

  void update_with(const PulseOptions& options, const float* x, const float* d, std::int64_t n, float lr, float* w,
                   std::uint64_t seed) override {
    cpu::PulsedUpdateArgs a;
    a.x = x;
    a.d = d;
    a.n = n;
    a.out = out_;
    a.in = in_;
    a.lr = lr;
    a.dw_min = model_->granularity();
    a.update = options.update != nullptr ? *options.update : update_params_;
    a.directions = options.directions;
    a.law = model_->law();
    // With write noise the pulses move the true (persistent) weights.
    float* target = persistent_.defined() ? persistent_.data<float>() : w;
    if (persistent_.defined()) before_.assign(target, target + out_ * in_);
    a.w = target;
    a.max_bound = max_bound_.data<float>();
    a.min_bound = min_bound_.data<float>();
    a.up = up_.data<float>();
    a.down = down_.data<float>();
    a.p0 = p0_.defined() ? p0_.data<float>() : nullptr;
    a.p1 = p1_.defined() ? p1_.data<float>() : nullptr;
    a.seed = seed;
    a.pulse_stream = analog::tile_stream(tile_id_, TileStream::UpdatePulses) + pulse_stream_offset_;
    a.noise_stream = stream(TileStream::UpdateNoise);
    // The counters are read and written wherever the state is (a GPU too).
    const auto pulse_counter = read_state_scalar<std::int64_t>(pulse_counter_);
    const auto noise_counter = read_state_scalar<std::int64_t>(noise_counter_);
    a.pulse_block = std::uint64_t(pulse_counter);
    a.noise_block = std::uint64_t(noise_counter);
    if (on_gpu())
      cuda::backend().pulsed_update(a, nullptr);  // x, d, w and the hidden parameters are device pointers
    else
      cpu::pulsed_update(a);
    write_state_scalar(pulse_counter_, pulse_counter + std::int64_t(cpu::pulse_blocks(n, out_, in_)));
    write_state_scalar(noise_counter_, noise_counter + std::int64_t(cpu::noise_blocks(n, out_, in_)));
    if (persistent_.defined()) {
      // Only the elements the update moved are written again (aihwkit
      // redraws the write noise of every element a pulse touched).
      const std::vector<float>& old = before_;
      write_noise(w, seed, [&](std::int64_t k) { return target[k] != old[k]; });
    }
  }

  void post_update(float* w, std::uint64_t seed) override {
    const PulsedDeviceParameter& p = model_->common();
    cpu::PulsedPostUpdateArgs a;
    a.law.decay = p.lifetime > 0.f;
    a.law.diffuse = p.diffusion > 0.f;
    if (!a.law.decay && !a.law.diffuse) return;
    a.size = out_ * in_;
    a.w = persistent_.defined() ? persistent_.data<float>() : w;
    a.max_bound = max_bound_.data<float>();
    a.min_bound = min_bound_.data<float>();
    a.scale = decay_.data<float>();
    a.bias = reset_bias_.data<float>();
    a.rate = diffusion_.data<float>();
    const auto counter = read_state_scalar<std::int64_t>(post_counter_);
    a.seed = seed;
    a.stream = stream(TileStream::PostUpdate);
    a.block = std::uint64_t(counter);
    if (on_gpu())
      cuda::backend().pulsed_post_update(a);
    else
      cpu::pulsed_post_update(a);
    write_state_scalar(post_counter_, counter + std::int64_t(analog::post_update_blocks(a.law, a.size)));
    if (persistent_.defined()) write_noise(w, seed, [](std::int64_t) { return true; });
  }

  void drift_weights(float* w, float delta_t, std::uint64_t seed) override {
    if (!drift_nu_.defined()) return;
    const DriftParameter& dp = model_->common().drift;
    const std::int64_t size = out_ * in_;
    float* target = persistent_.defined() ? persistent_.data<float>() : w;
    float* w0 = drift_w0_.data<float>();
    float* start = drift_start_.data<float>();
    float* previous = drift_previous_.data<float>();
    const float* nu0 = drift_nu_.data<float>();
    const float* mx = max_bound_.data<float>();
    const float* mn = min_bound_.data<float>();
    double& time = *drift_time_.data<double>();
    std::int64_t& started = *drift_started_.data<std::int64_t>();
    if (started == 0) {
      // The first call: every element starts drifting now, from where it is.
      std::copy(target, target + size, w0);
      std::copy(target, target + size, previous);
      std::fill(start, start + size, 0.f);
      time = 0.0;
      started = 1;
    }
    time += double(delta_t) / double(dp.t_0);
    const float now = float(time);
    float a = dp.g_offset * dp.wg_ratio + dp.w_offset;
    if (std::abs(a) < dp.reset_tol) a = 0.f;
    std::int64_t& counter = *post_counter_.data<std::int64_t>();
    const std::uint64_t stream_id = stream(TileStream::PostUpdate), block = std::uint64_t(counter);
    // Normals 2k (ν spread) and 2k + 1 (read noise) of this call.
    cpu::parallel_for(0, size, cpu::grain_for(size, 4096), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t k = lo; k < hi; ++k) {
        float v = target[k];
        if (std::abs(previous[k] - v) > dp.reset_tol) {
          start[k] = now;  // changed since the last call: drift restarts here
          w0[k] = v;
        } else {
          float nu = nu0[k];
          if (dp.nu_std > 0.f) nu += dp.nu_std * nu * rng::normal_at(seed, stream_id, block, 2 * std::uint64_t(k));
          if (dp.nu_k != 0.f) nu += dp.nu_k * (dp.log_g0 - std::log((v - dp.w_offset) / dp.wg_ratio + dp.g_offset));
          const float f = std::pow(std::max(now - start[k], 1.f), -nu);
          v = w0[k] * f;
          if (a != 0.f) v += a * (f - 1.f);
        }
        if (dp.w_noise_std > 0.f) v += dp.w_noise_std * rng::normal_at(seed, stream_id, block, 2 * std::uint64_t(k) + 1);
        v = std::min(mx[k], std::max(mn[k], v));
        previous[k] = v;
        target[k] = v;
      }
    });
    counter += (2 * size + 3) / 4;
    if (persistent_.defined()) write_noise(w, seed, [](std::int64_t) { return true; });
  }

  void reset_columns(float* w, std::int64_t start, std::int64_t n, float reset_prob, std::uint64_t seed) override {
    const PulsedDeviceParameter& p = model_->common();
    const std::int64_t size = out_ * in_;
    float* target = persistent_.defined() ? persistent_.data<float>() : w;
    const float* bias = reset_bias_.data<float>();
    const float* mx = max_bound_.data<float>();
    const float* mn = min_bound_.data<float>();
    if (n < 0 || n > in_) n = in_;
    start = ((start % in_) + in_) % in_;
    std::vector<char> column(std::size_t(in_), 0);
    for (std::int64_t c = 0; c < n; ++c) column[std::size_t((start + c) % in_)] = 1;
    std::int64_t& counter = *post_counter_.data<std::int64_t>();
    const std::uint64_t stream_id = stream(TileStream::PostUpdate), block = std::uint64_t(counter);
    // Element k reads block + k: a uniform (reset or not) and a normal (the value).
    cpu::parallel_for(0, size, cpu::grain_for(size, 4096), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t k = lo; k < hi; ++k) {
        if (!column[std::size_t(k % in_)]) continue;
        const rng::Block b = rng::philox(seed, stream_id, block + std::uint64_t(k));
        if (reset_prob < 1.f && !(rng::uniform_open(b.v[0]) < reset_prob)) continue;
        float z0, z1;
        rng::box_muller_fast(b.v[2], b.v[3], z0, z1);
        const float v = bias[k] + (p.reset_std > 0.f ? p.reset_std * z0 : 0.f);
        target[k] = std::min(mx[k], std::max(mn[k], v));
      }
    });
    counter += size;
    if (persistent_.defined()) write_noise(w, seed, [](std::int64_t) { return true; });
  }

  // aihwkit's resetAtIndices: w = reset_bias + reset_std·ξ, clipped; normal
  // k of the PostUpdate stream at its counter for element k.
  void reset_elements(float* w, const std::vector<std::int64_t>& elements, std::uint64_t seed) override {
    if (persistent_.defined()) throw ValueError("reset of single elements is not supported with write noise (as aihwkit)");
    const PulsedDeviceParameter& p = model_->common();
    const std::int64_t size = out_ * in_;
    const float* mx = max_bound_.data<float>();
    const float* mn = min_bound_.data<float>();
    const float* bias = reset_bias_.data<float>();
    std::int64_t& counter = *post_counter_.data<std::int64_t>();
    const std::uint64_t stream_id = stream(TileStream::PostUpdate);
    for (const std::int64_t k : elements) {
      float v = bias[k];
      if (p.reset_std > 0.f) v += p.reset_std * rng::normal_at(seed, stream_id, std::uint64_t(counter), std::uint64_t(k));
      w[k] = std::min(mx[k], std::max(mn[k], v));
    }
    if (p.reset_std > 0.f) counter += (size + 3) / 4;
  }

  void weights_set(float* w) override {
    const std::int64_t size = out_ * in_;
    if (from_persistent_) std::copy(persistent_.data<float>(), persistent_.data<float>() + size, w);
    from_persistent_ = false;
    const float* mx = max_bound_.data<float>();
    const float* mn = min_bound_.data<float>();
    for (std::int64_t k = 0; k < size; ++k) w[k] = std::min(mx[k], std::max(mn[k], w[k]));
    if (persistent_.defined()) {
      std::copy(w, w + size, persistent_.data<float>());
      if (model_->common().apply_write_noise_on_set) write_noise(w, seed_, [](std::int64_t) { return true; });
    }
  }

 private:
  bool on_gpu() const { return max_bound_.device().is_cuda(); }
  std::uint64_t stream(TileStream purpose) const { return analog::tile_stream(tile_id_, purpose) + stream_offset_; }

  // The apparent weights w = persistent + write_noise_std·dw_min·ξ for the
  // elements k with redraw(k); normal k from the PostUpdate stream at the
  // post-update counter, which then advances past all out·in of them.
  template <class Redraw>
  void write_noise(float* w, std::uint64_t seed, Redraw redraw) {
    const PulsedDeviceParameter& p = model_->common();
    const std::int64_t size = out_ * in_;
    const float s = p.write_noise_std * p.dw_min;
    const float* pw = persistent_.data<float>();
    std::int64_t& counter = *post_counter_.data<std::int64_t>();
    const std::uint64_t stream_id = stream(TileStream::PostUpdate), block = std::uint64_t(counter);
    // Normal k is normal k % 4 of block + k / 4 (rng::normal_at's layout): one
    // Philox block serves four neighbours, drawn only when one of them is redrawn.
    cpu::parallel_for(0, (size + 3) / 4, cpu::grain_for((size + 3) / 4, 1024), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t q = lo; q < hi; ++q) {
        const std::int64_t k0 = 4 * q, k1 = std::min(size, k0 + 4);
        bool any = false;
        for (std::int64_t k = k0; k < k1; ++k) any = any || redraw(k);
        if (!any) continue;
        const rng::Block b = rng::philox(seed, stream_id, block + std::uint64_t(q));
        float z[4];
        rng::box_muller_fast(b.v[0], b.v[1], z[0], z[1]);
        rng::box_muller_fast(b.v[2], b.v[3], z[2], z[3]);
        for (std::int64_t k = k0; k < k1; ++k)
          if (redraw(k)) w[k] = pw[k] + s * z[k - k0];
      }
    });
    counter += (size + 3) / 4;
  }

  // The device-to-device values of a chip (see pulsed_device.h). Element k
  // reads blocks 2k, 2k+1 of the DeviceValues stream (six normals, two
  // uniforms), its lifetime normal k from 2^39 and its law's two normals
  // from block 2^40 + k.
  void draw(std::uint64_t seed) {
    const PulsedDeviceParameter& p = model_->common();
    const std::int64_t size = out_ * in_;
    const std::uint64_t stream_id = stream(TileStream::DeviceValues);
    float* mx = max_bound_.data<float>();
    float* mn = min_bound_.data<float>();
    float* up = up_.data<float>();
    float* down = down_.data<float>();
    float* decay = decay_.data<float>();
    float* diffusion = diffusion_.data<float>();
    float* reset_bias = reset_bias_.data<float>();
    const float up_bias = p.up_down > 0.f ? 0.f : p.up_down;
    const float down_bias = p.up_down > 0.f ? -p.up_down : 0.f;
    cpu::parallel_for(0, size, cpu::grain_for(size, 1024), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t k = lo; k < hi; ++k) {
        const rng::Block b0 = rng::philox(seed, stream_id, 2 * std::uint64_t(k));
        const rng::Block b1 = rng::philox(seed, stream_id, 2 * std::uint64_t(k) + 1);
        float z[6];
        rng::box_muller_fast(b0.v[0], b0.v[1], z[0], z[1]);
        rng::box_muller_fast(b0.v[2], b0.v[3], z[2], z[3]);
        rng::box_muller_fast(b1.v[0], b1.v[1], z[4], z[5]);
        const float u0 = rng::uniform_open(b1.v[2]), u1 = rng::uniform_open(b1.v[3]);
        float bmax = p.w_max * (1.f + p.w_max_dtod * z[0]);
        float bmin = p.w_min * (1.f + p.w_min_dtod * z[1]);
        const float gain = p.dw_min_dtod_log_normal ? std::exp(p.dw_min_dtod * z[2]) : 1.f + p.dw_min_dtod * z[2];
        const float r = p.up_down_dtod * z[3];
        float su = (up_bias + gain + r) * p.dw_min;
        float sd = (down_bias + gain - r) * p.dw_min;
        if (p.enforce_consistency) {
          su = std::abs(su);
          sd = std::abs(sd);
          if (bmin > bmax) std::swap(bmin, bmax);
          bmax = std::abs(bmax);
          bmin = -std::abs(bmin);
        } else if (bmin > bmax) {
          bmax = bmin = bmax + (bmin - bmax) / 2.f;  // a dead device
        }
        if (p.adjust_bounds_with_up_down) {
          if (bmin > bmax) std::swap(bmin, bmax);
          const float alpha = su / (su + sd), range = bmax - bmin;
          float lower;
          if (p.adjust_bounds_with_up_down_dev > 0.f)
            lower = -((std::tanh((alpha - 0.5f) / p.adjust_bounds_with_up_down_dev) + 1.f) / 2.f) * range;
          else
            lower = alpha < 0.5f ? 0.f : alpha == 0.5f ? -range / 2.f : -range;
          bmin = lower;
          bmax = lower + range;
        }
        if (p.corrupt_devices_prob > u0) {
          const float lo_v = std::max(std::min(bmax, bmin), -std::abs(p.corrupt_devices_range));
          const float hi_v = std::min(std::max(bmax, bmin), std::abs(p.corrupt_devices_range));
          bmax = bmin = lo_v + (hi_v - lo_v) * u1;
          su = sd = 0.f;
        }
        if (p.perfect_bias && k % in_ == in_ - 1) {
          su = sd = p.dw_min;
          bmin = 100.f * p.w_min;
          bmax = 100.f * p.w_max;
        }
        mx[k] = bmax;
        mn[k] = bmin;
        up[k] = su;
        down[k] = sd;
        diffusion[k] = std::abs(p.diffusion * (1.f + p.diffusion_dtod * z[4]));
        reset_bias[k] = p.reset + p.reset_dtod * z[5];
        if (p.lifetime > 0.f) {
          // A third block only when there is decay (keeps the common case at two).
          const float t = p.lifetime * (1.f + p.lifetime_dtod * rng::normal_at(seed, stream_id, kLifetimeOffset, std::uint64_t(k)));
          decay[k] = t > 1.f ? 1.f - 1.f / t : 0.f;
        } else {
          decay[k] = 1.f;
        }
      }
    });
    if (drift_nu_.defined()) {
      float* nu = drift_nu_.data<float>();
      const DriftParameter& dp = p.drift;
      for (std::int64_t k = 0; k < size; ++k)
        nu[k] = dp.nu * (1.f + dp.nu_dtod * rng::normal_at(seed, stream_id, kDriftOffset, std::uint64_t(k)));
    }
    if (p0_.defined()) {
      std::vector<float> xi[4];
      for (auto& v : xi) v.resize(size);
      for (std::int64_t k = 0; k < size; ++k) {
        const rng::Block b = rng::philox(seed, stream_id, kLawValuesOffset + std::uint64_t(k));
        rng::box_muller_fast(b.v[0], b.v[1], xi[0][k], xi[1][k]);
        rng::box_muller_fast(b.v[2], b.v[3], xi[2][k], xi[3][k]);
      }
      PulsedDeviceModel::ChipValues v;
      v.size = size;
      for (int q = 0; q < 4; ++q) v.xi[q] = xi[q].data();
      v.max_bound = mx;
      v.min_bound = mn;
      v.up = up;
      v.down = down;
      v.reset_bias = reset_bias;
      v.p0 = p0_.data<float>();
      v.p1 = p1_.defined() ? p1_.data<float>() : nullptr;
      model_->draw_law_values(v);
    }
  }

  std::shared_ptr<const PulsedDeviceModel> model_;
  std::int64_t out_, in_;
  std::uint64_t tile_id_;
  std::uint64_t stream_offset_;  // a compound's sub-device: k << kSubDeviceStreamShift
  std::uint64_t pulse_stream_offset_;  // of the pulse trains (TileDeviceContext::pulse_stream_offset)
  analog::UpdatePulseParams update_params_;
  Tensor max_bound_, min_bound_, up_, down_, decay_, diffusion_, reset_bias_, p0_, p1_;
  Tensor persistent_;          // write noise only: the true weights
  Tensor drift_nu_, drift_w0_, drift_start_, drift_previous_, drift_time_, drift_started_;  // drift only
  std::vector<float> before_;  // write noise: the persistent weights before an update
  std::uint64_t seed_ = 0;     // the chip seed of the last draw (weights_set has none)
  bool from_persistent_ = false;  // reseeded: weights_set starts from the persistent weights
  Tensor pulse_counter_, noise_counter_, post_counter_;
};

}  // namespace

std::unique_ptr<TileDevice> PulsedDeviceModel::make(const TileDeviceContext& ctx) const {
  auto self = std::static_pointer_cast<const PulsedDeviceModel>(shared_from_this());
  return std::make_unique<PulsedTileDevice>(self, ctx);
}

}  // namespace aimc
