// im2col / col2im kernels (see im2col.h).
//
// 1-D and 2-D problems run as 3-D ones with leading unit dims. Zero padding
// is handled by working on a zero-padded copy of each input plane, so the
// inner loops have no bounds checks: every kernel row (k0, k1) of one output
// position is a run of k2 elements at a fixed offset in the padded plane.
// Runs of up to 7 contiguous elements use a compile-time length. col2im
// scatters from the transposed patch layout [C*K, L], so that its inner
// loops run over neighbouring output positions (contiguous, no overlap).
#include "kernels/cpu/im2col.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {
namespace {

// Geometry padded to 3 dims, with sizes of the zero-padded input plane.
struct Plan {
  std::int64_t in[3], pad[3], padded[3], out[3], k[3], stride[3], dil[3];
  std::int64_t channels = 0;
  std::int64_t in_plane = 1, padded_plane = 1, positions = 1, kvol = 1, row_len = 0;
  bool has_padding = false;
  std::vector<std::int64_t> kernel_rows;  // offset of kernel row (k0, k1) in the padded plane
};

Plan make_plan(const Im2colGeometry& g) {
  Plan p;
  const int shift = 3 - g.spatial_dims;
  for (int d = 0; d < 3; ++d) {
    const int s = d - shift;
    const bool used = s >= 0;
    p.in[d] = used ? g.input[s] : 1;
    p.pad[d] = used ? g.padding[s] : 0;
    p.out[d] = used ? g.output[s] : 1;
    p.k[d] = used ? g.kernel[s] : 1;
    p.stride[d] = used ? g.stride[s] : 1;
    p.dil[d] = used ? g.dilation[s] : 1;
    p.padded[d] = p.in[d] + 2 * p.pad[d];
    p.has_padding = p.has_padding || p.pad[d] > 0;
    p.in_plane *= p.in[d];
    p.padded_plane *= p.padded[d];
    p.positions *= p.out[d];
    p.kvol *= p.k[d];
  }
  p.channels = g.channels;
  p.row_len = p.channels * p.kvol;
  for (std::int64_t a = 0; a < p.k[0]; ++a)
    for (std::int64_t b = 0; b < p.k[1]; ++b)
      p.kernel_rows.push_back((a * p.dil[0] * p.padded[1] + b * p.dil[1]) * p.padded[2]);
  return p;
}

// Offset of output position (o0, o1, o2)'s window corner in the padded plane.
inline std::int64_t window_offset(const Plan& p, std::int64_t o0, std::int64_t o1, std::int64_t o2) {
  return ((o0 * p.stride[0]) * p.padded[1] + o1 * p.stride[1]) * p.padded[2] + o2 * p.stride[2];
}

// Copies plane `src` (sizes p.in) into the interior of zero-padded `dst`.
template <class T>
void pad_plane(const Plan& p, const T* src, T* dst) {
  std::fill(dst, dst + p.padded_plane, T(0));
  for (std::int64_t a = 0; a < p.in[0]; ++a)
    for (std::int64_t b = 0; b < p.in[1]; ++b) {
      const T* from = src + (a * p.in[1] + b) * p.in[2];
      T* to = dst + ((a + p.pad[0]) * p.padded[1] + b + p.pad[1]) * p.padded[2] + p.pad[2];
      std::copy(from, from + p.in[2], to);
    }
}

// Copies the interior of padded `src` to plane `dst` (sizes p.in).
template <class T>
void unpad_plane(const Plan& p, const T* src, T* dst) {
  for (std::int64_t a = 0; a < p.in[0]; ++a)
    for (std::int64_t b = 0; b < p.in[1]; ++b) {
      const T* from = src + ((a + p.pad[0]) * p.padded[1] + b + p.pad[1]) * p.padded[2] + p.pad[2];
      std::copy(from, from + p.in[2], dst + (a * p.in[1] + b) * p.in[2]);
    }
}

// Run of W elements (W > 0: compile-time length with unit dilation).
template <class T, int W>
inline void gather_run(T* __restrict dst, const T* __restrict src, std::int64_t len, std::int64_t dil) {
  if constexpr (W > 0) {
    std::memcpy(dst, src, W * sizeof(T));
  } else {
    for (std::int64_t k = 0; k < len; ++k) dst[k] = src[k * dil];
  }
}

// Rows [r0, r1) of cols from the (padded) planes.
template <class T, int W>
void im2col_rows(const Plan& p, const T* planes, T* cols, std::int64_t r0, std::int64_t r1) {
  const std::int64_t len = p.k[2], dil = p.dil[2];
  const std::int64_t nrows = static_cast<std::int64_t>(p.kernel_rows.size());
  const std::int64_t* krow = p.kernel_rows.data();
  std::int64_t n = r0 / p.positions, l = r0 % p.positions;
  std::int64_t o2 = l % p.out[2], o1 = (l / p.out[2]) % p.out[1], o0 = l / (p.out[2] * p.out[1]);
  for (std::int64_t r = r0; r < r1; ++r) {
    T* dst = cols + r * p.row_len;
    const std::int64_t corner = window_offset(p, o0, o1, o2);
    for (std::int64_t c = 0; c < p.channels; ++c) {
      const T* src = planes + (n * p.channels + c) * p.padded_plane + corner;
      for (std::int64_t j = 0; j < nrows; ++j, dst += len) gather_run<T, W>(dst, src + krow[j], len, dil);
    }
    if (++o2 == p.out[2]) {
      o2 = 0;
      if (++o1 == p.out[1]) {
        o1 = 0;
        if (++o0 == p.out[0]) {
          o0 = 0;
          ++n;
        }
      }
    }
  }
}

// Transposes one sample's rows [L, C*K] into `patches` [C*K, L], reading the
// rows sequentially (the strided reads of one channel's block would defeat
// the prefetchers).
template <class T>
void transpose_sample(const Plan& p, const T* __restrict rows, T* __restrict patches) {
  const std::int64_t len = p.positions, width = p.row_len;
  for (std::int64_t l = 0; l < len; ++l) {
    const T* row = rows + l * width;
    for (std::int64_t q = 0; q < width; ++q) patches[q * len + l] = row[q];
  }
}

// Scatter-adds one channel's patches into the zeroed padded plane: kernel
// offset q's values for the sample's positions are patches[q * kstride + l].
// For each kernel offset and output line the positions o2 update distinct
// elements, so the innermost loop is contiguous without overlapping updates.
template <class T>
void col2im_plane(const Plan& p, const T* __restrict patches, std::int64_t kstride, T* __restrict plane) {
  const std::int64_t len = p.k[2], dil = p.dil[2], step = p.stride[2], out2 = p.out[2];
  const std::int64_t nrows = static_cast<std::int64_t>(p.kernel_rows.size());
  for (std::int64_t j = 0; j < nrows; ++j)
    for (std::int64_t k = 0; k < len; ++k) {
      T* corner = plane + p.kernel_rows[static_cast<std::size_t>(j)] + k * dil;
      const T* s = patches + (j * len + k) * kstride;
      for (std::int64_t o0 = 0; o0 < p.out[0]; ++o0)
        for (std::int64_t o1 = 0; o1 < p.out[1]; ++o1, s += out2) {
          T* d = corner + window_offset(p, o0, o1, 0);
          if (step == 1) {
            for (std::int64_t o2 = 0; o2 < out2; ++o2) d[o2] += s[o2];
          } else {
            for (std::int64_t o2 = 0; o2 < out2; ++o2) d[o2 * step] += s[o2];
          }
        }
    }
}

// Writes plane q = n*C + c of the image from its channel's patches.
template <class T>
void col2im_one_plane(const Plan& p, const T* patches, std::int64_t kstride, T* scratch, T* dst) {
  T* plane = p.has_padding ? scratch : dst;
  std::fill(plane, plane + p.padded_plane, T(0));
  col2im_plane<T>(p, patches, kstride, plane);
  if (p.has_padding) unpad_plane(p, plane, dst);
}

// Calls f(std::integral_constant<int, W>) with W = the kernel run length for
// short unit-dilation runs, else W = 0 (runtime length).
template <class F>
void with_run_length(const Plan& p, F&& f) {
  if (p.dil[2] != 1) return f(std::integral_constant<int, 0>{});
  switch (p.k[2]) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}

template <class T>
void im2col_impl(const Im2colGeometry& g, std::int64_t batch, const T* image, T* cols) {
  const Plan p = make_plan(g);
  const std::int64_t rows = batch * p.positions;
  if (rows == 0 || p.row_len == 0) return;
  const std::int64_t planes = batch * p.channels;
  std::unique_ptr<T[]> padded;  // written in full by pad_plane
  const T* src = image;
  if (p.has_padding) {
    padded.reset(new T[static_cast<std::size_t>(planes * p.padded_plane)]);
    const std::int64_t grain = grain_for(planes, std::max<std::int64_t>(1, 16384 / p.padded_plane));
    parallel_for(0, planes, grain, [&](std::int64_t q0, std::int64_t q1) {
      for (std::int64_t q = q0; q < q1; ++q) pad_plane(p, image + q * p.in_plane, padded.get() + q * p.padded_plane);
    });
    src = padded.get();
  }
  const std::int64_t grain = grain_for(rows, std::max<std::int64_t>(1, 16384 / p.row_len));
  with_run_length(p, [&](auto w) {
    constexpr int W = decltype(w)::value;
    parallel_for(0, rows, grain, [&](std::int64_t r0, std::int64_t r1) { im2col_rows<T, W>(p, src, cols, r0, r1); });
  });
}

template <class T>
void col2im_impl(const Im2colGeometry& g, std::int64_t batch, const T* cols, T* image) {
  const Plan p = make_plan(g);
  if (batch == 0 || p.channels == 0 || p.in_plane == 0) return;
  // One chunk owns whole samples: it reads their rows once, in order,
  // transposes them and writes their C planes.
  const std::int64_t work = std::max<std::int64_t>(1, p.positions * p.row_len);
  const std::int64_t grain = grain_for(batch, std::max<std::int64_t>(1, 16384 / work));
  parallel_for(0, batch, grain, [&](std::int64_t n0, std::int64_t n1) {
    std::vector<T> patches(static_cast<std::size_t>(p.row_len * p.positions));
    std::vector<T> scratch(p.has_padding ? static_cast<std::size_t>(p.padded_plane) : 0);
    for (std::int64_t n = n0; n < n1; ++n) {
      transpose_sample(p, cols + n * p.positions * p.row_len, patches.data());
      for (std::int64_t c = 0; c < p.channels; ++c)
        col2im_one_plane(p, patches.data() + c * p.kvol * p.positions, p.positions, scratch.data(),
                         image + (n * p.channels + c) * p.in_plane);
    }
  });
}

template <class T>
void col2im_transposed_impl(const Im2colGeometry& g, std::int64_t batch, const T* cols_t, T* image) {
  const Plan p = make_plan(g);
  const std::int64_t planes = batch * p.channels;
  if (planes == 0 || p.in_plane == 0) return;
  const std::int64_t total = batch * p.positions;  // row length of cols_t
  const std::int64_t work = std::max<std::int64_t>(1, p.positions * p.kvol);
  const std::int64_t grain = grain_for(planes, std::max<std::int64_t>(1, 16384 / work));
  parallel_for(0, planes, grain, [&](std::int64_t q0, std::int64_t q1) {
    std::vector<T> scratch(p.has_padding ? static_cast<std::size_t>(p.padded_plane) : 0);
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t n = q / p.channels, c = q % p.channels;
      col2im_one_plane(p, cols_t + c * p.kvol * total + n * p.positions, total, scratch.data(),
                       image + q * p.in_plane);
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
void col2im_transposed(const Im2colGeometry& g, std::int64_t batch, const float* cols_t, float* image) {
  col2im_transposed_impl(g, batch, cols_t, image);
}
void col2im_transposed(const Im2colGeometry& g, std::int64_t batch, const double* cols_t, double* image) {
  col2im_transposed_impl(g, batch, cols_t, image);
}

}  // namespace aimc::cpu
