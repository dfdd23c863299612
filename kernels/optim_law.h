// Per-element optimizer updates shared by the CPU loops (layers/optim/sgd.cpp,
// adam.cpp) and their CUDA kernels (kernels/cuda/optim.cu): one formula for
// both. The compilers may fuse multiply-adds differently (the CPU build uses
// -march=native), so the two agree within a rounding per operation, not bit
// for bit.
#pragma once

#include <cmath>

#include "kernels/random.h"  // AIMC_HD

namespace aimc::optim {

// torch.optim.SGD (layers/optim/sgd.h), in the parameter's float type.
template <class T>
struct SgdCoefficients {
  T lr, weight_decay, momentum;
  T damp;              // 1 - dampening
  bool use_momentum;   // momentum != 0: b is the momentum buffer
  bool first;          // the buffer's first step: b = g
  bool nesterov;
};

// One element: w -= lr * (g + wd·w, through the momentum buffer b).
template <class T>
AIMC_HD void sgd_element(const SgdCoefficients<T>& c, T g, T& w, T* b) {
  T d = g;
  if (c.weight_decay != 0) d += c.weight_decay * w;
  if (c.use_momentum) {
    *b = c.first ? d : c.momentum * *b + c.damp * d;
    d = c.nesterov ? d + c.momentum * *b : *b;
  }
  w -= c.lr * d;
}

// Constants of one Adam step (layers/optim/adam.h), in the parameter's float type.
template <class T>
struct AdamCoefficients {
  T beta1, beta2, weight_decay, eps;
  T step_size;   // lr / (1 - beta1^t)
  T bias2_root;  // sqrt(1 - beta2^t)
};

template <class T>
AIMC_HD T optim_sqrt(T x) {
  if constexpr (sizeof(T) == sizeof(float))
    return sqrtf(x);
  else
    return sqrt(x);
}

// One element of Adam: moments m, v and the weight w.
template <class T>
AIMC_HD void adam_element(const AdamCoefficients<T>& c, T g, T& w, T& m, T& v) {
  T d = g;
  if (c.weight_decay != 0) d += c.weight_decay * w;
  const T mk = c.beta1 * m + (1 - c.beta1) * d;
  const T vk = c.beta2 * v + (1 - c.beta2) * d * d;
  m = mk;
  v = vk;
  w -= c.step_size * (mk / (optim_sqrt(vk) / c.bias2_root + c.eps));
}

}  // namespace aimc::optim
