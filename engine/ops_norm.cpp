// Normalisation and regularisation ops: batch_norm and dropout.
//
// batch_norm follows PyTorch: in training it normalises with the biased batch
// variance and updates running_mean / running_var in place with
// r = (1 - momentum) * r + momentum * batch_stat, using the unbiased variance
// for running_var; in eval it normalises with the running statistics. The
// backward pass in training goes through the batch statistics:
//   dx = w / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)).
// dropout is inverted dropout: kept values are x / (1 - p), the mask comes
// from Generator::bernoulli, so it is fixed by (seed, stream, offset).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/cuda/backend.h"
#include "kernels/engine/batch_norm_law.h"
#include "kernels/cpu/parallel.h"

namespace aimc {
namespace {

// x viewed as [N, C, S] (S = 1 for [N, C]).
struct ChannelLayout {
  std::int64_t n = 0, c = 0, s = 1;
  std::int64_t per_channel() const { return n * s; }
};

void check_channel_vector(const Tensor& t, const Tensor& x, std::int64_t c, const char* name) {
  if (!t.defined()) return;
  op_device("batch_norm", {x, t});
  check_float(t, "batch_norm");
  if (t.dim() != 1 || t.size(0) != c)
    throw ShapeError(std::string("batch_norm: ") + name + " " + shape_str(t.shape()) + " does not match input " +
                     shape_str(x.shape()) + " (expected [" + std::to_string(c) + "])");
}

// Calls f(channel) for every channel, in parallel; chunks depend only on the sizes.
template <class F>
void for_each_channel(const ChannelLayout& a, F&& f) {
  const std::int64_t grain =
      cpu::grain_for(a.c, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, a.per_channel())));
  cpu::parallel_for(0, a.c, grain, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t ch = c0; ch < c1; ++ch) f(ch);
  });
}

std::vector<double> values_or(const Tensor& t, std::int64_t c, double fallback) {
  return t.defined() ? t.to_double_vector() : std::vector<double>(static_cast<std::size_t>(c), fallback);
}

// r = (1 - momentum) r + momentum · batch_stat for both running statistics
// (running_var from the unbiased batch variance), computed on the host.
void update_running(Tensor& running_mean, Tensor& running_var, const std::vector<double>& mean,
                    const std::vector<double>& batch_var, std::int64_t m, double momentum) {
  NoGradGuard no_grad;
  std::vector<double> rm = running_mean.to_double_vector(), rv = running_var.to_double_vector();
  const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
  for (std::size_t c = 0; c < rm.size(); ++c) {
    rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
    rv[c] = (1 - momentum) * rv[c] + momentum * batch_var[c] * unbias;
  }
  const auto c = static_cast<std::int64_t>(rm.size());
  // Converted on the host first: CUDA runs float32 only.
  running_mean.copy_(Tensor::from_vector(rm, {c}).to(running_mean.dtype()));
  running_var.copy_(Tensor::from_vector(rv, {c}).to(running_var.dtype()));
}

// A host vector on `device` (float64 on the GPU holds the kernels' per-channel double inputs).
Tensor on_device(const std::vector<double>& v, Device device) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).to(device);
}

// batch_norm on the GPU, float32: the per-channel sums on the device (double,
// in the CPU's order, kernels/cuda/batch_norm.cu), the per-channel scale and
// shift from them on the host as the CPU computes them, so the results are
// the CPU's up to the device's rounding of the same operations.
Tensor batch_norm_cuda(const Tensor& xc, const Tensor& wc, const Tensor& bc, Tensor& running_mean,
                       Tensor& running_var, bool training, double momentum, double eps, const ChannelLayout& a) {
  const Device device = xc.device();
  const cuda::Backend& gpu = cuda_kernels();
  const std::int64_t m = a.per_channel();
  const auto cs = static_cast<std::size_t>(a.c);
  std::vector<double> mean, var;
  if (training) {
    Tensor mean_d = Tensor::empty({a.c}, DType::Float64, device), var_d = Tensor::empty({a.c}, DType::Float64, device);
    gpu.batch_norm_stats(xc.data<float>(), a.n, a.c, a.s, mean_d.data<double>(), var_d.data<double>());
    mean = mean_d.to_double_vector();
    var = var_d.to_double_vector();
  } else {
    mean = running_mean.to_double_vector();
    var = running_var.to_double_vector();
  }
  const std::vector<double> w = values_or(wc, a.c, 1.0), b = values_or(bc, a.c, 0.0);
  std::vector<double> inv_std(cs);
  std::vector<float> scale(cs), shift(cs);
  for (std::size_t c = 0; c < cs; ++c) {
    const batch_norm_law::ChannelAffine f = batch_norm_law::channel_affine(mean[c], var[c], w[c], b[c], eps);
    inv_std[c] = f.inv_std;
    scale[c] = static_cast<float>(f.scale);
    shift[c] = static_cast<float>(f.shift);
  }
  Tensor y = Tensor::empty(xc.shape(), DType::Float32, device);
  const Tensor scale_d = Tensor::from_vector(scale, {a.c}).to(device);
  const Tensor shift_d = Tensor::from_vector(shift, {a.c}).to(device);
  gpu.batch_norm_apply(xc.data<float>(), a.n, a.c, a.s, scale_d.data<float>(), shift_d.data<float>(),
                       y.data<float>());
  if (training && running_mean.defined()) update_running(running_mean, running_var, mean, var, m, momentum);

  const bool need_w = wc.defined() && wc.requires_grad(), need_b = bc.defined() && bc.requires_grad();
  return record(y, "batch_norm", {xc, wc, bc},
                [a, training, need_w, need_b, x_saved = xc.detach(), w_d = on_device(w, device),
                 mean_d = on_device(mean, device), inv_std_d = on_device(inv_std, device)](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    const Device dev = gy.device();
    Tensor gx = Tensor::empty(x_saved.shape(), DType::Float32, dev);
    Tensor sum_dy = Tensor::empty({a.c}, DType::Float64, dev), sum_dy_xhat = Tensor::empty({a.c}, DType::Float64, dev);
    cuda_kernels().batch_norm_backward(x_saved.data<float>(), gy.data<float>(), a.n, a.c, a.s, mean_d.data<double>(),
                                       inv_std_d.data<double>(), w_d.data<double>(), training,
                                       sum_dy.data<double>(), sum_dy_xhat.data<double>(), gx.data<float>());
    // float on the host, as the CPU rounds them, then to the device.
    auto as_grad = [&](const Tensor& sums) { return sums.to(Device::cpu()).to(DType::Float32).to(dev); };
    return std::vector<Tensor>{gx, need_w ? as_grad(sum_dy_xhat) : Tensor(), need_b ? as_grad(sum_dy) : Tensor()};
  });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor running_mean,
                  Tensor running_var, bool training, double momentum, double eps) {
  op_device("batch_norm", {x});
  check_float(x, "batch_norm");
  if (x.dim() < 2) throw ShapeError("batch_norm: expected input [N, C] or [N, C, *S], got " + shape_str(x.shape()));
  ChannelLayout a;
  a.n = x.size(0);
  a.c = x.size(1);
  a.s = a.n * a.c > 0 ? x.numel() / (a.n * a.c) : 0;
  check_channel_vector(weight, x, a.c, "weight");
  check_channel_vector(bias, x, a.c, "bias");
  check_channel_vector(running_mean, x, a.c, "running_mean");
  check_channel_vector(running_var, x, a.c, "running_var");
  if (weight.defined()) check_dtype(weight, x.dtype(), "batch_norm");
  if (bias.defined()) check_dtype(bias, x.dtype(), "batch_norm");
  if (!(momentum >= 0 && momentum <= 1))
    throw ConfigError("batch_norm: momentum " + std::to_string(momentum) + " must be in [0, 1]");
  if (!(eps >= 0)) throw ConfigError("batch_norm: eps " + std::to_string(eps) + " must be >= 0");
  if (running_mean.defined() != running_var.defined())
    throw ConfigError("batch_norm: running_mean and running_var must both be given or both be undefined");
  if (!training && !running_mean.defined())
    throw ConfigError("batch_norm: eval mode needs running_mean and running_var");
  const std::int64_t m = a.per_channel();
  if (training && m <= 1)
    throw ShapeError("batch_norm: training needs more than 1 value per channel, got input " + shape_str(x.shape()));

  const Tensor xc = x.contiguous();
  const Tensor wc = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  if (xc.device().is_cuda()) return batch_norm_cuda(xc, wc, bc, running_mean, running_var, training, momentum, eps, a);
  // Per-channel statistics used for normalising (double precision).
  auto mean = std::make_shared<std::vector<double>>(static_cast<std::size_t>(a.c));
  auto inv_std = std::make_shared<std::vector<double>>(static_cast<std::size_t>(a.c));
  std::vector<double> batch_var(static_cast<std::size_t>(a.c));
  const std::vector<double> w = values_or(wc, a.c, 1.0), b = values_or(bc, a.c, 0.0);
  Tensor y = Tensor::empty(xc.shape(), xc.dtype());

  dispatch_float(xc.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* src = xc.data<T>();
    T* dst = y.data<T>();
    std::vector<double> run_mean, run_var;
    if (!training) {
      run_mean = running_mean.to_double_vector();
      run_var = running_var.to_double_vector();
    }
    for_each_channel(a, [&](std::int64_t ch) {
      const auto c = static_cast<std::size_t>(ch);
      double mu, var;
      if (training) {
        double total = 0;
        for (std::int64_t i = 0; i < a.n; ++i) {
          const T* p = src + (i * a.c + ch) * a.s;
          for (std::int64_t k = 0; k < a.s; ++k) total += p[k];
        }
        mu = total / static_cast<double>(m);
        double sq = 0;
        for (std::int64_t i = 0; i < a.n; ++i) {
          const T* p = src + (i * a.c + ch) * a.s;
          for (std::int64_t k = 0; k < a.s; ++k) {
            const double d = p[k] - mu;
            sq += d * d;
          }
        }
        var = sq / static_cast<double>(m);
        batch_var[c] = var;
      } else {
        mu = run_mean[c];
        var = run_var[c];
      }
      const batch_norm_law::ChannelAffine f = batch_norm_law::channel_affine(mu, var, w[c], b[c], eps);
      (*mean)[c] = mu;
      (*inv_std)[c] = f.inv_std;
      const T scale = static_cast<T>(f.scale), shift = static_cast<T>(f.shift);
      for (std::int64_t i = 0; i < a.n; ++i) {
        const T* p = src + (i * a.c + ch) * a.s;
        T* q = dst + (i * a.c + ch) * a.s;
        for (std::int64_t k = 0; k < a.s; ++k) q[k] = p[k] * scale + shift;
      }
    });
  });

  if (training && running_mean.defined()) update_running(running_mean, running_var, *mean, batch_var, m, momentum);

  const bool need_w = wc.defined() && wc.requires_grad(), need_b = bc.defined() && bc.requires_grad();
  return record(y, "batch_norm", {xc, wc, bc},
                [a, m, training, need_w, need_b, x_saved = xc.detach(), w, mean,
                 inv_std](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    Tensor gx = Tensor::empty(x_saved.shape(), gy.dtype());
    std::vector<double> gw(static_cast<std::size_t>(a.c)), gb(static_cast<std::size_t>(a.c));
    dispatch_float(gy.dtype(), "batch_norm backward", [&](auto tag) {
      using T = decltype(tag);
      const T* xs = x_saved.data<T>();
      const T* g = gy.data<T>();
      T* out = gx.data<T>();
      for_each_channel(a, [&](std::int64_t ch) {
        const auto c = static_cast<std::size_t>(ch);
        const double mu = (*mean)[c], is = (*inv_std)[c];
        double sum_dy = 0, sum_dy_xhat = 0;
        for (std::int64_t i = 0; i < a.n; ++i) {
          const std::int64_t at = (i * a.c + ch) * a.s;
          for (std::int64_t k = 0; k < a.s; ++k) {
            sum_dy += g[at + k];
            sum_dy_xhat += g[at + k] * batch_norm_law::normalized(xs[at + k], mu, is);
          }
        }
        gw[c] = sum_dy_xhat;
        gb[c] = sum_dy;
        const double scale = w[c] * is;
        const double mean_dy = training ? sum_dy / static_cast<double>(m) : 0.0;
        const double mean_dy_xhat = training ? sum_dy_xhat / static_cast<double>(m) : 0.0;
        for (std::int64_t i = 0; i < a.n; ++i) {
          const std::int64_t at = (i * a.c + ch) * a.s;
          for (std::int64_t k = 0; k < a.s; ++k) {
            const double xhat = batch_norm_law::normalized(xs[at + k], mu, is);
            out[at + k] = static_cast<T>(batch_norm_law::input_grad(g[at + k], xhat, scale, mean_dy, mean_dy_xhat));
          }
        }
      });
    });
    auto as_tensor = [&](const std::vector<double>& v) {
      return Tensor::from_vector(v, {a.c}).to(gy.dtype());
    };
    return std::vector<Tensor>{gx, need_w ? as_tensor(gw) : Tensor(),
                               need_b ? as_tensor(gb) : Tensor()};
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  if (!(p >= 0 && p < 1)) throw ConfigError("dropout: p " + std::to_string(p) + " must be in [0, 1)");
  if (!training || p == 0) return x;
  const Device device = op_device("dropout", {x});
  check_float(x, "dropout");
  const Tensor xc = x.contiguous();
  const std::int64_t n = xc.numel();
  if (device.is_cuda()) {
    // The mask is the CPU's draw (same Philox words) made on the device.
    Tensor keep_mask = Tensor::empty(xc.shape(), DType::Float32, device);
    cuda_kernels().engine_bernoulli(gen.seed(), gen.stream(), gen.offset(), static_cast<float>(1 - p),
                                    static_cast<std::size_t>(n), keep_mask.data<float>());
    gen.set_offset(gen.offset() + static_cast<std::uint64_t>((n + 3) / 4));
    using engine_law::Binary;
    Tensor y = detail::binary<Binary::dropout_mask>(xc.detach(), keep_mask, "dropout", 1 - p);
    return record(y, "dropout", {xc}, [keep_mask, p](const Tensor& grad) {
      return std::vector<Tensor>{detail::binary<Binary::dropout_mask>(grad, keep_mask, "dropout backward", 1 - p)};
    });
  }
  auto mask = std::make_shared<std::vector<float>>(static_cast<std::size_t>(n));
  gen.bernoulli(mask->data(), n, static_cast<float>(1 - p));
  Tensor y = Tensor::empty(xc.shape(), xc.dtype());
  dispatch_float(xc.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T keep = static_cast<T>(1 - p);
    const T* src = xc.data<T>();
    T* dst = y.data<T>();
    const float* mk = mask->data();
    for (std::int64_t i = 0; i < n; ++i) dst[i] = mk[i] != 0.f ? src[i] / keep : T(0);
  });
  return record(y, "dropout", {xc}, [mask, p](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    Tensor gx = Tensor::empty(gy.shape(), gy.dtype());
    dispatch_float(gy.dtype(), "dropout backward", [&](auto tag) {
      using T = decltype(tag);
      const T keep = static_cast<T>(1 - p);
      const T* src = gy.data<T>();
      T* dst = gx.data<T>();
      const float* mk = mask->data();
      for (std::int64_t i = 0; i < gy.numel(); ++i) dst[i] = mk[i] != 0.f ? src[i] / keep : T(0);
    });
    return std::vector<Tensor>{gx};
  });
}

}  // namespace aimc
