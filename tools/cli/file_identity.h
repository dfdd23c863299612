// What identifies a run's inputs by content rather than by path: a hash of
// a checkpoint's bytes, or of a test set's images and labels, so a results
// file or journal can tell whether a rerun uses the same inputs (files may
// move; their content may not change).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tools/data/idx.h"

namespace aimc::cli {

// A 64-bit FNV-1a hash of bytes, as 16 hex digits: catches any accidental
// change of a checkpoint or the test set (not meant against forgery).
class ContentHash {
 public:
  void update(const void* data, std::size_t n);
  std::string hex() const;

 private:
  std::uint64_t h_ = 14695981039346656037ULL;  // the FNV-1a offset basis
};

// The hash of a file's bytes and its size; IoError naming the path when it
// cannot be read.
std::string file_content_hash(const std::string& path, std::uint64_t& bytes);

// The hash of a test set's image bytes then label bytes.
std::string dataset_content_hash(const data::Dataset& test);

}  // namespace aimc::cli
