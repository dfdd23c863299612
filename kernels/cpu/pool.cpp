// Pooling kernels (see pool.h). 1-D and 2-D problems run as 3-D ones with
// leading unit dims; windows are clipped to the input once per call.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {
namespace {

struct Span {
  std::int64_t begin = 0, end = 0;  // input indices [begin, end) of one window
};

struct Pool3 {
  std::int64_t in[3], out[3];
  std::int64_t in_plane = 1, out_plane = 1, kernel_volume = 1;
  std::vector<Span> spans[3];
};

Pool3 expand(const PoolGeometry& g) {
  Pool3 e;
  const int shift = 3 - g.spatial_dims;
  for (int d = 0; d < 3; ++d) {
    const int s = d - shift;
    const bool used = s >= 0;
    e.in[d] = used ? g.input[s] : 1;
    e.out[d] = used ? g.output[s] : 1;
    const std::int64_t k = used ? g.kernel[s] : 1, st = used ? g.stride[s] : 1, p = used ? g.padding[s] : 0;
    e.in_plane *= e.in[d];
    e.out_plane *= e.out[d];
    e.kernel_volume *= k;
    e.spans[d].resize(static_cast<std::size_t>(e.out[d]));
    for (std::int64_t o = 0; o < e.out[d]; ++o) {
      const std::int64_t start = o * st - p;
      e.spans[d][static_cast<std::size_t>(o)] = {std::max<std::int64_t>(start, 0),
                                                  std::min<std::int64_t>(start + k, e.in[d])};
    }
  }
  return e;
}

// Calls f(plane, out_index, span0, span1, span2) for every output element,
// planes split in parallel, each plane's outputs in row-major order.
template <class F>
void for_each_window(const Pool3& e, std::int64_t planes, F&& f) {
  const std::int64_t work = std::max<std::int64_t>(1, e.out_plane * e.kernel_volume);
  const std::int64_t grain = grain_for(planes, std::max<std::int64_t>(1, 16384 / work));
  parallel_for(0, planes, grain, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      std::int64_t o = 0;
      for (const Span& a : e.spans[0])
        for (const Span& b : e.spans[1])
          for (const Span& c : e.spans[2]) f(p, o++, a, b, c);
    }
  });
}

template <class T>
void max_forward(const PoolGeometry& g, std::int64_t planes, const T* x, T* y, std::int64_t* argmax) {
  const Pool3 e = expand(g);
  for_each_window(e, planes, [&](std::int64_t p, std::int64_t o, const Span& a, const Span& b, const Span& c) {
    const T* src = x + p * e.in_plane;
    T best = -std::numeric_limits<T>::infinity();
    std::int64_t best_index = (a.begin * e.in[1] + b.begin) * e.in[2] + c.begin;
    for (std::int64_t i0 = a.begin; i0 < a.end; ++i0)
      for (std::int64_t i1 = b.begin; i1 < b.end; ++i1) {
        const std::int64_t line = (i0 * e.in[1] + i1) * e.in[2];
        for (std::int64_t i2 = c.begin; i2 < c.end; ++i2) {
          const T v = src[line + i2];
          if (v > best || std::isnan(v)) {
            best = v;
            best_index = line + i2;
          }
        }
      }
    y[p * e.out_plane + o] = best;
    argmax[p * e.out_plane + o] = best_index;
  });
}

template <class T>
void max_backward(const PoolGeometry& g, std::int64_t planes, const T* grad_y, const std::int64_t* argmax,
                  T* grad_x) {
  const Pool3 e = expand(g);
  const std::int64_t grain = grain_for(planes, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, e.in_plane)));
  parallel_for(0, planes, grain, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      T* dst = grad_x + p * e.in_plane;
      std::fill(dst, dst + e.in_plane, T(0));
      const T* gy = grad_y + p * e.out_plane;
      const std::int64_t* idx = argmax + p * e.out_plane;
      for (std::int64_t o = 0; o < e.out_plane; ++o) dst[idx[o]] += gy[o];
    }
  });
}

template <class T>
void avg_forward(const PoolGeometry& g, std::int64_t planes, const T* x, T* y) {
  const Pool3 e = expand(g);
  const T scale = T(1) / static_cast<T>(e.kernel_volume);
  for_each_window(e, planes, [&](std::int64_t p, std::int64_t o, const Span& a, const Span& b, const Span& c) {
    const T* src = x + p * e.in_plane;
    T total = 0;
    for (std::int64_t i0 = a.begin; i0 < a.end; ++i0)
      for (std::int64_t i1 = b.begin; i1 < b.end; ++i1) {
        const T* line = src + (i0 * e.in[1] + i1) * e.in[2];
        for (std::int64_t i2 = c.begin; i2 < c.end; ++i2) total += line[i2];
      }
    y[p * e.out_plane + o] = total * scale;
  });
}

template <class T>
void avg_backward(const PoolGeometry& g, std::int64_t planes, const T* grad_y, T* grad_x) {
  const Pool3 e = expand(g);
  const T scale = T(1) / static_cast<T>(e.kernel_volume);
  // Zero each plane before its first window adds to it (same chunking as the
  // window loop, so one chunk owns a plane throughout).
  for_each_window(e, planes, [&](std::int64_t p, std::int64_t o, const Span& a, const Span& b, const Span& c) {
    T* dst = grad_x + p * e.in_plane;
    if (o == 0) std::fill(dst, dst + e.in_plane, T(0));
    const T v = grad_y[p * e.out_plane + o] * scale;
    for (std::int64_t i0 = a.begin; i0 < a.end; ++i0)
      for (std::int64_t i1 = b.begin; i1 < b.end; ++i1) {
        T* line = dst + (i0 * e.in[1] + i1) * e.in[2];
        for (std::int64_t i2 = c.begin; i2 < c.end; ++i2) line[i2] += v;
      }
  });
}

}  // namespace

void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y, std::int64_t* argmax) {
  max_forward(g, planes, x, y, argmax);
}
void max_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y,
                      std::int64_t* argmax) {
  max_forward(g, planes, x, y, argmax);
}
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y, const std::int64_t* argmax,
                       float* grad_x) {
  max_backward(g, planes, grad_y, argmax, grad_x);
}
void max_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y,
                       const std::int64_t* argmax, double* grad_x) {
  max_backward(g, planes, grad_y, argmax, grad_x);
}
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const float* x, float* y) {
  avg_forward(g, planes, x, y);
}
void avg_pool_forward(const PoolGeometry& g, std::int64_t planes, const double* x, double* y) {
  avg_forward(g, planes, x, y);
}
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const float* grad_y, float* grad_x) {
  avg_backward(g, planes, grad_y, grad_x);
}
void avg_pool_backward(const PoolGeometry& g, std::int64_t planes, const double* grad_y, double* grad_x) {
  avg_backward(g, planes, grad_y, grad_x);
}

}  // namespace aimc::cpu
