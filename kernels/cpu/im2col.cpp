// im2col / col2im kernels (see im2col.h). 1-D and 2-D problems run as 3-D
// ones with leading unit dims, so there is one loop nest per direction.
#include "kernels/cpu/im2col.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {
namespace {

// Valid kernel offsets [lo, hi) of one output coordinate: those whose input
// index base + k * dilation lies in [0, size).
struct Window {
  std::int64_t base = 0, lo = 0, hi = 0;
};

// Geometry padded to 3 dims (unused leading dims have size 1, kernel 1).
struct Geometry3 {
  std::int64_t in[3], out[3], k[3], dil[3];
  std::vector<Window> windows[3];  // one per output coordinate
};

Geometry3 expand(const Im2colGeometry& g) {
  Geometry3 e;
  const int shift = 3 - g.spatial_dims;
  for (int d = 0; d < 3; ++d) {
    const int s = d - shift;
    const bool used = s >= 0;
    e.in[d] = used ? g.input[s] : 1;
    e.out[d] = used ? g.output[s] : 1;
    e.k[d] = used ? g.kernel[s] : 1;
    e.dil[d] = used ? g.dilation[s] : 1;
    const std::int64_t stride = used ? g.stride[s] : 1;
    const std::int64_t pad = used ? g.padding[s] : 0;
    e.windows[d].resize(static_cast<std::size_t>(e.out[d]));
    for (std::int64_t o = 0; o < e.out[d]; ++o) {
      Window w;
      w.base = o * stride - pad;
      const std::int64_t dl = e.dil[d];
      w.lo = w.base >= 0 ? 0 : (-w.base + dl - 1) / dl;
      w.hi = e.in[d] > w.base ? (e.in[d] - w.base + dl - 1) / dl : 0;
      w.lo = std::min(w.lo, e.k[d]);
      w.hi = std::clamp(w.hi, w.lo, e.k[d]);
      e.windows[d][static_cast<std::size_t>(o)] = w;
    }
  }
  return e;
}

template <class T>
void im2col_impl(const Im2colGeometry& g, std::int64_t batch, const T* image, T* cols) {
  const Geometry3 e = expand(g);
  const std::int64_t channels = g.channels;
  const std::int64_t plane = e.in[0] * e.in[1] * e.in[2];
  const std::int64_t positions = e.out[0] * e.out[1] * e.out[2];
  const std::int64_t kvol = e.k[0] * e.k[1] * e.k[2];
  const std::int64_t row_len = channels * kvol;
  const std::int64_t rows = batch * positions;
  if (rows == 0 || row_len == 0) return;
  const std::int64_t k1k2 = e.k[1] * e.k[2], k2 = e.k[2];
  const std::int64_t d0 = e.dil[0], d1 = e.dil[1], d2 = e.dil[2];
  const std::int64_t in1 = e.in[1], in2 = e.in[2];
  const std::int64_t grain = grain_for(rows, std::max<std::int64_t>(1, 16384 / row_len));
  parallel_for(0, rows, grain, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t n = r / positions, l = r % positions;
      const Window& w0 = e.windows[0][static_cast<std::size_t>(l / (e.out[1] * e.out[2]))];
      const Window& w1 = e.windows[1][static_cast<std::size_t>((l / e.out[2]) % e.out[1])];
      const Window& w2 = e.windows[2][static_cast<std::size_t>(l % e.out[2])];
      T* dst = cols + r * row_len;
      for (std::int64_t c = 0; c < channels; ++c) {
        const T* src = image + (n * channels + c) * plane;
        for (std::int64_t a = 0; a < e.k[0]; ++a) {
          if (a < w0.lo || a >= w0.hi) {
            std::fill(dst, dst + k1k2, T(0));
            dst += k1k2;
            continue;
          }
          const std::int64_t i0 = w0.base + a * d0;
          for (std::int64_t b = 0; b < e.k[1]; ++b, dst += k2) {
            if (b < w1.lo || b >= w1.hi) {
              std::fill(dst, dst + k2, T(0));
              continue;
            }
            const std::int64_t i1 = w1.base + b * d1;
            // Input index of kernel offset k is line + k * d2 (valid for k in [lo, hi)).
            const std::int64_t line = (i0 * in1 + i1) * in2 + w2.base;
            for (std::int64_t k = 0; k < w2.lo; ++k) dst[k] = T(0);
            if (d2 == 1) {
              const T* from = src + (line + w2.lo);
              T* to = dst + w2.lo;
              for (std::int64_t k = 0; k < w2.hi - w2.lo; ++k) to[k] = from[k];
            } else {
              for (std::int64_t k = w2.lo; k < w2.hi; ++k) dst[k] = src[line + k * d2];
            }
            for (std::int64_t k = w2.hi; k < k2; ++k) dst[k] = T(0);
          }
        }
      }
    }
  });
}

template <class T>
void col2im_impl(const Im2colGeometry& g, std::int64_t batch, const T* cols, T* image) {
  const Geometry3 e = expand(g);
  const std::int64_t channels = g.channels;
  const std::int64_t plane = e.in[0] * e.in[1] * e.in[2];
  const std::int64_t positions = e.out[0] * e.out[1] * e.out[2];
  const std::int64_t kvol = e.k[0] * e.k[1] * e.k[2];
  const std::int64_t row_len = channels * kvol;
  const std::int64_t planes = batch * channels;
  if (planes == 0 || plane == 0) return;
  const std::int64_t k1k2 = e.k[1] * e.k[2], k2 = e.k[2];
  const std::int64_t d0 = e.dil[0], d1 = e.dil[1], d2 = e.dil[2];
  const std::int64_t in1 = e.in[1], in2 = e.in[2];
  const std::int64_t work = std::max<std::int64_t>(1, positions * kvol);
  const std::int64_t grain = grain_for(planes, std::max<std::int64_t>(1, 16384 / work));
  parallel_for(0, planes, grain, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const std::int64_t n = p / channels, c = p % channels;
      T* dst = image + p * plane;
      std::fill(dst, dst + plane, T(0));
      const T* src_row = cols + n * positions * row_len + c * kvol;
      for (std::int64_t o0 = 0; o0 < e.out[0]; ++o0) {
        const Window& w0 = e.windows[0][static_cast<std::size_t>(o0)];
        for (std::int64_t o1 = 0; o1 < e.out[1]; ++o1) {
          const Window& w1 = e.windows[1][static_cast<std::size_t>(o1)];
          for (std::int64_t o2 = 0; o2 < e.out[2]; ++o2, src_row += row_len) {
            const Window& w2 = e.windows[2][static_cast<std::size_t>(o2)];
            for (std::int64_t a = w0.lo; a < w0.hi; ++a) {
              const std::int64_t i0 = w0.base + a * d0;
              for (std::int64_t b = w1.lo; b < w1.hi; ++b) {
                const std::int64_t i1 = w1.base + b * d1;
                const std::int64_t line = (i0 * in1 + i1) * in2 + w2.base;
                const T* s = src_row + a * k1k2 + b * k2;
                if (d2 == 1) {
                  T* to = dst + (line + w2.lo);
                  const T* from = s + w2.lo;
                  for (std::int64_t k = 0; k < w2.hi - w2.lo; ++k) to[k] += from[k];
                } else {
                  for (std::int64_t k = w2.lo; k < w2.hi; ++k) dst[line + k * d2] += s[k];
                }
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace

void im2col(const Im2colGeometry& g, std::int64_t batch, const float* image, float* cols) {
  im2col_impl(g, batch, image, cols);
}
void im2col(const Im2colGeometry& g, std::int64_t batch, const double* image, double* cols) {
  im2col_impl(g, batch, image, cols);
}
void col2im(const Im2colGeometry& g, std::int64_t batch, const float* cols, float* image) {
  col2im_impl(g, batch, cols, image);
}
void col2im(const Im2colGeometry& g, std::int64_t batch, const double* cols, double* image) {
  col2im_impl(g, batch, cols, image);
}

}  // namespace aimc::cpu
