// AnalogSGD (aihwkit's AnalogSGD): SGD for every parameter that has a
// gradient, and the pulsed update for every tile that learns on its devices
// (TILE_CLASS_ANALOG, layers/devices/tile_device.h). Such a tile's weight has
// no gradient; its backward passes recorded the tile's input x and error d
// of the mini-batch, and step() hands them to the tile with the current
// learning rate (so schedules apply), then runs the tile's once-per-batch
// device steps (decay, diffusion, transfers). Momentum and weight decay act
// on the digital parameters only, as aihwkit.
#pragma once

#include <vector>

#include "layers/optim/sgd.h"

namespace aimc {

class AnalogTile;

class AnalogSGD : public SGD {
 public:
  // tiles: the model's analog tiles (Module::analog_tiles()); those without
  // a pulsed device are left to SGD like any parameter.
  AnalogSGD(std::vector<Tensor> params, std::vector<AnalogTile*> tiles, double lr, const SGDOptions& options = {});

  void step() override;
  // Also drops the (x, d) the tiles recorded since the last step.
  void zero_grad() override;
  std::string type_name() const override { return "AnalogSGD"; }

  // The tiles updated by pulses.
  const std::vector<AnalogTile*>& pulsed_tiles() const { return tiles_; }

 private:
  std::vector<AnalogTile*> tiles_;
};

}  // namespace aimc
