// The transfer family of compounds (aihwkit's TransferCompound and its
// buffered and chopped variants): the shared fields, the model and the tile
// device whose transfer step the variants replace. See transfer_compound.cpp
// (Tiki-Taka), buffered_transfer_compound.cpp (TTv2),
// chopped_transfer_compound.cpp (TTv3 / c-TTv2).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/analog/io_parameters.h"
#include "layers/config/update_parameters.h"
#include "layers/devices/compound/compound_device.h"

namespace aimc {

struct TransferParameter {
  int construction_seed = 0;  // accepted, unused (aimc draws from the chip seed)
  float gamma = 0.f;
  std::vector<float> gamma_vec;
  float transfer_every = 1.f;
  bool no_self_transfer = true;
  std::vector<float> transfer_every_vec;
  bool units_in_mbatch = true;
  int n_reads_per_transfer = 1;
  bool transfer_columns = true;
  float with_reset_prob = 0.f;
  bool random_selection = false;
  float fast_lr = 1.f;
  float transfer_lr = 1.f;
  std::vector<float> transfer_lr_vec;
  bool scale_transfer_lr = true;
  IOParameters transfer_forward;
  UpdateParameters transfer_update;

  void read(config::ObjectReader& r);
  void write(nlohmann::json& j) const;
  // n devices; negative_every: transfer_every < 0 allowed (automatic, chopped).
  void validate(const std::string& where, std::size_t n, bool negative_every) const;
};

// aihwkit's BufferedTransferCompound / ChoppedTransferCompound transfer_update
// default: one pulse at most (desired_bl 1), no update or BL management.
UpdateParameters single_pulse_update_parameters();

class TransferTileDevice;

class TransferCompoundModel : public CompoundDeviceModel {
 public:
  TransferCompoundModel(std::string type, TransferParameter p, compound::Models devices)
      : type_(std::move(type)), p_(std::move(p)), devices_(std::move(devices)) {}
  std::string type() const override { return type_; }
  const TransferParameter& parameter() const { return p_; }
  // unit_cell_devices[0], then unit_cell_devices[1] for every other (as aihwkit).
  compound::Models devices() const;
  // The weight granularity of sub-device k (pulsed devices; 0 otherwise).
  float granularity(std::size_t k) const;
  nlohmann::json to_json() const override;
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 protected:
  // A variant's own fields.
  virtual void write_own(nlohmann::json& j) const { (void)j; }

 private:
  std::string type_;
  TransferParameter p_;
  compound::Models devices_;
};

class TransferTileDevice : public TileDevice {
 public:
  TransferTileDevice(std::shared_ptr<const TransferCompoundModel> model, const TileDeviceContext& ctx);

  void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) override;
  void post_update(float* w, std::uint64_t seed) override;
  void weights_set(float* w) override;
  void reseed(std::uint64_t seed) override;

 protected:
  // The SGD pulses of rows [0, rows) onto the fast device (between transfers).
  virtual void pulse_fast(const float* x, const float* d, std::int64_t rows, float sgd_lr, std::uint64_t seed);
  // Samples between transfers out of device k for a mini-batch of m_batch rows (0: never).
  virtual std::int64_t transfer_every(std::size_t k, std::int64_t m_batch) const;
  // Reads the columns first .. first + n_reads − 1 of device `from` and
  // updates device `to` with transfer lr `lr`.
  virtual void read_and_update(std::size_t to, std::size_t from, std::int64_t first, float lr, std::uint64_t seed);
  // A variant's state after a reseed.
  virtual void reset_state() {}

  std::shared_ptr<const TransferCompoundModel> model_;
  const TransferParameter& p_;
  std::size_t n_;
  compound::SubDevices subs_;
  compound::Streams streams_;
  std::int64_t out_, in_, n_reads_ = 1;
  std::vector<float> gamma_, every_, lr_vec_;
  compound::AnalogReader reader_;
  Tensor update_count_, slices_, choices_;
  float sgd_lr_ = 0.f;  // the learning rate of the update in progress

 private:
  std::vector<analog::UpdatePulseParams> updates(const TileDeviceContext& ctx) const;
  void transfer(std::size_t to, std::size_t from, float sgd_lr, std::uint64_t seed);
};

}  // namespace aimc
