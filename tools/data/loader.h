// Mini-batch loader: shuffles the sample order once per epoch with a
// Generator stream and copies each batch's samples into contiguous tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/generator.h"
#include "tools/data/idx.h"

namespace aimc::data {

struct Batch {
  Tensor images;  // [B, 1, H, W]
  Tensor labels;  // [B] int32
};

class BatchLoader {
 public:
  // shuffle: permute per epoch with gen (seed, stream) and the epoch number.
  BatchLoader(const Dataset& data, std::int64_t batch_size, bool shuffle, Generator gen = Generator(0, 0));

  // Starts an epoch: a fresh permutation from stream (gen.stream, epoch).
  void start_epoch(std::int64_t epoch);
  std::int64_t num_batches() const;
  // Batch i of the current epoch (the last may be smaller).
  Batch batch(std::int64_t i) const;

 private:
  Dataset data_;
  std::int64_t batch_size_;
  bool shuffle_;
  Generator gen_;
  std::vector<std::int64_t> order_;
};

}  // namespace aimc::data
