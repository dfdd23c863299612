// Mini-batch loader (see loader.h).
#include "tools/data/loader.h"

#include <cstring>

#include "engine/error.h"

namespace aimc::data {

BatchLoader::BatchLoader(const Dataset& data, std::int64_t batch_size, bool shuffle, Generator gen)
    : data_(Dataset{data.images.contiguous(), data.labels.contiguous()}),
      batch_size_(batch_size),
      shuffle_(shuffle),
      gen_(gen) {
  if (batch_size < 1) throw ConfigError("batch size must be >= 1, got " + std::to_string(batch_size));
  if (!data_.images.defined() || !data_.labels.defined() || data_.images.dim() < 1 || data_.labels.dim() != 1 ||
      data_.images.size(0) != data_.labels.size(0))
    throw ShapeError("dataset images " + (data_.images.defined() ? shape_str(data_.images.shape()) : "[]") +
                     " and labels " + (data_.labels.defined() ? shape_str(data_.labels.shape()) : "[]") +
                     " must have the same number of samples");
  check_dtype(data_.images, DType::Float32, "BatchLoader images");
  check_dtype(data_.labels, DType::Int32, "BatchLoader labels");
  if (data_.size() == 0) throw ValueError("empty dataset");
  start_epoch(0);
}

void BatchLoader::start_epoch(std::int64_t epoch) {
  if (!shuffle_) {
    order_.resize(data_.size());
    for (std::int64_t i = 0; i < data_.size(); ++i) order_[i] = i;
    return;
  }
  // Each epoch has its own sub-stream so any epoch can be reproduced alone.
  // A splitmix64 hash of (stream, epoch), tagged in the top bit, keeps these
  // streams apart from the small stream numbers used for other purposes.
  std::uint64_t z = gen_.stream() * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  Generator g(gen_.seed(), z | (1ull << 63));
  order_ = g.permutation(data_.size());
}

// Rounded up without forming size + batch_size - 1, which overflows for a
// batch size near INT64_MAX.
std::int64_t BatchLoader::num_batches() const {
  return data_.size() / batch_size_ + (data_.size() % batch_size_ != 0 ? 1 : 0);
}

Batch BatchLoader::batch(std::int64_t i) const {
  if (i < 0 || i >= num_batches())
    throw ValueError("batch index " + std::to_string(i) + " out of [0, " + std::to_string(num_batches()) + ")");
  // i < num_batches, so lo < size and neither lo nor hi overflows.
  const std::int64_t lo = i * batch_size_, hi = lo + std::min(batch_size_, data_.size() - lo);
  const std::int64_t b = hi - lo;
  Shape shape = data_.images.shape();
  shape[0] = b;
  const std::int64_t sample = data_.images.numel() / data_.size();
  Batch out{Tensor::empty(shape), Tensor::empty({b}, DType::Int32)};
  const float* src = data_.images.data<float>();
  const std::int32_t* lab = data_.labels.data<std::int32_t>();
  float* dst = out.images.data<float>();
  std::int32_t* dl = out.labels.data<std::int32_t>();
  for (std::int64_t k = 0; k < b; ++k) {
    const std::int64_t s = order_[lo + k];
    std::memcpy(dst + k * sample, src + s * sample, sample * sizeof(float));
    dl[k] = lab[s];
  }
  return out;
}

}  // namespace aimc::data
