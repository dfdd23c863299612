// Checkpoints: a model's state dict (and optionally its optimizer's state) in
// one safetensors file, with the model description in the metadata so the
// file alone is enough to rebuild and evaluate the model.
//
// Tensor names: the model's state_dict keys ("3.weight", "0.running_mean"),
// optimizer state under "optim." ("optim.0.momentum_buffer"). Metadata:
// "aimc.model" (the description JSON), "aimc.version", with an optimizer
// "aimc.optimizer" ({"type": ..., "config": {...}} JSON) and, in checkpoints
// `aimc train` can resume, "aimc.training" (where the run stands and the
// options it cannot change; tools/training/run_state.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/module.h"

namespace aimc {

class Optimizer;

struct Checkpoint {
  std::shared_ptr<Module> model;
  nlohmann::json description;                              // {"model": name, ...}
  std::vector<std::pair<std::string, Tensor>> optimizer_state;  // "optim." stripped; empty if none
  nlohmann::json optimizer;                                // {"type", "config"} or null
  nlohmann::json training_state;                           // "aimc.training" JSON or null
  std::map<std::string, std::string> metadata;             // the raw file metadata
};

// Writes atomically (see write_safetensors); IoError on failure.
// training_state, when not null, becomes the "aimc.training" metadata.
void save_checkpoint(const std::string& path, const Module& model, const nlohmann::json& description,
                     const Optimizer* optimizer = nullptr, const nlohmann::json& training_state = nullptr);

// Reads the file, rebuilds the model with build_model_from_description and loads
// its state (strict). A missing, garbled or inconsistent checkpoint throws
// IoError naming the path.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace aimc
