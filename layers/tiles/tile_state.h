// TileState: a tile's running state as named, typed tensors (one per
// quantity) that its owner registers as buffers, "<tile>_<name>", so that a
// checkpoint restores the tile exactly. Entries keep their order of addition
// (the state dict's order). A tile keeps the Tensor handles add() returns:
// they share storage with the entries, and loading a state dict copies into
// that storage, so the handles stay valid. New quantities (a device's hidden
// parameters, say) are new entries; no positions to keep in step. Entries
// are added while the tile is built: its layer registers them once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace aimc {

class TileState {
 public:
  using Entries = std::vector<std::pair<std::string, Tensor>>;

  // Adds `value` under `name` (unique in this state) and returns a handle sharing its storage.
  Tensor add(const std::string& name, Tensor value) {
    if (find(name) != nullptr) throw ValueError("TileState: entry '" + name + "' added twice");
    entries_.emplace_back(name, value);
    return value;
  }
  // The entry `name`, or nullptr.
  const Tensor* find(const std::string& name) const {
    for (const auto& [n, t] : entries_)
      if (n == name) return &t;
    return nullptr;
  }
  const Entries& entries() const { return entries_; }

 private:
  Entries entries_;
};

// One scalar of a state entry, wherever Module::to put it (a GPU entry is
// read or written by one small copy, never through a host pointer).
template <class T>
T read_state_scalar(const Tensor& t) {
  if (t.device().is_cpu()) return *t.data<T>();
  return *t.to(Device::cpu()).template data<T>();
}
template <class T>
void write_state_scalar(Tensor& t, T v) {
  if (t.device().is_cpu()) {
    *t.data<T>() = v;
    return;
  }
  Tensor host = Tensor::empty(t.shape(), t.dtype());
  *host.data<T>() = v;
  t.copy_(host);
}

}  // namespace aimc
