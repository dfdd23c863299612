// Checkpoints: a model's state dict (and optionally its optimizer's state) in
// one safetensors file, with the model description in the metadata so the
// file alone is enough to rebuild and evaluate the model.
//
// Tensor names: the model's state_dict keys ("3.weight", "0.running_mean"),
// optimizer state under "optim." ("optim.0.momentum_buffer"). Metadata:
// "aimc.model" (the description JSON), "aimc.version", and with an optimizer
// "aimc.optimizer" ({"type": ..., "config": {...}} JSON).
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
  std::map<std::string, std::string> metadata;             // the raw file metadata
};

// Writes atomically (see write_safetensors); IoError on failure.
void save_checkpoint(const std::string& path, const Module& model, const nlohmann::json& description,
                     const Optimizer* optimizer = nullptr);

// Reads the file, rebuilds the model with build_model_from_description and loads
// its state (strict). A missing, garbled or inconsistent checkpoint throws
// IoError naming the path.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace aimc
