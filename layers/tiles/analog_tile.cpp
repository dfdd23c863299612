// AnalogTile (see analog_tile.h).
#include "layers/tiles/analog_tile.h"

#include <bit>
#include <cmath>
#include <string>
#include <unordered_set>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/analog/drift_compensation_law.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cuda/backend.h"
#include "kernels/cpu/analog_mvm.h"
#include "layers/devices/tile_device.h"

namespace aimc {
namespace {
using analog::TileStream;
// The passes, which index the tile's per-pass state handles.
constexpr int kForwardPass = 0, kBackwardPass = 1;

Tensor int64_scalar() { return Tensor::zeros({}, DType::Int64); }

const float* data_or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
float* data_or_null(std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }
}  // namespace

// Per-line values are only needed when a spread is configured; the lines of
// a pass come from `offset` of the line stream, its read-asymmetry factors
// (POS_NEG modes only: no effect otherwise) from `asym_offset`.
void AnalogTile::draw_lines(const IOParameters& io, std::int64_t lines, std::uint64_t seed, std::uint64_t stream,
                            std::uint64_t offset, std::uint64_t asym_offset, PassLines& out) const {
  out = PassLines{};
  const bool need_nl = io.out_nonlinearity != 0 && io.out_nonlinearity_std > 0;
  const bool need_noise = io.out_noise != 0 && io.out_noise_std > 0;
  const bool need_offset = io.v_offset_std > 0;
  if (need_nl || need_noise || need_offset) {
    out.nonlinearity.assign(need_nl ? lines : 0, 0.f);
    out.noise.assign(need_noise ? lines : 0, 0.f);
    out.v_offset.assign(need_offset ? lines : 0, 0.f);
    cpu::draw_analog_line_values(io, lines, {seed, stream, offset}, data_or_null(out.nonlinearity),
                                 data_or_null(out.noise), data_or_null(out.v_offset));
  }
  out.slope_gain = cpu::analog_slope_gain(io, data_or_null(std::as_const(out.nonlinearity)), lines);
  if (io.w_read_asymmetry_dtod > 0 && io.mv_type != AnalogMVType::OnePass) {
    out.w_asymmetry.assign(static_cast<std::size_t>(out_size_ * in_size_), 0.f);
    cpu::draw_weight_read_asymmetry(io, out_size_ * in_size_, {seed, stream, asym_offset}, out.w_asymmetry.data());
  }
}

namespace {
template <class T>
T read_scalar(const Tensor& t) {
  return read_state_scalar<T>(t);
}
template <class T>
void write_scalar(Tensor& t, T v) {
  write_state_scalar<T>(t, v);
}
}  // namespace

cpu::AnalogLineValues AnalogTile::line_values(const PassLines& lines) {
  cpu::AnalogLineValues v;
  v.out_nonlinearity = data_or_null(lines.nonlinearity);
  v.out_noise = data_or_null(lines.noise);
  v.v_offset = data_or_null(lines.v_offset);
  v.w_asymmetry = data_or_null(lines.w_asymmetry);
  v.slope_gain = lines.slope_gain;
  return v;
}

AnalogTile::AnalogTile(std::int64_t out_size, std::int64_t in_size, const IOParameters& forward_io,
                       const IOParameters& backward_io, std::uint64_t seed, std::uint64_t tile_id)
    : out_size_(out_size),
      in_size_(in_size),
      forward_io_(forward_io),
      backward_io_(backward_io),
      lines_seed_(0),
      tile_id_(tile_id),
      weight_(Tensor::zeros({out_size, in_size})) {
  counter_[kForwardPass] = state_.add("forward_counter", int64_scalar());
  counter_[kBackwardPass] = state_.add("backward_counter", int64_scalar());
  nm_running_[kForwardPass] = state_.add("forward_nm_running", Tensor::zeros({}));
  nm_running_[kBackwardPass] = state_.add("backward_nm_running", Tensor::zeros({}));
  seed_ = state_.add("seed", int64_scalar());
  if (out_size < 1 || in_size < 1)
    throw ShapeError("an analog tile needs at least one row and column, got [" + std::to_string(out_size) + ", " +
                     std::to_string(in_size) + "]");
  weight_.set_requires_grad(true);
  reseed(seed);
}

AnalogTile::~AnalogTile() = default;

void AnalogTile::set_device(const DeviceModel& model, const analog::UpdatePulseParams& update) {
  if (device_) throw ValueError("AnalogTile::set_device: the tile has a device already");
  TileDeviceContext ctx;
  ctx.out_size = out_size_;
  ctx.in_size = in_size_;
  ctx.seed = seed();
  ctx.tile_id = tile_id_;
  ctx.state = &state_;
  ctx.update = update;
  first_hidden_ = state_.entries().size();
  device_ = model.make(ctx);
  weight_.set_requires_grad(true);  // keeps the tile in the graph; its gradient stays undefined
  weights_set();
}

std::vector<std::pair<std::string, Tensor>> AnalogTile::hidden_parameters() const {
  if (!device_) return {};
  const auto& e = state_.entries();
  return {e.begin() + static_cast<std::ptrdiff_t>(first_hidden_), e.end()};
}

void AnalogTile::set_hidden_parameter(const std::string& name, const Tensor& value) {
  std::string known;
  for (const auto& [n, t] : hidden_parameters()) {
    if (n != name) {
      known += (known.empty() ? "" : ", ") + n;
      continue;
    }
    if (value.shape() != t.shape())
      throw ShapeError("AnalogTile::set_hidden_parameter('" + name + "'): got " + shape_str(value.shape()) +
                       ", expected " + shape_str(t.shape()));
    const Tensor v = value.to(DType::Float64).contiguous();
    const double* p = v.data<double>();
    for (std::int64_t k = 0; k < v.numel(); ++k)
      if (!std::isfinite(p[k]))
        throw ValueError("AnalogTile::set_hidden_parameter('" + name + "'): non-finite value at index " +
                         std::to_string(k));
    Tensor target = t;  // shares the entry's storage
    NoGradGuard no_grad;
    target.copy_(value);
    return;
  }
  throw ValueError("AnalogTile::set_hidden_parameter: no hidden parameter '" + name + "'" +
                   (known.empty() ? std::string(" (the tile has no pulsed device)") : "; known: " + known));
}

void AnalogTile::record_update(Tensor x, Tensor d) {
  if (!device_) throw ValueError("AnalogTile::record_update: the tile has no pulsed device");
  if (x.dim() != 2 || d.dim() != 2 || x.size(0) != d.size(0) || x.size(1) != in_size_ || d.size(1) != out_size_)
    throw ShapeError("AnalogTile::record_update: x " + shape_str(x.shape()) + " and d " + shape_str(d.shape()) +
                     " do not fit a [" + std::to_string(out_size_) + ", " + std::to_string(in_size_) + "] tile");
  check_dtype(x, DType::Float32, "AnalogTile::record_update (x)");
  check_dtype(d, DType::Float32, "AnalogTile::record_update (d)");
  x = x.contiguous();
  d = d.contiguous();
  // A non-finite value would make the pulse schedule undefined (BL from NaN).
  for (const Tensor* t : {&x, &d}) {
    const Tensor host = t->to(Device::cpu());  // a GPU (x, d) is checked on a host copy
    const float* v = host.data<float>();
    const std::int64_t size = t->numel();
    // Non-finite floats have every exponent bit set: one vectorised pass, the index only on failure.
    std::uint32_t bad = 0u;  // an integer, not a bool: the loop vectorises
    for (std::int64_t k = 0; k < size; ++k)
      bad |= std::uint32_t((std::bit_cast<std::uint32_t>(v[k]) & 0x7f800000u) == 0x7f800000u);
    if (bad == 0u) continue;
    std::int64_t k = 0;
    while (std::isfinite(v[k])) ++k;
    throw ValueError(std::string("AnalogTile::record_update: ") + (t == &x ? "the input x" : "the error d") +
                     " holds a non-finite value (" + std::to_string(v[k]) + ") at index " + std::to_string(k) +
                     "; a pulsed update needs finite x and d");
  }
  pending_.emplace_back(std::move(x), std::move(d));
}

void AnalogTile::apply_updates(float lr) {
  if (!device_ || pending_.empty()) return;
  if (on_gpu() && !device_->runs_on_gpu()) return on_host([&] { apply_updates(lr); });
  reset_programming();
  float* w = weight_.data<float>();
  const Device where = weight_.device();
  const std::uint64_t s = seed();
  for (const auto& [x, d] : pending_) {
    // The recorded (x, d) on the tile's device (copies only when they differ).
    const Tensor xt = x.to(where), dt = d.to(where);
    device_->update(xt.data<float>(), dt.data<float>(), x.size(0), lr, w, s);
  }
  pending_.clear();
  device_->post_update(w, s);
}

void AnalogTile::drift_device_weights(float delta_t) {
  if (!device_) return;
  if (on_gpu()) return on_host([&] { drift_device_weights(delta_t); });
  reset_programming();
  device_->drift_weights(weight_.data<float>(), delta_t, seed());
}

void AnalogTile::reset_columns(std::int64_t start, std::int64_t n, float reset_prob) {
  if (!device_) return;
  if (on_gpu()) return on_host([&] { reset_columns(start, n, reset_prob); });
  reset_programming();
  device_->reset_columns(weight_.data<float>(), start, n, reset_prob, seed());
}

void AnalogTile::weights_set() {
  if (!device_) return;
  if (on_gpu()) return on_host([&] { weights_set(); });
  device_->weights_set(weight_.data<float>());
}

void AnalogTile::reseed(std::uint64_t seed) {
  if (on_gpu()) return on_host([&] { reseed(seed); });
  set_counters(0, 0);
  for (Tensor& nm : nm_running_) *nm.data<float>() = -1.f;
  *seed_.data<std::int64_t>() = static_cast<std::int64_t>(seed);  // the same 64 bits
  lines_seed_ = ~seed;  // force the draw
  refresh_lines();
  if (programming_) programming_->restart();
  pending_.clear();
  if (device_) {
    device_->reseed(seed);
    weights_set();
  }
}

std::vector<Tensor> AnalogTile::own_tensors() const {
  std::vector<Tensor> out{weight_};
  for (const auto& [name, t] : state_.entries()) out.push_back(t);
  if (programming_)
    for (const auto& [name, t] : programming_->buffers()) out.push_back(t);
  return out;
}

// The tensors move in place (Storage::move_to), so every handle to them (the
// layer's buffers, the device's hidden parameters, an optimizer's) follows;
// each storage moves once. Back on `where` whether or not the step threw.
template <class Step>
void AnalogTile::on_host(Step&& step) {
  const Device where = weight_.device();
  auto move_all = [this](Device to) {
    std::unordered_set<const Storage*> moved;
    for (const Tensor& t : own_tensors())
      if (t.defined() && moved.insert(t.storage().get()).second) t.detach().move_to_(to);
  };
  move_all(Device::cpu());
  try {
    step();
  } catch (...) {
    move_all(where);
    throw;
  }
  move_all(where);  // buffers the step created (a first programming) go too
}

std::uint64_t AnalogTile::seed() const { return static_cast<std::uint64_t>(read_scalar<std::int64_t>(seed_)); }

float AnalogTile::nm_running(int pass) const { return read_scalar<float>(nm_running_[pass]); }

cpu::AnalogLineValues AnalogTile::device_line_values(int pass) {
  const PassLines& host = pass == kForwardPass ? forward_lines_ : backward_lines_;
  DeviceLines& dev = device_lines_[pass];
  if (!dev.valid || dev.seed != lines_seed_) {
    auto copy = [](const std::vector<float>& v) {
      return v.empty() ? Tensor() : Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).to(Device::cuda());
    };
    dev.nonlinearity = copy(host.nonlinearity);
    dev.noise = copy(host.noise);
    dev.v_offset = copy(host.v_offset);
    dev.w_asymmetry = copy(host.w_asymmetry);
    dev.seed = lines_seed_;
    dev.valid = true;
  }
  auto ptr = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
  cpu::AnalogLineValues v;
  v.out_nonlinearity = ptr(dev.nonlinearity);
  v.out_noise = ptr(dev.noise);
  v.v_offset = ptr(dev.v_offset);
  v.w_asymmetry = ptr(dev.w_asymmetry);
  v.slope_gain = host.slope_gain;  // a host number, computed once per chip
  return v;
}

void AnalogTile::compensate(float* y, std::int64_t n) const {
  const Tensor& alpha = programming_->alpha();  // on the tile's device (Module::to moved it)
  const float* a = alpha.data<float>();
  const std::int64_t size = alpha.numel();
  if (on_gpu()) {
    cuda::backend().drift_compensate(y, static_cast<std::size_t>(n), static_cast<std::size_t>(out_size_), a,
                                     static_cast<std::size_t>(size));
    return;
  }
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < out_size_; ++j) y[i * out_size_ + j] = drift_compensated(y[i * out_size_ + j], a, size, j);
}

void AnalogTile::refresh_lines() {
  const std::uint64_t seed = this->seed();
  if (seed == lines_seed_) return;
  const std::uint64_t stream = analog::tile_stream(tile_id_, TileStream::LineValues);
  // Backward lines and the read-asymmetry matrices start far apart in the same stream.
  constexpr std::uint64_t kApart = std::uint64_t(1) << 40;
  draw_lines(forward_io_, out_size_, seed, stream, 0, 2 * kApart, forward_lines_);
  draw_lines(backward_io_, in_size_, seed, stream, kApart, 3 * kApart, backward_lines_);
  lines_seed_ = seed;
}

// One pass (0 forward, 1 backward): draws from the pass's stream at its
// counter, keeps its noise-management running value.
template <class Kernel>
void AnalogTile::run_pass(Kernel kernel, int pass, const IOParameters& io, const cpu::AnalogLineValues& lines,
                          const float* in, std::int64_t n, float* out, bool is_test, const float* weights) {
  const std::int64_t counter = read_scalar<std::int64_t>(counter_[pass]);
  const TileStream purpose = pass == kForwardPass ? TileStream::Forward : TileStream::Backward;
  const cpu::AnalogRandom random{seed(), analog::tile_stream(tile_id_, purpose), static_cast<std::uint64_t>(counter)};
  float nm_running = read_scalar<float>(nm_running_[pass]);  // a host value for either kernel
  const float* w = weights != nullptr ? weights : weight_.data<float>();
  if (weights == nullptr && is_test && programmed()) w = programming_->weights();
  const auto stats = kernel(io, w, out_size_, in_size_, in, n, out, lines, random, &nm_running);
  write_scalar(counter_[pass], counter + static_cast<std::int64_t>(stats.blocks));
  write_scalar(nm_running_[pass], nm_running);
}

void AnalogTile::forward(const float* x, std::int64_t n, float* y, bool is_test, const float* weights) {
  refresh_lines();  // a loaded state may carry another chip's seed
  if (on_gpu()) {
    run_pass(cuda::backend().analog_mvm_forward, kForwardPass, forward_io_, device_line_values(kForwardPass), x, n, y,
             is_test, weights);
  } else {
    device_lines_[kForwardPass] = {};  // back on the host: the GPU copies go
    run_pass(cpu::analog_mvm_forward, kForwardPass, forward_io_, line_values(forward_lines_), x, n, y, is_test,
             weights);
  }
  if (weights != nullptr || !is_test || !programmed() || !programming_->alpha().defined()) return;
  compensate(y, n);  // drift compensation: y × α (one value, or one per output)
}

void AnalogTile::set_inference_devices(std::shared_ptr<const NoiseModel> model,
                                       std::shared_ptr<const DriftCompensation> compensation,
                                       bool reconvert_weights_before_drift) {
  noise_model_ = std::move(model);
  compensation_ = std::move(compensation);
  reconvert_weights_before_drift_ = reconvert_weights_before_drift;
  programming_.reset();
}

bool AnalogTile::programs_on_gpu() const {
  return noise_model_ && noise_model_->runs_on_gpu() && noise_model_->converter().runs_on_gpu();
}

void AnalogTile::program_weights() {
  if (!noise_model_) throw ValueError("AnalogTile::program_weights: this tile has no noise model");
  if (on_gpu() && !programs_on_gpu()) return on_host([&] { program_weights(); });
  if (!programming_) {
    programming_ = std::make_unique<TileProgramming>(noise_model_, compensation_, out_size_, in_size_, tile_id_,
                                                     reconvert_weights_before_drift_);
    if (on_gpu())  // made on the host: to the tile's GPU, where the programming runs
      for (const auto& [name, t] : programming_->buffers()) t.detach().move_to_(weight_.device());
  }
  programming_->program(weight_.data<float>(), seed(), [this](const float* w, float* y) { read_identity(w, y); });
}

void AnalogTile::drift_weights(double t_inference) {
  if (on_gpu() && !programs_on_gpu()) return on_host([&] { drift_weights(t_inference); });
  if (!programmed()) program_weights();
  programming_->drift(t_inference, seed(), [this](const float* w, float* y) { read_identity(w, y); });
}

void AnalogTile::read_identity(const float* weights, float* y) {
  std::vector<float> eye(static_cast<std::size_t>(in_size_ * in_size_), 0.f);
  for (std::int64_t i = 0; i < in_size_; ++i) eye[i * in_size_ + i] = 1.f;
  if (!on_gpu()) return forward(eye.data(), in_size_, y, /*is_test=*/true, weights);
  const Tensor x = Tensor::from_vector(eye, {in_size_, in_size_}).to(weight_.device());
  forward(x.data<float>(), in_size_, y, /*is_test=*/true, weights);
}

void AnalogTile::backward(const float* d, std::int64_t n, float* dx, bool is_test, const float* weights) {
  refresh_lines();
  if (on_gpu()) {
    run_pass(cuda::backend().analog_mvm_backward, kBackwardPass, backward_io_, device_line_values(kBackwardPass), d,
             n, dx, is_test, weights);
  } else {
    device_lines_[kBackwardPass] = {};
    run_pass(cpu::analog_mvm_backward, kBackwardPass, backward_io_, line_values(backward_lines_), d, n, dx, is_test,
             weights);
  }
}

std::uint64_t AnalogTile::forward_counter() const {
  return static_cast<std::uint64_t>(read_scalar<std::int64_t>(counter_[kForwardPass]));
}
std::uint64_t AnalogTile::backward_counter() const {
  return static_cast<std::uint64_t>(read_scalar<std::int64_t>(counter_[kBackwardPass]));
}

void AnalogTile::set_counters(std::uint64_t forward, std::uint64_t backward) {
  write_scalar(counter_[kForwardPass], static_cast<std::int64_t>(forward));
  write_scalar(counter_[kBackwardPass], static_cast<std::int64_t>(backward));
}

}  // namespace aimc
