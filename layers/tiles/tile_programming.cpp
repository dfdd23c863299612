// TileProgramming (see tile_programming.h).
#include "layers/tiles/tile_programming.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cuda/backend.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/random_fill.h"

namespace aimc {
namespace {
using analog::TileStream;
constexpr std::int64_t kChunk = 8192;  // conductances per parallel chunk (a multiple of 4)

std::uint64_t padded(std::int64_t n) { return static_cast<std::uint64_t>((n + 3) / 4 * 4); }
}  // namespace

TileProgramming::TileProgramming(std::shared_ptr<const NoiseModel> model,
                                 std::shared_ptr<const DriftCompensation> compensation, std::int64_t out_size,
                                 std::int64_t in_size, std::uint64_t tile_id, bool reconvert_weights_before_drift)
    : model_(std::move(model)),
      compensation_(std::move(compensation)),
      out_size_(out_size),
      in_size_(in_size),
      n_(out_size * in_size),
      tile_id_(tile_id),
      reconvert_weights_before_drift_(reconvert_weights_before_drift) {
  if (model_->drift_normals() < 0)
    throw ConfigError(model_->type() + ": drift_normals() must be >= 0, got " + std::to_string(model_->drift_normals()));
  const std::int64_t k = model_->converter().num_devices();
  g_prog_ = Tensor::zeros({k, out_size, in_size});
  nu_ = Tensor::zeros({k, out_size, in_size});
  w_read_ = Tensor::zeros({out_size, in_size});
  params_ = Tensor::zeros({model_->converter().num_params()});
  state_ = Tensor::from_vector(std::vector<double>{0, -1, 0, 0}, {4});
  if (compensation_) {
    baseline_ = Tensor::ones({compensation_->readout_size(out_size)});
    alpha_ = Tensor::ones({compensation_->readout_size(out_size)});
  }
}

void TileProgramming::for_chunks(std::uint64_t seed, analog::TileStream stream, std::uint64_t block, int planes,
                                 const std::function<void(std::int64_t, std::int64_t, const float*)>& body) const {
  const std::uint64_t n4 = padded(n_);
  const std::uint64_t full_stream = analog::tile_stream(tile_id_, stream);
  cpu::parallel_for(0, n_, kChunk, [&](std::int64_t lo, std::int64_t hi) {
    const std::int64_t len = hi - lo;
    std::vector<float> xi(static_cast<std::size_t>(planes * len));
    for (int p = 0; p < planes; ++p)
      cpu::fill_normal(seed, full_stream, block + (static_cast<std::uint64_t>(p) * n4 + lo) / 4, len,
                       xi.data() + p * len);
    body(lo, len, xi.data());
  });
}

void TileProgramming::program(const float* target, std::uint64_t seed, const Readout& readout) {
  if (on_gpu()) return program_cuda(target, seed, readout);
  for (std::int64_t i = 0; i < n_; ++i)
    if (!std::isfinite(target[i]))
      throw ValueError("program_analog_weights: tile " + std::to_string(tile_id_) + " holds a non-finite weight (" +
                       std::to_string(target[i]) + " at index " + std::to_string(i) + ")");
  const ConductanceConverter& conv = model_->converter();
  const std::int64_t k = conv.num_devices();
  std::vector<float> g_target(static_cast<std::size_t>(k * n_));
  conv.to_conductances(target, n_, g_target.data(), params_.data<float>());
  double* st = state_.data<double>();
  float* g_prog = g_prog_.data<float>();
  float* nu = nu_.data<float>();
  for_chunks(seed, TileStream::Programming, static_cast<std::uint64_t>(st[2]), static_cast<int>(2 * k),
             [&](std::int64_t lo, std::int64_t len, const float* xi) {
               for (std::int64_t d = 0; d < k; ++d) {
                 const std::int64_t off = d * n_ + lo;
                 model_->program(g_target.data() + off, xi + d * len, len, g_prog + off);
                 model_->drift_coefficients(g_target.data() + off, xi + (k + d) * len, len, nu + off);
               }
             });
  st[2] += static_cast<double>(2 * k * padded(n_) / 4);
  conv.to_weights(g_prog, n_, params_.data<float>(), w_read_.data<float>());
  st[0] = 1.0;
  st[1] = -1.0;
  if (compensation_) {
    const std::vector<float> m = read_compensation(readout, compensation_->exact_reference() ? target : weights());
    std::copy(m.begin(), m.end(), baseline_.data<float>());
    alpha_.fill_(1.0);
  }
}

void TileProgramming::drift(double t_inference, std::uint64_t seed, const Readout& readout) {
  if (!programmed()) throw ValueError("TileProgramming::drift: the tile is not programmed");
  if (!(t_inference >= 0.0)) throw ValueError("drift: t_inference must be >= 0 seconds, got " + std::to_string(t_inference));
  if (on_gpu()) return drift_cuda(t_inference, seed, readout);
  const ConductanceConverter& conv = model_->converter();
  const std::int64_t k = conv.num_devices();
  const int q = model_->drift_normals();
  double* st = state_.data<double>();
  const float* g_prog = g_prog_.data<float>();
  const float* nu = nu_.data<float>();
  const float* params = params_.data<float>();
  float* w = w_read_.data<float>();
  std::vector<float> g_reconverted, params_reconverted;
  if (reconvert_weights_before_drift_) {
    // aihwkit's path (see the header): the programmed weights, converted again.
    std::vector<float> w_prog(static_cast<std::size_t>(n_));
    conv.to_weights(g_prog, n_, params, w_prog.data());
    g_reconverted.resize(static_cast<std::size_t>(k * n_));
    params_reconverted.resize(static_cast<std::size_t>(conv.num_params()));
    conv.to_conductances(w_prog.data(), n_, g_reconverted.data(), params_reconverted.data());
    g_prog = g_reconverted.data();
    params = params_reconverted.data();
  }
  // Conductances are drifted chunk by chunk and converted back to weights
  // right away (a chunk holds every device of its weights).
  for_chunks(seed, TileStream::Drift, static_cast<std::uint64_t>(st[3]), static_cast<int>(k * q),
             [&](std::int64_t lo, std::int64_t len, const float* xi) {
               std::vector<float> g(static_cast<std::size_t>(k * len));
               for (std::int64_t d = 0; d < k; ++d)
                 model_->drift(g_prog + d * n_ + lo, nu + d * n_ + lo, t_inference, xi + d * q * len, len,
                               g.data() + d * len);
               conv.to_weights(g.data(), len, params, w + lo);
             });
  st[3] += static_cast<double>(k * q * padded(n_) / 4);
  st[1] = t_inference;
  update_alpha(readout);
}

void TileProgramming::update_alpha(const Readout& readout) {
  if (!compensation_) return;
  const std::vector<float> m = read_compensation(readout, weights());
  const std::vector<float> base = baseline_.to_vector();  // a host copy when on a GPU
  std::vector<float> a(m.size());
  for (std::size_t i = 0; i < m.size(); ++i) a[i] = base[i] / m[i];
  if (on_gpu())
    cuda::backend().copy_host_to_device(alpha_.data<float>(), a.data(), a.size() * sizeof(float));
  else
    std::copy(a.begin(), a.end(), alpha_.data<float>());
}

std::vector<float> TileProgramming::read_compensation(const Readout& readout, const float* weights) const {
  const std::int64_t size = in_size_ * out_size_;
  if (!on_gpu()) {
    std::vector<float> y(static_cast<std::size_t>(size));
    readout(weights, y.data());
    return compensation_->readout(y.data(), in_size_, out_size_);
  }
  // On the GPU: Y and its column sums stay there, out doubles come back.
  Tensor y = Tensor::empty({size}, DType::Float32, g_prog_.device());
  Tensor sums = Tensor::empty({out_size_}, DType::Float64, g_prog_.device());
  readout(weights, y.data<float>());
  const cuda::Backend& b = cuda::backend();
  b.column_abs_sums(y.data<float>(), static_cast<std::size_t>(in_size_), static_cast<std::size_t>(out_size_),
                    sums.data<double>());
  std::vector<double> host(static_cast<std::size_t>(out_size_));
  b.copy_device_to_host(host.data(), sums.data<double>(), host.size() * sizeof(double));
  return compensation_->readout_from_sums(host, in_size_, out_size_);
}

Tensor TileProgramming::normals_cuda(std::uint64_t seed, analog::TileStream stream, std::uint64_t block,
                                     int planes) const {
  Tensor xi = Tensor::empty({planes * n_}, DType::Float32, g_prog_.device());
  const std::uint64_t n4 = padded(n_), full_stream = analog::tile_stream(tile_id_, stream);
  for (int p = 0; p < planes; ++p)
    cuda::backend().fill_normal(seed, full_stream, block + static_cast<std::uint64_t>(p) * n4 / 4,
                                static_cast<std::size_t>(n_), xi.data<float>() + p * n_);
  return xi;
}

void TileProgramming::program_cuda(const float* target, std::uint64_t seed, const Readout& readout) {
  const cuda::Backend& b = cuda::backend();
  // The host copy: the finite check and the converter's per-tile scale (one scan each).
  std::vector<float> w(static_cast<std::size_t>(n_));
  b.copy_device_to_host(w.data(), target, w.size() * sizeof(float));
  for (std::int64_t i = 0; i < n_; ++i)
    if (!std::isfinite(w[i]))
      throw ValueError("program_analog_weights: tile " + std::to_string(tile_id_) + " holds a non-finite weight (" +
                       std::to_string(w[i]) + " at index " + std::to_string(i) + ")");
  const ConductanceConverter& conv = model_->converter();
  const std::int64_t k = conv.num_devices();
  Tensor g_target = Tensor::empty({k * n_}, DType::Float32, g_prog_.device());
  std::vector<float> params(static_cast<std::size_t>(conv.num_params()));
  conv.to_conductances_cuda(w.data(), target, n_, g_target.data<float>(), params.data());
  b.copy_host_to_device(params_.data<float>(), params.data(), params.size() * sizeof(float));
  const double block = state_value(2);
  const Tensor xi =
      normals_cuda(seed, TileStream::Programming, static_cast<std::uint64_t>(block), static_cast<int>(2 * k));
  float* g_prog = g_prog_.data<float>();
  float* nu = nu_.data<float>();
  const float* z = xi.data<float>();
  for (std::int64_t d = 0; d < k; ++d)
    model_->program_cuda(g_target.data<float>() + d * n_, z + d * n_, z + (k + d) * n_, n_, g_prog + d * n_,
                         nu + d * n_);
  set_state_value(2, block + static_cast<double>(2 * k * padded(n_) / 4));
  conv.to_weights_cuda(g_prog, n_, params.data(), w_read_.data<float>());
  set_state_value(0, 1.0);
  set_state_value(1, -1.0);
  if (compensation_) {
    const std::vector<float> m = read_compensation(readout, compensation_->exact_reference() ? target : weights());
    b.copy_host_to_device(baseline_.data<float>(), m.data(), m.size() * sizeof(float));
    alpha_.fill_(1.0);
  }
}

void TileProgramming::drift_cuda(double t_inference, std::uint64_t seed, const Readout& readout) {
  const ConductanceConverter& conv = model_->converter();
  const std::int64_t k = conv.num_devices();
  const int q = model_->drift_normals();
  const Device where = g_prog_.device();
  std::vector<float> params = params_.to_vector();  // the per-tile scale, host numbers
  const float* g_prog = g_prog_.data<float>();
  Tensor g_reconverted;
  if (reconvert_weights_before_drift_) {
    // aihwkit's path (see the header): the programmed weights, converted again.
    Tensor w_prog = Tensor::empty({n_}, DType::Float32, where);
    conv.to_weights_cuda(g_prog, n_, params.data(), w_prog.data<float>());
    const std::vector<float> w_host = w_prog.to_vector();
    g_reconverted = Tensor::empty({k * n_}, DType::Float32, where);
    conv.to_conductances_cuda(w_host.data(), w_prog.data<float>(), n_, g_reconverted.data<float>(), params.data());
    g_prog = g_reconverted.data<float>();
  }
  const double block = state_value(3);
  const Tensor xi = normals_cuda(seed, TileStream::Drift, static_cast<std::uint64_t>(block), static_cast<int>(k * q));
  Tensor g = Tensor::empty({k * n_}, DType::Float32, where);
  for (std::int64_t d = 0; d < k; ++d)
    model_->drift_cuda(g_prog + d * n_, nu_.data<float>() + d * n_, t_inference, xi.data<float>() + d * q * n_, n_,
                       g.data<float>() + d * n_);
  conv.to_weights_cuda(g.data<float>(), n_, params.data(), w_read_.data<float>());
  set_state_value(3, block + static_cast<double>(k * q * padded(n_) / 4));
  set_state_value(1, t_inference);
  update_alpha(readout);
}

namespace {
const char* const kBufferNames[] = {"conductances", "drift_nu", "w_read", "conversion", "programming",
                                    "drift_baseline", "drift_alpha"};
}

bool is_tile_programming_key(const std::string& key) {
  for (const char* name : kBufferNames) {
    const std::string suffix = std::string("_") + name;
    if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        key.find("tile_") != std::string::npos)
      return true;
  }
  return false;
}

double TileProgramming::state_value(int i) const {
  if (state_.device().is_cpu()) return state_.data<double>()[i];
  double v = 0.0;  // a GPU state (Module::to): one value copied back
  cuda::backend().copy_device_to_host(&v, state_.data<double>() + i, sizeof v);
  return v;
}

void TileProgramming::set_state_value(int i, double v) {
  if (state_.device().is_cpu())
    state_.data<double>()[i] = v;
  else
    cuda::backend().copy_host_to_device(state_.data<double>() + i, &v, sizeof v);
}

std::vector<std::pair<std::string, Tensor>> TileProgramming::buffers() const {
  std::vector<std::pair<std::string, Tensor>> out{{"conductances", g_prog_}, {"drift_nu", nu_},
                                                  {"w_read", w_read_},       {"conversion", params_},
                                                  {"programming", state_}};
  if (compensation_) {
    out.emplace_back("drift_baseline", baseline_);
    out.emplace_back("drift_alpha", alpha_);
  }
  return out;
}

}  // namespace aimc
