// Learning-rate schedules, stepped once per epoch (torch.optim.lr_scheduler
// semantics, closed forms). Construction records the optimizer's lr as the
// base lr at epoch 0; step() advances one epoch and sets the optimizer's lr.
#pragma once

#include <cstdint>

#include "layers/optim/optimizer.h"

namespace aimc {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  virtual ~LRScheduler() = default;

  void step();                            // epoch += 1, then apply
  void set_epoch(std::int64_t epoch);     // for resuming; applies the lr of that epoch
  std::int64_t epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  double lr() const { return lr_at(epoch_); }
  // The lr of a given epoch (pure function).
  virtual double lr_at(std::int64_t epoch) const = 0;

 private:
  Optimizer& optimizer_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

// lr = base_lr * gamma^floor(epoch / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);
  double lr_at(std::int64_t epoch) const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0);
  double lr_at(std::int64_t epoch) const override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

}  // namespace aimc
