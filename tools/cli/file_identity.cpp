// Content hashes of run inputs (see file_identity.h).
#include "tools/cli/file_identity.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "engine/error.h"

namespace aimc::cli {

void ContentHash::update(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h_ = (h_ ^ p[i]) * 1099511628211ULL;  // the FNV-1a prime
}

std::string ContentHash::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

std::string file_content_hash(const std::string& path, std::uint64_t& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read " + path);
  ContentHash h;
  bytes = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    h.update(buf.data(), n);
    bytes += n;
  }
  if (in.bad()) throw IoError("cannot read " + path);
  return h.hex();
}

std::string dataset_content_hash(const data::Dataset& test) {
  ContentHash h;
  for (const Tensor& t : {test.images.contiguous(), test.labels.contiguous()})
    if (t.numel() > 0) h.update(t.raw_data(), std::size_t(t.numel()) * dtype_size(t.dtype()));
  return h.hex();
}

}  // namespace aimc::cli
