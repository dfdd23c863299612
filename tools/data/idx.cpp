// IDX reading through zlib's gzread, which reads gzip and raw files alike.
#include "tools/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/error.h"

namespace aimc::data {
namespace {

struct GzCloser {
  void operator()(gzFile f) const { if (f) gzclose(f); }
};
using GzPtr = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Picks path or path + ".gz", whichever exists; it must be a regular file
// (a FIFO would block the read forever, a directory is no data).
std::string resolve(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& p : {path, path + ".gz"}) {
    const fs::file_status st = fs::status(p, ec);
    if (!fs::exists(st)) continue;
    if (fs::is_directory(st)) throw IoError("data file " + p + " is a directory");
    if (!fs::is_regular_file(st)) throw IoError("data file " + p + " is not a regular file (a FIFO, device or socket)");
    return p;
  }
  throw IoError("data file not found: " + path + " (nor " + path + ".gz)");
}

GzPtr open(const std::string& path) {
  GzPtr f(gzopen(path.c_str(), "rb"));
  if (!f) throw IoError("cannot open " + path);
  gzbuffer(f.get(), 1 << 17);
  return f;
}

void read_exact(gzFile f, void* dst, std::size_t bytes, const std::string& path, const char* what) {
  std::size_t done = 0;
  while (done < bytes) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - done, 1u << 30));
    const int got = gzread(f, static_cast<char*>(dst) + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      throw IoError(path + ": corrupt compressed data while reading " + what + " (" + (msg ? msg : "?") + ")");
    }
    if (got == 0) throw IoError(path + ": truncated file while reading " + what);
    done += static_cast<std::size_t>(got);
  }
}

// Deflate expands at most 1032:1, so a gzip file of c bytes holds at most
// 1032·c; a raw file holds its size less the header.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// IoError (truncated) when the file cannot hold `bytes` more bytes after a
// header of header_bytes: checked before anything of that size is allocated,
// so a header that claims gigabytes in a small file costs nothing.
void check_claim(gzFile f, const std::string& path, std::uint64_t header_bytes, std::uint64_t bytes,
                 const char* what) {
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError("cannot read the size of " + path + ": " + ec.message());
  const std::uint64_t most = gzdirect(f) ? (size > header_bytes ? size - header_bytes : 0) : size * kMaxDeflateRatio;
  if (bytes > most)
    throw IoError(path + ": truncated file: the header claims " + std::to_string(bytes) + " bytes of " + what +
                  " but the file can hold at most " + std::to_string(most));
}

std::uint32_t big_endian(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

// Reads the magic number and dims; checks type 0x08 (unsigned byte) and rank.
std::vector<std::uint32_t> read_header(gzFile f, const std::string& path, int rank) {
  unsigned char magic[4];
  read_exact(f, magic, 4, path, "the magic number");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != rank)
    throw IoError(path + ": not an IDX unsigned-byte file of rank " + std::to_string(rank) +
                  " (bad magic number)");
  std::vector<std::uint32_t> dims(rank);
  for (int i = 0; i < rank; ++i) {
    unsigned char b[4];
    read_exact(f, b, 4, path, "the dimensions");
    dims[i] = big_endian(b);
  }
  return dims;
}

}  // namespace

Tensor read_idx_images(const std::string& path_in) {
  const std::string path = resolve(path_in);
  GzPtr f = open(path);
  const auto dims = read_header(f.get(), path, 3);
  const std::int64_t n = dims[0], h = dims[1], w = dims[2];
  // At most 2^31 pixels (8 GiB as float): anything larger is a corrupt header.
  if (h == 0 || w == 0 || h > 4096 || w > 4096 || n > kMaxSamples || n * h * w > (std::int64_t(1) << 31))
    throw IoError(path + ": implausible image dimensions " + std::to_string(n) + "x" + std::to_string(h) + "x" +
                  std::to_string(w));
  const std::size_t total = static_cast<std::size_t>(n * h * w);
  check_claim(f.get(), path, 16, total, "pixels");
  // Decompress and convert in pieces, so the raw bytes never exist whole.
  Tensor images = Tensor::empty({n, 1, h, w});
  float* out = images.data<float>();
  std::vector<unsigned char> raw(std::min<std::size_t>(total, std::size_t(1) << 20));
  for (std::size_t done = 0; done < total;) {
    const std::size_t piece = std::min(raw.size(), total - done);
    read_exact(f.get(), raw.data(), piece, path, "the pixels");
    for (std::size_t i = 0; i < piece; ++i) out[done + i] = static_cast<float>(raw[i]) * (1.0f / 255.0f);
    done += piece;
  }
  return images;
}

Tensor read_idx_labels(const std::string& path_in, int num_classes) {
  if (num_classes < 1 || num_classes > 256)
    throw ValueError("read_idx_labels: num_classes must be in 1..256 (byte labels), got " +
                     std::to_string(num_classes));
  const std::string path = resolve(path_in);
  GzPtr f = open(path);
  const auto dims = read_header(f.get(), path, 1);
  const std::int64_t n = dims[0];
  if (n > kMaxSamples) throw IoError(path + ": implausible label count " + std::to_string(n));
  check_claim(f.get(), path, 8, static_cast<std::uint64_t>(n), "labels");
  std::vector<unsigned char> raw(static_cast<std::size_t>(n));
  read_exact(f.get(), raw.data(), raw.size(), path, "the labels");
  Tensor labels = Tensor::empty({n}, DType::Int32);
  std::int32_t* out = labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    // A label outside the classes would silently count as a wrong prediction.
    if (raw[i] >= num_classes)
      throw IoError(path + ": label " + std::to_string(raw[i]) + " of sample " + std::to_string(i) +
                    " is outside 0.." + std::to_string(num_classes - 1) + " (" + std::to_string(num_classes) +
                    " classes)");
    out[i] = raw[i];
  }
  return labels;
}

Dataset load_mnist_split(const std::string& dir, const std::string& split) {
  Dataset d;
  d.images = read_idx_images(dir + "/" + split + "-images-idx3-ubyte");
  d.labels = read_idx_labels(dir + "/" + split + "-labels-idx1-ubyte", kMnistClasses);
  if (d.images.size(0) != d.labels.size(0))
    throw IoError(dir + ": " + split + " has " + std::to_string(d.images.size(0)) + " images but " +
                  std::to_string(d.labels.size(0)) + " labels");
  // An empty split would train on nothing or report accuracy 0 of 0 samples.
  if (d.size() == 0) throw IoError(dir + ": " + split + " has no samples (its IDX files hold 0 images)");
  return d;
}

std::string dataset_dir(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  if (name != "fashion-mnist" && name != "mnist")
    throw UsageError("unknown dataset '" + name + "' (known: fashion-mnist[:DIR], mnist:DIR)");
  if (colon != std::string::npos) return spec.substr(colon + 1);
  if (name == "mnist") throw UsageError("dataset 'mnist' needs a directory: mnist:DIR");
  return kFashionMnistDir;
}

Dataset head(const Dataset& d, std::int64_t n) {
  n = std::min(n, d.size());
  return Dataset{d.images.slice(0, 0, n), d.labels.slice(0, 0, n)};
}

}  // namespace aimc::data
