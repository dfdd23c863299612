// Learning-rate schedules (see lr_scheduler.h).
#include "layers/optim/lr_scheduler.h"

#include <cmath>
#include <numbers>
#include <string>

namespace aimc {

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

void LRScheduler::step() { set_epoch(epoch_ + 1); }

void LRScheduler::set_epoch(std::int64_t epoch) {
  if (epoch < 0) throw ValueError("LRScheduler: epoch must be >= 0, got " + std::to_string(epoch));
  epoch_ = epoch;
  optimizer_.set_lr(lr_at(epoch_));
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) throw ConfigError("StepLR: step_size must be >= 1, got " + std::to_string(step_size));
  if (!(gamma > 0)) throw ConfigError("StepLR: gamma must be > 0, got " + std::to_string(gamma));
}

double StepLR::lr_at(std::int64_t epoch) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max < 1) throw ConfigError("CosineAnnealingLR: T_max must be >= 1, got " + std::to_string(t_max));
  if (!(eta_min >= 0)) throw ConfigError("CosineAnnealingLR: eta_min must be >= 0, got " + std::to_string(eta_min));
}

double CosineAnnealingLR::lr_at(std::int64_t epoch) const {
  const double phase = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr() - eta_min_) * (1.0 + std::cos(phase)) / 2.0;
}

}  // namespace aimc
