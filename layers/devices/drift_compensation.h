// DriftCompensation (REFERENCE.md section 5, aihwkit's
// inference/compensation): a tile is read with one-hot inputs (the identity
// batch) through its non-ideal forward; the readout of those outputs
// Y [in, out] is kept as a baseline at programming, and after each drift the
// eval-mode outputs are multiplied by alpha = baseline / readout(now).
//   GlobalDriftCompensation                     m = max(mean |Y|, 1e-4), one value
//   GlobalDriftCompensationWithExactReference   the same, baseline read from
//                                               the target weights
//   PerColumnDriftCompensation                  m_j = max(mean_i |Y_ij|, 1e-4)
// Plug-ins by type name, as the noise models.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc {

class DriftCompensation {
 public:
  virtual ~DriftCompensation() = default;
  virtual std::string type() const = 0;
  nlohmann::json to_json() const { return nlohmann::json{{"type", type()}}; }
  // Size of the readout for a tile with `out` outputs (1 or out).
  virtual std::int64_t readout_size(std::int64_t out) const = 0;
  // readout(Y) for the outputs Y [in, out] of the identity batch.
  std::vector<float> readout(const float* y, std::int64_t in, std::int64_t out) const;
  // The same from sums[j] = Σ_i |Y_ij| (double, rows in order): what a GPU
  // tile computes there (cuda::column_abs_sums) and copies back, out values.
  virtual std::vector<float> readout_from_sums(const std::vector<double>& sums, std::int64_t in,
                                               std::int64_t out) const = 0;
  // The baseline is read from the target (ideal) weights, not the programmed ones.
  virtual bool exact_reference() const { return false; }
};

using DriftCompensationFactory = std::function<std::shared_ptr<DriftCompensation>(const nlohmann::json& j,
                                                                                  const std::string& where)>;

// {"type": name}; null gives nullptr (no compensation). ConfigError naming
// `where` for an unknown type or an unknown field.
std::shared_ptr<DriftCompensation> make_drift_compensation(const nlohmann::json& j,
                                                           const std::string& where = "drift_compensation");
void register_drift_compensation(const std::string& type, DriftCompensationFactory factory);
std::vector<std::string> drift_compensation_types();

}  // namespace aimc
