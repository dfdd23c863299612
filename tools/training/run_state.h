// Where a training run stands, as saved in a checkpoint's "aimc.training"
// metadata, so that `aimc train --resume` continues it bit for bit: the
// options that shape the result, the epoch in progress, the position in it
// and the steps done. The model, its tiles' random-stream counters and the
// optimizer state are the checkpoint's tensors; the data order needs no
// state (each epoch's permutation is drawn from the seed and the epoch
// number alone, tools/data/loader.h).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "tools/training/trainer.h"

namespace aimc::training {

struct RunState {
  TrainOptions options;             // as the run was started (lr resolved, seed included)
  bool eval_each_epoch = false;     // evaluations draw from the tiles' streams, so they shape the result
  std::int64_t checkpoint_every = 0;  // the run's --checkpoint-every (0: none), the default on resume
  std::int64_t epoch = 0;           // the epoch in progress, 0-based; options.epochs when finished
  EpochPosition position;           // within that epoch
  std::int64_t global_step = 0;     // optimizer steps since the run began
  nlohmann::json history = nlohmann::json::array();  // the finished epochs' entries ({"epoch", "lr", ...})
};

// The "aimc.training" JSON ({"format": 1, ...}).
nlohmann::json run_state_to_json(const RunState& state);

// Reads and checks it (untrusted file content): ValueError naming the field
// and what it must be, for a missing field, a wrong type or a value out of
// range (epochs and batch size as the CLI allows, the epoch in [0, epochs],
// counts >= 0, the loss sum finite and >= 0).
RunState run_state_from_json(const nlohmann::json& json);

}  // namespace aimc::training
