// Readers for MNIST-format IDX files (gzip-compressed or raw) and the
// Fashion-MNIST dataset as installed by Debian's dataset-fashion-mnist.
// Images come out as float32 [N, 1, rows, cols] scaled to [0, 1]; labels as
// int32 [N].
#pragma once

#include <string>

#include "engine/tensor.h"

namespace aimc::data {

struct Dataset {
  Tensor images;  // [N, 1, H, W] float32 in [0, 1]
  Tensor labels;  // [N] int32
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// The most samples an IDX file may hold (larger counts are a corrupt header).
inline constexpr std::int64_t kMaxSamples = 100000000;
// MNIST and Fashion-MNIST have ten classes: labels 0..9.
inline constexpr int kMnistClasses = 10;

// Where Debian's dataset-fashion-mnist installs the files.
inline const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads an idx3-ubyte image file; throws IoError naming the path when it is
// missing, not a regular file, truncated or not an image file.
Tensor read_idx_images(const std::string& path);
// Reads an idx1-ubyte label file; every label must be in 0..num_classes-1
// (IoError naming the path, the sample and the label otherwise).
Tensor read_idx_labels(const std::string& path, int num_classes);

// Loads "train" or "t10k" from dir (files NAME-images-idx3-ubyte[.gz] and
// NAME-labels-idx1-ubyte[.gz]) with labels 0..9. Image and label counts must
// agree and be > 0.
Dataset load_mnist_split(const std::string& dir, const std::string& split);

// Parses "fashion-mnist" or "fashion-mnist:DIR" (also "mnist:DIR"); returns the directory.
std::string dataset_dir(const std::string& spec);

// The first n samples (a view).
Dataset head(const Dataset& d, std::int64_t n);

}  // namespace aimc::data
