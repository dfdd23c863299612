// Compound devices: the parts every unit cell shares (see compound_device.h).
#include "layers/devices/compound/compound_device.h"

#include "engine/error.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/random.h"

namespace aimc::compound {

Models read_devices(config::ObjectReader& r, std::size_t min_count) {
  const nlohmann::json* v = r.find("unit_cell_devices");
  const std::string where = r.path("unit_cell_devices");
  if (v == nullptr || !v->is_array() || v->size() < min_count)
    throw ConfigError(where + " = " + (v == nullptr ? std::string("missing") : v->dump()) +
                      " is invalid: allowed an array of at least " + std::to_string(min_count) +
                      " device objects {\"type\": ...}");
  Models models;
  for (std::size_t k = 0; k < v->size(); ++k)
    models.push_back(make_device_model((*v)[k], where + "[" + std::to_string(k) + "]"));
  return models;
}

nlohmann::json devices_json(const Models& models) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& m : models) a.push_back(m->to_json());
  return a;
}

SubDevices::SubDevices(const TileDeviceContext& ctx, const Models& models,
                       const std::vector<analog::UpdatePulseParams>& updates, bool shared_pulses)
    : out_(ctx.out_size), in_(ctx.in_size) {
  for (std::size_t k = 0; k < models.size(); ++k) {
    TileDeviceContext sub = ctx;
    sub.prefix = ctx.prefix + std::to_string(k) + "_";
    sub.stream_offset = ctx.stream_offset + (std::uint64_t(k) << kSubDeviceStreamShift);
    sub.pulse_stream_offset =
        shared_pulses ? ctx.pulse_stream_offset.value_or(ctx.stream_offset) : sub.stream_offset;
    sub.update = updates[k];
    weights_.push_back(ctx.state->add(sub.prefix + "weights", Tensor::zeros({out_, in_})));
    devices_.push_back(models[k]->make(sub));
  }
}

void SubDevices::reduce(const std::vector<float>& gamma, float* w) {
  const std::int64_t size = numel();
  for (std::int64_t i = 0; i < size; ++i) w[i] = 0.f;
  for (std::size_t k = 0; k < size_t(gamma.size()); ++k) {
    if (gamma[k] == 0.f) continue;
    const float* wk = weights(k);
    for (std::int64_t i = 0; i < size; ++i) w[i] += gamma[k] * wk[i];
  }
}

void SubDevices::post_update(std::uint64_t seed) {
  for (std::size_t k = 0; k < size(); ++k) devices_[k]->post_update(weights(k), seed);
}

void SubDevices::reseed(std::uint64_t seed) {
  for (auto& d : devices_) d->reseed(seed);
}

std::vector<float> read_float_list(config::ObjectReader& r, const char* key, std::vector<float> fallback) {
  const nlohmann::json* v = r.find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array()) throw ConfigError(r.path(key) + " = " + v->dump() + " is invalid: allowed an array of numbers");
  std::vector<float> out;
  for (const auto& e : *v) {
    if (!e.is_number()) throw ConfigError(r.path(key) + " = " + v->dump() + " is invalid: allowed an array of numbers");
    out.push_back(e.get<float>());
  }
  return out;
}

nlohmann::json float_list_json(const std::vector<float>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (float f : v) a.push_back(config::float_to_json(f));
  return a;
}

Tensor add_counter(const TileDeviceContext& ctx, const std::string& name, std::int64_t size) {
  return ctx.state->add(ctx.prefix + name, size == 0 ? Tensor::zeros({}, DType::Int64)
                                                     : Tensor::zeros({size}, DType::Int64));
}

float Streams::uniform(std::uint64_t seed, std::uint64_t k) const {
  const rng::Block b = rng::philox(seed, stream(analog::TileStream::CompoundChoice), k / 4);
  return rng::uniform_open(b.v[k % 4]);
}

// Blocks of the TransferRead stream where the read's per-line values are drawn.
constexpr std::uint64_t kReadLinesOffset = 1ull << 40;

AnalogReader::AnalogReader(const TileDeviceContext& ctx, const IOParameters& io)
    : io_(io), streams_(ctx), out_(ctx.out_size), in_(ctx.in_size) {
  counter_ = add_counter(ctx, "read_counter");
  nm_running_ = ctx.state->add(ctx.prefix + "read_nm_running", Tensor::full({1}, -1.f));
  draw_lines(ctx.seed);
}

void AnalogReader::read(const float* w, const float* v, std::int64_t n, float* y, std::uint64_t seed) {
  if (seed != lines_seed_) draw_lines(seed);
  cpu::AnalogLineValues lines;
  lines.out_nonlinearity = nonlinearity_.data();
  lines.out_noise = noise_.data();
  lines.v_offset = v_offset_.data();
  lines.slope_gain = slope_gain_;
  std::int64_t& counter = value(counter_);
  const cpu::AnalogRandom random{seed, streams_.stream(analog::TileStream::TransferRead), std::uint64_t(counter)};
  const auto stats = cpu::analog_mvm_forward(io_, w, out_, in_, v, n, y, lines, random, nm_running_.data<float>());
  counter += std::int64_t(stats.blocks);
}

void AnalogReader::reseed(std::uint64_t seed) {
  value(counter_) = 0;
  nm_running_.data<float>()[0] = -1.f;
  draw_lines(seed);
}

void AnalogReader::draw_lines(std::uint64_t seed) {
  nonlinearity_.assign(std::size_t(out_), 0.f);
  noise_.assign(std::size_t(out_), 0.f);
  v_offset_.assign(std::size_t(out_), 0.f);
  const cpu::AnalogRandom random{seed, streams_.stream(analog::TileStream::TransferRead), kReadLinesOffset};
  cpu::draw_analog_line_values(io_, out_, random, nonlinearity_.data(), noise_.data(), v_offset_.data());
  slope_gain_ = cpu::analog_slope_gain(io_, nonlinearity_.data(), out_);
  lines_seed_ = seed;
}

}  // namespace aimc::compound
