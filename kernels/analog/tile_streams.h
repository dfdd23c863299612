// The random streams of one analog tile. Every draw a tile makes is a pure
// function of (chip seed, stream, counter) (kernels/random.h, Philox), with
// stream = tile_id · kStreamsPerTile + purpose, so tiles never share numbers,
// the CPU and CUDA draw the same ones, and the counters (saved with the
// model) say exactly where a restored tile continues.
#pragma once

#include <cstdint>

#include "kernels/random.h"

namespace aimc::analog {

enum class TileStream : std::uint64_t {
  Forward = 0,   // forward-pass noise (DAC, ADC, output and weight noise)
  Backward = 1,  // backward-pass noise
  // Values drawn once per chip: per-line nonlinearity, noise and offsets
  // (forward lines from block 0, backward lines from 2^40), read-asymmetry
  // matrices (forward from 2·2^40, backward from 3·2^40).
  LineValues = 2,
  WeightModifier = 3,  // hardware-aware training's weight noise
  Programming = 4,     // programming noise and drift exponents (InferenceRPUConfig tiles)
  // TorchInferenceRPUConfig tiles are never programmed: their output noise
  // uses the programming purpose.
  LightningOutputNoise = 4,
  Drift = 5,  // read noise at each drift
  // Pulsed training (TILE_CLASS_ANALOG tiles, layers/tiles/tile_device.h):
  DeviceValues = 6,    // device-to-device values drawn once per chip (bounds, step sizes, ...)
  UpdatePulses = 7,    // the stochastic pulse trains of each update
  UpdateNoise = 8,     // cycle-to-cycle noise of each pulse
  PostUpdate = 9,      // per mini-batch: diffusion, reset and device-drift noise
  // Compound devices (layers/devices/compound/):
  CompoundChoice = 10,  // random choices: a VectorUnitCell's device, a transfer's column
  TransferRead = 11,    // the analog reads of transfers and refreshes (per-line values from 2^40)
};

constexpr std::uint64_t kStreamsPerTile = 16;

AIMC_HD constexpr std::uint64_t tile_stream(std::uint64_t tile_id, TileStream purpose) {
  return tile_id * kStreamsPerTile + static_cast<std::uint64_t>(purpose);
}

}  // namespace aimc::analog
