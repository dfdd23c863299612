// VectorUnitCell and ReferenceUnitCell (see vector_unit_cell.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/devices/compound/compound_device.h"

namespace aimc {

// aihwkit's VectorUnitCellUpdatePolicy.
enum class VectorUpdatePolicy { All, SingleFixed, SingleSequential, SingleRandom };
// "ALL", "SINGLE_FIXED", "SINGLE_SEQUENTIAL", "SINGLE_RANDOM".
const char* to_string(VectorUpdatePolicy policy);

struct VectorUnitCellParameter {
  int construction_seed = 0;  // aihwkit's; aimc draws from the chip seed (accepted, unused)
  VectorUpdatePolicy update_policy = VectorUpdatePolicy::All;
  int first_update_idx = 0;
  std::vector<float> gamma_vec;  // empty: 1/n each
};

class VectorUnitCellModel : public CompoundDeviceModel {
 public:
  VectorUnitCellModel(std::string type, VectorUnitCellParameter p, compound::Models devices);
  std::string type() const override { return type_; }
  nlohmann::json to_json() const override;
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;
  const VectorUnitCellParameter& parameter() const { return p_; }
  const compound::Models& devices() const { return devices_; }
  // The weights γ_k of W = Σ γ_k·W_k.
  std::vector<float> gamma() const;

 private:
  std::string type_;
  VectorUnitCellParameter p_;
  compound::Models devices_;
};

// Reads a VectorUnitCell-like cell of `type` whose fields default to p;
// exact_devices > 0 cuts or repeats unit_cell_devices to that many.
std::shared_ptr<const DeviceModel> make_vector_like(const char* type, VectorUnitCellParameter p,
                                                    const nlohmann::json& j, const std::string& where,
                                                    std::size_t exact_devices);

}  // namespace aimc
