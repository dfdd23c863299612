// safetensors files: the tensor container aimc checkpoints use, readable by
// Python's `safetensors` package.
//
// Layout: an 8-byte little-endian header length n, then n bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value"}} padded with spaces to a multiple of 8,
// then the raw little-endian tensor data; offsets are relative to the start of
// the data and the tensors cover it exactly, in write order. Supported dtypes:
// F32, F64, I32, I64.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace aimc {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file (data offset) order
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (any device, any layout; copied to contiguous CPU data)
// with the metadata. Writes to path + ".tmp" and renames it into place, so a
// failed write leaves no partial file at `path` (and removes the temporary).
// Throws ValueError for an empty, repeated or reserved ("__metadata__") name
// or an undefined tensor, IoError naming the path when the file cannot be
// written.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Reads a file written by write_safetensors (or Python's safetensors with
// F32/F64/I32/I64 tensors of at most 5 dims) into CPU tensors. Every length,
// offset, dtype and shape is checked against the file: a truncated or corrupt
// file throws IoError naming the path and the problem.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace aimc
