// AnalogSGD (see analog_sgd.h).
#include "layers/optim/analog_sgd.h"

#include "engine/autograd.h"
#include "layers/tiles/analog_tile.h"

namespace aimc {

AnalogSGD::AnalogSGD(std::vector<Tensor> params, std::vector<AnalogTile*> tiles, double lr,
                     const SGDOptions& options)
    : SGD(std::move(params), lr, options) {
  for (AnalogTile* t : tiles)
    if (t != nullptr && t->pulsed()) tiles_.push_back(t);
}

void AnalogSGD::step() {
  SGD::step();
  NoGradGuard no_grad;
  for (AnalogTile* t : tiles_) t->apply_updates(static_cast<float>(lr()));
}

void AnalogSGD::zero_grad() {
  SGD::zero_grad();
  for (AnalogTile* t : tiles_) t->clear_updates();
}

}  // namespace aimc
