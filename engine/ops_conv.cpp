// Convolution ops: conv_output_size, im2col, col2im, rows_to_channels and
// conv (1 to 3 spatial dims, stride, padding, dilation, groups).
//
// conv = im2col (cols [N*L, C*K], the layout of im2col below), then one GEMM
// per group straight out of the column block [g*Cg*K, (g+1)*Cg*K) of cols
// (leading dimension C*K, no copies). The GEMMs are channel-major,
// Y_g [og, N*L] = W_g · cols_gᵀ, which is 2-3x faster than the row-major
// cols_g · W_gᵀ for the few output channels of small convnets, and turns
// into [N, C_out, *out] (bias added) with contiguous copies. The backward
// pass reuses the saved cols: dW_g = dY_g · cols_g (long inner dim split
// into fixed chunks), dcolsᵀ_g = W_gᵀ · dY_g, dx = col2im of dcolsᵀ.
#include <algorithm>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/parallel.h"

namespace aimc {
namespace {

std::string list_str(const std::vector<std::int64_t>& v) { return shape_str(v); }

// Entries of one geometry field: empty means the default for every dim.
std::vector<std::int64_t> field(const std::vector<std::int64_t>& v, std::size_t dims, std::int64_t fallback,
                                const char* name) {
  if (v.empty()) return std::vector<std::int64_t>(dims, fallback);
  if (v.size() != dims)
    throw ConfigError(std::string("conv: ") + name + " " + list_str(v) + " has " + std::to_string(v.size()) +
                      " entries, expected " + std::to_string(dims) + " (one per spatial dim) or none");
  return v;
}

// The geometry with every field filled in and checked.
ConvGeometry resolve(const ConvGeometry& g, std::size_t dims) {
  if (dims < 1 || dims > 3) throw ShapeError("conv: 1 to 3 spatial dims supported, got " + std::to_string(dims));
  if (g.kernel.size() != dims)
    throw ShapeError("conv: kernel " + list_str(g.kernel) + " has " + std::to_string(g.kernel.size()) +
                     " entries for " + std::to_string(dims) + " spatial dims");
  ConvGeometry r;
  r.kernel = g.kernel;
  r.stride = field(g.stride, dims, 1, "stride");
  r.padding = field(g.padding, dims, 0, "padding");
  r.dilation = field(g.dilation, dims, 1, "dilation");
  r.groups = g.groups;
  auto require = [](bool ok, const char* name, std::int64_t value, const char* range) {
    if (!ok)
      throw ConfigError(std::string("conv: ") + name + " " + std::to_string(value) + " is invalid, must be " + range);
  };
  for (std::size_t d = 0; d < dims; ++d) {
    require(r.kernel[d] >= 1, "kernel size", r.kernel[d], ">= 1");
    require(r.stride[d] >= 1, "stride", r.stride[d], ">= 1");
    require(r.padding[d] >= 0, "padding", r.padding[d], ">= 0");
    require(r.dilation[d] >= 1, "dilation", r.dilation[d], ">= 1");
  }
  require(r.groups >= 1, "groups", r.groups, ">= 1");
  return r;
}

// Kernel geometry for `channels` channels of input size `input`.
cpu::Im2colGeometry kernel_geometry(const std::vector<std::int64_t>& input, std::int64_t channels,
                                    const ConvGeometry& g) {
  const ConvGeometry r = resolve(g, input.size());
  const std::vector<std::int64_t> out = conv_output_size(input, r);
  cpu::Im2colGeometry k;
  k.spatial_dims = static_cast<int>(input.size());
  k.channels = channels;
  for (std::size_t d = 0; d < input.size(); ++d) {
    k.input[d] = input[d];
    k.output[d] = out[d];
    k.kernel[d] = r.kernel[d];
    k.stride[d] = r.stride[d];
    k.padding[d] = r.padding[d];
    k.dilation[d] = r.dilation[d];
  }
  return k;
}

std::int64_t positions(const cpu::Im2colGeometry& k) {
  std::int64_t l = 1;
  for (int d = 0; d < k.spatial_dims; ++d) l *= k.output[d];
  return l;
}

std::int64_t kernel_volume(const cpu::Im2colGeometry& k) {
  std::int64_t v = 1;
  for (int d = 0; d < k.spatial_dims; ++d) v *= k.kernel[d];
  return v;
}

std::vector<std::int64_t> spatial_of(const Shape& s) { return std::vector<std::int64_t>(s.begin() + 2, s.end()); }

void check_image(const Tensor& x, const char* op) {
  op_device(op, {x});
  check_float(x, op);
  if (x.dim() < 3 || x.dim() > 5)
    throw ShapeError(std::string(op) + ": expected input [N, C, *spatial] with 1 to 3 spatial dims, got " +
                     shape_str(x.shape()));
}

// out[n, c, l] = rows[n*L + l, c].
template <class T>
void rows_to_channels_kernel(const T* rows, std::int64_t n, std::int64_t l, std::int64_t c, T* out) {
  const std::int64_t grain = cpu::grain_for(n, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, l * c)));
  cpu::parallel_for(0, n, grain, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t i = n0; i < n1; ++i) {
      const T* src = rows + i * l * c;
      T* dst = out + i * l * c;
      for (std::int64_t ch = 0; ch < c; ++ch) {
        T* line = dst + ch * l;
        for (std::int64_t p = 0; p < l; ++p) line[p] = src[p * c + ch];
      }
    }
  });
}

// rows[n*L + l, c] = y[n, c, l].
template <class T>
void channels_to_rows_kernel(const T* y, std::int64_t n, std::int64_t l, std::int64_t c, T* rows) {
  const std::int64_t grain = cpu::grain_for(n, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, l * c)));
  cpu::parallel_for(0, n, grain, [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t i = n0; i < n1; ++i) {
      const T* src = y + i * l * c;
      T* dst = rows + i * l * c;
      for (std::int64_t p = 0; p < l; ++p)
        for (std::int64_t ch = 0; ch < c; ++ch) dst[p * c + ch] = src[ch * l + p];
    }
  });
}

// Sum of n contiguous values in double precision; eight independent partial
// sums (fixed order, so deterministic) let the compiler vectorise it.
template <class T>
double sum_contiguous(const T* p, std::int64_t n) {
  double partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) partial[j] += static_cast<double>(p[i + j]);
  double total = 0;
  for (int j = 0; j < 8; ++j) total += partial[j];
  for (; i < n; ++i) total += static_cast<double>(p[i]);
  return total;
}

// y[n, c, :] = ycm[c, n*L : (n+1)*L] (+ bias[c]): channel-major GEMM output
// [C, N*L] to images [N, C, L].
template <class T>
void channel_major_to_images(const T* ycm, const T* bias, std::int64_t n, std::int64_t l, std::int64_t c, T* y) {
  const std::int64_t planes = n * c;
  const std::int64_t grain = cpu::grain_for(planes, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, l)));
  cpu::parallel_for(0, planes, grain, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t i = q / c, ch = q % c;
      const T* src = ycm + ch * n * l + i * l;
      T* dst = y + q * l;
      const T b = bias ? bias[ch] : T(0);
      for (std::int64_t p = 0; p < l; ++p) dst[p] = src[p] + b;
    }
  });
}

// ycm[c, n*L + l] = y[n, c, l].
template <class T>
void images_to_channel_major(const T* y, std::int64_t n, std::int64_t l, std::int64_t c, T* ycm) {
  const std::int64_t planes = n * c;
  const std::int64_t grain = cpu::grain_for(planes, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, l)));
  cpu::parallel_for(0, planes, grain, [&](std::int64_t q0, std::int64_t q1) {
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t i = q / c, ch = q % c;
      std::copy(y + q * l, y + (q + 1) * l, ycm + ch * n * l + i * l);
    }
  });
}

// gw [m, n] = a [m, k] (row stride lda) · b [k, n] (row stride ldb), with
// the long k split into fixed chunks whose partial products run in parallel
// and are summed in chunk order (chunks depend only on the sizes).
template <class T>
void gemm_split_k(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
                  std::int64_t ldb, T* c) {
  const std::int64_t chunk = cpu::grain_for(k, 2048, 16);
  const std::int64_t chunks = (k + chunk - 1) / chunk;
  auto part = [&](std::int64_t ci, T* out) {
    const std::int64_t k0 = ci * chunk, kk = std::min(chunk, k - k0);
    cpu::GemmShape s;
    s.m = m;
    s.n = n;
    s.k = kk;
    s.lda = lda;
    s.ldb = ldb;
    s.ldc = n;
    cpu::gemm(s, T(1), a + k0, b + k0 * ldb, T(0), out);
  };
  if (chunks <= 1) {
    part(0, c);
    return;
  }
  std::vector<T> partial(static_cast<std::size_t>(chunks * m * n));
  cpu::parallel_for(0, chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t ci = c0; ci < c1; ++ci) part(ci, partial.data() + ci * m * n);
  });
  for (std::int64_t i = 0; i < m * n; ++i) {
    T total = partial[static_cast<std::size_t>(i)];
    for (std::int64_t ci = 1; ci < chunks; ++ci) total += partial[static_cast<std::size_t>(ci * m * n + i)];
    c[i] = total;
  }
}

// [a, b, c] -> [a, c, b] as a contiguous copy on the GPU (a strided copy, the same values).
Tensor cuda_swap_last_two(const Tensor& t, std::int64_t a, std::int64_t b, std::int64_t c) {
  return detail::cuda_contiguous(t.detach().reshape({a, b, c}).transpose(1, 2));
}

Tensor channels_to_rows(const Tensor& y) {
  const Tensor yc = y.contiguous();
  const std::int64_t n = yc.size(0), c = yc.size(1), l = yc.numel() / std::max<std::int64_t>(1, n * c);
  if (yc.device().is_cuda()) return cuda_swap_last_two(yc, n, c, l).reshape({n * l, c});
  Tensor rows = Tensor::empty({n * l, c}, yc.dtype());
  dispatch_float(yc.dtype(), "channels_to_rows", [&](auto tag) {
    using T = decltype(tag);
    channels_to_rows_kernel<T>(yc.data<T>(), n, l, c, rows.data<T>());
  });
  return rows;
}

Tensor im2col_raw(const Tensor& xc, const cpu::Im2colGeometry& k) {
  const std::int64_t n = xc.size(0);
  Tensor cols = Tensor::empty({n * positions(k), k.channels * kernel_volume(k)}, xc.dtype(), xc.device());
  if (xc.device().is_cuda()) {
    cuda_kernels().im2col(k, n, xc.data<float>(), cols.data<float>());
    return cols;
  }
  dispatch_float(xc.dtype(), "im2col", [&](auto tag) {
    using T = decltype(tag);
    cpu::im2col(k, n, xc.data<T>(), cols.data<T>());
  });
  return cols;
}

Tensor col2im_raw(const Tensor& cols, std::int64_t n, const cpu::Im2colGeometry& k) {
  Shape shape{n, k.channels};
  for (int d = 0; d < k.spatial_dims; ++d) shape.push_back(k.input[d]);
  Tensor image = Tensor::empty(shape, cols.dtype(), cols.device());
  const Tensor cc = cols.contiguous();
  if (cc.device().is_cuda()) {
    cuda_kernels().col2im(k, n, cc.data<float>(), image.data<float>());
    return image;
  }
  dispatch_float(cc.dtype(), "col2im", [&](auto tag) {
    using T = decltype(tag);
    cpu::col2im(k, n, cc.data<T>(), image.data<T>());
  });
  return image;
}

}  // namespace

std::vector<std::int64_t> conv_output_size(const std::vector<std::int64_t>& input_size, const ConvGeometry& g) {
  const ConvGeometry r = resolve(g, input_size.size());
  std::vector<std::int64_t> out(input_size.size());
  for (std::size_t d = 0; d < input_size.size(); ++d) {
    const std::int64_t span = r.dilation[d] * (r.kernel[d] - 1) + 1;
    const std::int64_t padded = input_size[d] + 2 * r.padding[d];
    if (input_size[d] < 1 || padded < span)
      throw ShapeError("conv: empty output along spatial dim " + std::to_string(d) + ": input size " +
                       std::to_string(input_size[d]) + " (of " + list_str(input_size) + ") with padding " +
                       std::to_string(r.padding[d]) + " is smaller than the dilated kernel extent " +
                       std::to_string(span) + " (kernel " + std::to_string(r.kernel[d]) + ", dilation " +
                       std::to_string(r.dilation[d]) + ")");
    out[d] = (padded - span) / r.stride[d] + 1;
  }
  return out;
}

Tensor im2col(const Tensor& x, const ConvGeometry& g) {
  check_image(x, "im2col");
  const cpu::Im2colGeometry k = kernel_geometry(spatial_of(x.shape()), x.size(1), g);
  const Tensor xc = x.contiguous();
  const std::int64_t n = xc.size(0);
  Tensor cols = im2col_raw(xc, k);
  return record(cols, "im2col", {xc}, [k, n](const Tensor& grad) {
    return std::vector<Tensor>{col2im_raw(grad, n, k)};
  });
}

Tensor col2im(const Tensor& cols, std::int64_t channels, const std::vector<std::int64_t>& input_size,
              const ConvGeometry& g) {
  op_device("col2im", {cols});
  check_float(cols, "col2im");
  if (channels < 1) throw ConfigError("col2im: channels " + std::to_string(channels) + " must be >= 1");
  const cpu::Im2colGeometry k = kernel_geometry(input_size, channels, g);
  const std::int64_t l = positions(k), width = channels * kernel_volume(k);
  if (cols.dim() != 2 || cols.size(1) != width || cols.size(0) % l != 0)
    throw ShapeError("col2im: cols " + shape_str(cols.shape()) + " do not match [N * " + std::to_string(l) + ", " +
                     std::to_string(width) + "] for " + std::to_string(channels) + " channels of input size " +
                     list_str(input_size));
  const std::int64_t n = cols.size(0) / l;
  const Tensor cc = cols.contiguous();
  Tensor image = col2im_raw(cc, n, k);
  return record(image, "col2im", {cc}, [k](const Tensor& grad) {
    return std::vector<Tensor>{im2col_raw(grad.contiguous(), k)};
  });
}

Tensor rows_to_channels(const Tensor& rows, std::int64_t n, const std::vector<std::int64_t>& out_size) {
  op_device("rows_to_channels", {rows});
  check_float(rows, "rows_to_channels");
  if (out_size.empty() || out_size.size() > 3)
    throw ShapeError("rows_to_channels: out_size " + list_str(out_size) + " must have 1 to 3 entries");
  const std::int64_t l = shape_numel(out_size);
  if (rows.dim() != 2 || n < 1 || rows.size(0) != n * l)
    throw ShapeError("rows_to_channels: rows " + shape_str(rows.shape()) + " do not match [" + std::to_string(n) +
                     " * " + std::to_string(l) + ", C] for out_size " + list_str(out_size));
  const std::int64_t c = rows.size(1);
  Shape shape{n, c};
  shape.insert(shape.end(), out_size.begin(), out_size.end());
  const Tensor rc = rows.contiguous();
  Tensor out = rc.device().is_cuda() ? cuda_swap_last_two(rc, n, l, c).reshape(shape)
                                     : Tensor::empty(shape, rc.dtype());
  if (rc.device().is_cpu()) dispatch_float(rc.dtype(), "rows_to_channels", [&](auto tag) {
    using T = decltype(tag);
    rows_to_channels_kernel<T>(rc.data<T>(), n, l, c, out.data<T>());
  });
  return record(out, "rows_to_channels", {rc}, [](const Tensor& grad) {
    return std::vector<Tensor>{channels_to_rows(grad)};
  });
}

Tensor conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g_in) {
  check_image(x, "conv");
  op_device("conv", {x, weight});
  check_dtype(weight, x.dtype(), "conv");
  if (weight.dim() != x.dim())
    throw ShapeError("conv: weight " + shape_str(weight.shape()) + " does not match input " + shape_str(x.shape()) +
                     " (expected [C_out, C_in/groups, *kernel])");
  ConvGeometry g = g_in;
  const std::vector<std::int64_t> wkernel = spatial_of(weight.shape());
  if (g.kernel.empty()) g.kernel = wkernel;
  if (g.kernel != wkernel)
    throw ShapeError("conv: geometry kernel " + list_str(g.kernel) + " does not match weight " +
                     shape_str(weight.shape()));
  const cpu::Im2colGeometry k = kernel_geometry(spatial_of(x.shape()), x.size(1), g);
  const std::int64_t groups = g.groups;
  const std::int64_t c_in = x.size(1), c_out = weight.size(0);
  if (c_in % groups != 0 || weight.size(1) * groups != c_in)
    throw ShapeError("conv: weight " + shape_str(weight.shape()) + " does not match input " + shape_str(x.shape()) +
                     " with groups " + std::to_string(groups) + " (need C_in divisible by groups and weight.size(1) "
                     "== C_in/groups)");
  if (c_out % groups != 0)
    throw ConfigError("conv: C_out " + std::to_string(c_out) + " of weight " + shape_str(weight.shape()) +
                      " is not divisible by groups " + std::to_string(groups));
  if (bias.defined()) {
    op_device("conv", {x, bias});
    check_dtype(bias, x.dtype(), "conv");
    if (bias.dim() != 1 || bias.size(0) != c_out)
      throw ShapeError("conv: bias " + shape_str(bias.shape()) + " does not match weight " +
                       shape_str(weight.shape()) + " (expected [" + std::to_string(c_out) + "])");
  }

  if (x.device().is_cuda()) {
    // On the GPU: the patches times the flattened kernels (one GEMM, or one
    // batched GEMM over the groups), then back to channels; each step is a
    // differentiable op with a CUDA kernel.
    const std::vector<std::int64_t> out_size = conv_output_size(spatial_of(x.shape()), g);
    const Tensor cols = im2col(x, g);  // [N*L, C_in*K], group gi in columns [gi*Cg*K, (gi+1)*Cg*K)
    if (groups == 1) return rows_to_channels(linear(cols, reshape(weight, {c_out, -1}), bias), x.size(0), out_size);
    const std::int64_t rows_n = cols.size(0), og = c_out / groups;
    // [G, N*L, Cg*K] x [G, Cg*K, og] -> [G, N*L, og] -> rows [N*L, C_out] (channel gi*og + j).
    const Tensor per_group = permute(reshape(cols, {rows_n, groups, -1}), {1, 0, 2});
    const Tensor kernels = transpose(reshape(weight, {groups, og, -1}), 1, 2);
    Tensor rows = reshape(permute(matmul(per_group, kernels), {1, 0, 2}), {rows_n, c_out});
    if (bias.defined()) rows = add(rows, bias);
    return rows_to_channels(rows, x.size(0), out_size);
  }
  const Tensor xc = x.contiguous(), wc = weight.contiguous();
  const Tensor bc = bias.defined() ? bias.contiguous() : Tensor();
  const std::int64_t n = xc.size(0), l = positions(k), kv = kernel_volume(k);
  const std::int64_t cg = c_in / groups, og = c_out / groups;
  const std::int64_t rows_n = n * l, width = c_in * kv, gk = cg * kv;

  // Channel-major GEMMs: Y_g [og, N*L] = W_g [og, gk] · cols_gᵀ, reading the
  // group's column block of cols in place (ldb = C_in*K).
  const Tensor cols = im2col_raw(xc, k);
  Shape out_shape{n, c_out};
  for (int d = 0; d < k.spatial_dims; ++d) out_shape.push_back(k.output[d]);
  Tensor y = Tensor::empty(out_shape, xc.dtype());
  dispatch_float(xc.dtype(), "conv", [&](auto tag) {
    using T = decltype(tag);
    Tensor ycm_t = Tensor::empty({c_out, rows_n}, xc.dtype());
    T* ycm = ycm_t.data<T>();
    for (std::int64_t gi = 0; gi < groups; ++gi) {
      cpu::GemmShape s;
      s.trans_b = true;
      s.m = og;
      s.n = rows_n;
      s.k = gk;
      s.lda = gk;
      s.ldb = width;
      s.ldc = rows_n;
      cpu::gemm(s, T(1), wc.data<T>() + gi * og * gk, cols.data<T>() + gi * gk, T(0), ycm + gi * og * rows_n);
    }
    channel_major_to_images<T>(ycm, bc.defined() ? bc.data<T>() : nullptr, n, l, c_out, y.data<T>());
  });

  const bool need_x = xc.requires_grad(), need_w = wc.requires_grad(), need_b = bc.defined() && bc.requires_grad();
  return record(y, "conv", {xc, wc, bc},
                [k, cols, w = wc.detach(), n, l, groups, cg, og, c_in, c_out, kv, need_x, need_w,
                 need_b](const Tensor& grad) {
    const std::int64_t rows_n = n * l, width = c_in * kv, gk = cg * kv;
    const Tensor gy = grad.contiguous();
    Tensor gx, gw, gb;
    dispatch_float(gy.dtype(), "conv backward", [&](auto tag) {
      using T = decltype(tag);
      Tensor dycm_t = Tensor::empty({c_out, rows_n}, gy.dtype());
      T* dycm = dycm_t.data<T>();
      images_to_channel_major<T>(gy.data<T>(), n, l, c_out, dycm);
      if (need_b) {
        gb = Tensor::empty({c_out}, gy.dtype());
        for (std::int64_t ch = 0; ch < c_out; ++ch)
          gb.data<T>()[ch] = static_cast<T>(sum_contiguous(dycm + ch * rows_n, rows_n));
      }
      if (need_w) {
        // dW_g [og, gk] = dY_g [og, N*L] · cols_g [N*L, gk]
        gw = Tensor::empty(w.shape(), gy.dtype());
        for (std::int64_t gi = 0; gi < groups; ++gi)
          gemm_split_k<T>(og, gk, rows_n, dycm + gi * og * rows_n, rows_n, cols.data<T>() + gi * gk, width,
                          gw.data<T>() + gi * og * gk);
      }
      if (need_x) {
        // dcolsᵀ_g [gk, N*L] = W_gᵀ · dY_g, then scatter-add into the image.
        Tensor dcols_t = Tensor::empty({width, rows_n}, gy.dtype());
        for (std::int64_t gi = 0; gi < groups; ++gi) {
          cpu::GemmShape s;
          s.trans_a = true;
          s.m = gk;
          s.n = rows_n;
          s.k = og;
          s.lda = gk;
          s.ldb = rows_n;
          s.ldc = rows_n;
          cpu::gemm(s, T(1), w.data<T>() + gi * og * gk, dycm + gi * og * rows_n, T(0),
                    dcols_t.data<T>() + gi * gk * rows_n);
        }
        Shape in_shape{n, c_in};
        for (int d = 0; d < k.spatial_dims; ++d) in_shape.push_back(k.input[d]);
        gx = Tensor::empty(in_shape, gy.dtype());
        cpu::col2im_transposed(k, n, dcols_t.data<T>(), gx.data<T>());
      }
    });
    return std::vector<Tensor>{gx, gw, gb};
  });
}

}  // namespace aimc

namespace aimc {

Tensor conv_transpose(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g,
                      const std::vector<std::int64_t>& output_padding) {
  // The adjoint of conv: each input position scatters weight-scaled kernels
  // into the output. As composed ops (a GEMM to patch columns, then col2im's
  // scatter-add), so autograd differentiates it through their backwards.
  check_image(x, "conv_transpose");
  op_device("conv_transpose", {x, weight, bias});
  const std::int64_t dims = x.dim() - 2, c_in = x.size(1);
  if (weight.dim() != x.dim() || weight.size(0) != c_in)
    throw ShapeError("conv_transpose: weight " + shape_str(weight.shape()) + " does not match input " +
                     shape_str(x.shape()) + " (expected [C_in, C_out, *kernel])");
  if (g.groups != 1) throw ConfigError("conv_transpose: groups " + std::to_string(g.groups) + " (supported: 1)");
  const std::int64_t c_out = weight.size(1);
  ConvGeometry geo = g;
  geo.kernel = spatial_of(weight.shape());
  auto per_dim = [dims](const std::vector<std::int64_t>& v, std::int64_t def) {
    return v.empty() ? std::vector<std::int64_t>(static_cast<std::size_t>(dims), def) : v;
  };
  geo.stride = per_dim(g.stride, 1);
  geo.padding = per_dim(g.padding, 0);
  geo.dilation = per_dim(g.dilation, 1);
  const std::vector<std::int64_t> op = per_dim(output_padding, 0);
  if (static_cast<std::int64_t>(geo.stride.size()) != dims || static_cast<std::int64_t>(geo.padding.size()) != dims ||
      static_cast<std::int64_t>(geo.dilation.size()) != dims || static_cast<std::int64_t>(op.size()) != dims)
    throw ShapeError("conv_transpose: stride, padding, dilation and output_padding need one value per spatial dim");
  std::vector<std::int64_t> out_size, order{0};
  for (std::int64_t d = 0; d < dims; ++d) {
    const auto i = static_cast<std::size_t>(d);
    if (op[i] < 0 || op[i] >= std::max(geo.stride[i], geo.dilation[i]))
      throw ShapeError("conv_transpose: output_padding " + list_str(op) + " must be below the stride or dilation");
    out_size.push_back((x.size(d + 2) - 1) * geo.stride[i] - 2 * geo.padding[i] + geo.dilation[i] * (geo.kernel[i] - 1) +
                       1 + op[i]);
    if (out_size.back() <= 0) throw ShapeError("conv_transpose: empty output along spatial dim " + std::to_string(d));
    order.push_back(d + 2);
  }
  order.push_back(1);
  // Rows [N * L, C_in] in im2col's row order; columns (c_out, k0, k1, k2) as im2col's.
  const Tensor rows = reshape(permute(x, order), {-1, c_in});
  const Tensor cols = matmul(rows, reshape(weight, {c_in, -1}));
  Tensor y = col2im(cols, c_out, out_size, geo);
  if (bias.defined()) {
    if (bias.dim() != 1 || bias.size(0) != c_out)
      throw ShapeError("conv_transpose: bias " + shape_str(bias.shape()) + " (expected [" + std::to_string(c_out) + "])");
    Shape bshape(static_cast<std::size_t>(x.dim()), 1);
    bshape[1] = c_out;
    y = add(y, reshape(bias, bshape));
  }
  return y;
}

}  // namespace aimc
