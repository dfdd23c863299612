// ReferenceUnitCell (aihwkit's, a VectorUnitCell): two devices, W = W_0 − W_1
// (gamma_vec [1, −1]); only device 0 learns (SINGLE_FIXED), device 1 is the
// reference. More devices are cut to the first two; one is duplicated.
#include "layers/devices/compound/vector_unit_cell.h"

namespace aimc {

std::shared_ptr<const DeviceModel> make_reference_unit_cell(const nlohmann::json& j, const std::string& where) {
  VectorUnitCellParameter p;
  p.update_policy = VectorUpdatePolicy::SingleFixed;
  p.gamma_vec = {1.f, -1.f};
  return make_vector_like("ReferenceUnitCell", p, j, where, 2);
}

}  // namespace aimc
