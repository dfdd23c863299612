// safetensors reader and writer (see safetensors.h).
#include "engine/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>

#include <unistd.h>

#include "engine/json_input.h"

#include <nlohmann/json.hpp>

namespace aimc {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // as Python's safetensors
// At most 2^34 elements per tensor (64 GiB of float32); the product of a
// shape's non-zero dims is checked against it before anything is allocated.
constexpr std::uint64_t kMaxElements = std::uint64_t(1) << 34;
// At most this many tensors in one file.
constexpr std::size_t kMaxTensors = 1'000'000;

// A JSON shape as text, e.g. [0, 4294967296] (for messages).
std::string shape_text(const nlohmann::ordered_json& shape) {
  std::string t = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + shape[i].dump();
  return t + "]";
}

const char* dtype_code(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
  }
  return "?";
}

bool parse_dtype(const std::string& code, DType& out) {
  if (code == "F32") out = DType::Float32;
  else if (code == "F64") out = DType::Float64;
  else if (code == "I32") out = DType::Int32;
  else if (code == "I64") out = DType::Int64;
  else return false;
  return true;
}

// Owns a FILE*; closes it on scope exit.
struct File {
  std::FILE* f = nullptr;
  ~File() {
    if (f) std::fclose(f);
  }
};

// Removes the temporary file unless the write committed.
struct TempFile {
  std::string path;
  bool committed = false;
  ~TempFile() {
    if (!committed) std::remove(path.c_str());
  }
};

}  // namespace

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Validate and lay out the header before touching the disk.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw ValueError("write_safetensors: invalid tensor name '" + name + "'");
    if (!names.insert(name).second) throw ValueError("write_safetensors: tensor name '" + name + "' repeated");
    if (!t.defined()) throw ValueError("write_safetensors: tensor '" + name + "' is undefined");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", dtype_code(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw ValueError("write_safetensors: a tensor name or metadata string is not valid UTF-8 (" +
                     std::string(e.what()) + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  TempFile temp{path + ".tmp"};
  auto fail = [&](const std::string& what) { return IoError("cannot write safetensors file " + path + ": " + what); };
  File file{std::fopen(temp.path.c_str(), "wb")};
  if (!file.f) throw fail("cannot create " + temp.path);
  const std::uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  if (std::fwrite(len, 1, 8, file.f) != 8 || std::fwrite(text.data(), 1, n, file.f) != n)
    throw fail("write error on the header");
  for (const auto& [name, t] : tensors) {
    const Tensor c = t.detach().to(Device::cpu()).contiguous();
    const std::size_t bytes = static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype());
    if (bytes && std::fwrite(c.raw_data(), 1, bytes, file.f) != bytes) throw fail("write error on tensor '" + name + "'");
  }
  if (std::fflush(file.f) != 0 || ::fsync(fileno(file.f)) != 0) throw fail("flush failed");
  const int closed = std::fclose(file.f);
  file.f = nullptr;
  if (closed != 0) throw fail("close failed");
  std::error_code ec;
  std::filesystem::rename(temp.path, path, ec);
  if (ec) throw fail("cannot rename " + temp.path + " into place (" + ec.message() + ")");
  temp.committed = true;
}

SafetensorsFile read_safetensors(const std::string& path) {
  auto corrupt = [&](const std::string& what) { return IoError("corrupt safetensors file " + path + ": " + what); };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw IoError("cannot open safetensors file " + path + ": not a file");
  const std::uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError("cannot open safetensors file " + path + ": " + ec.message());
  File file{std::fopen(path.c_str(), "rb")};
  if (!file.f) throw IoError("cannot open safetensors file " + path);
  if (file_size < 8)
    throw corrupt("truncated: " + std::to_string(file_size) + " bytes, less than the 8-byte header length");
  unsigned char len[8];
  if (std::fread(len, 1, 8, file.f) != 8) throw corrupt("cannot read the header length");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(len[i]) << (8 * i);
  if (n == 0 || n > file_size - 8)
    throw corrupt("header length " + std::to_string(n) + " does not fit the file size " + std::to_string(file_size));
  if (n > kMaxHeaderBytes) throw corrupt("header length " + std::to_string(n) + " exceeds 100 MB");
  std::string text(n, '\0');
  if (std::fread(text.data(), 1, n, file.f) != n) throw corrupt("cannot read the header");
  std::string json_error;
  const std::optional<nlohmann::ordered_json> parsed = parse_json_bounded<nlohmann::ordered_json>(text, json_error);
  if (!parsed) throw corrupt("header: " + json_error);
  const nlohmann::ordered_json& header = *parsed;
  if (!header.is_object()) throw corrupt("header is not a JSON object");
  if (header.size() > kMaxTensors + 1)
    throw corrupt("header lists " + std::to_string(header.size()) + " entries, more than the limit of " +
                  std::to_string(kMaxTensors) + " tensors");
  const std::uint64_t data_size = file_size - 8 - n;

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::uint64_t begin, end;
  };
  std::vector<Entry> entries;
  SafetensorsFile out;
  for (const auto& item : header.items()) {
    // Plain references, not a structured binding: a lambda below captures
    // name, which C++20 (and so clang) does not allow for a binding.
    const std::string& name = item.key();
    const auto& info = item.value();
    if (name == "__metadata__") {
      if (!info.is_object()) throw corrupt("__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) throw corrupt("metadata value of '" + k + "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return corrupt("tensor '" + name + "': " + what); };
    if (!info.is_object()) throw bad("entry is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) throw bad("missing dtype");
    Entry e{name, DType::Float32, {}, 0, 0};
    const std::string code = info["dtype"].get<std::string>();
    if (!parse_dtype(code, e.dtype)) throw bad("unsupported dtype '" + code + "' (expected F32, F64, I32 or I64)");
    if (!info.contains("shape") || !info["shape"].is_array()) throw bad("missing shape");
    const auto& shape = info["shape"];
    if (shape.size() > static_cast<std::size_t>(kMaxDims))
      throw bad("shape has " + std::to_string(shape.size()) + " dims, at most 5 supported");
    // The product of the non-zero dims bounds every stride, so it must stay
    // within the element limit even when a zero dim makes the tensor empty.
    std::uint64_t span = 1;
    bool has_zero_dim = false;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) throw bad("shape entries must be non-negative integers");
      const std::uint64_t v = d.get<std::uint64_t>();
      has_zero_dim = has_zero_dim || v == 0;
      if (v != 0 && (__builtin_mul_overflow(span, v, &span) || span > kMaxElements))
        throw bad("shape " + shape_text(shape) + " exceeds the limit of " + std::to_string(kMaxElements) +
                  " elements per tensor");
      e.shape.push_back(static_cast<std::int64_t>(v));
    }
    const std::uint64_t bytes = has_zero_dim ? 0 : span * dtype_size(e.dtype);
    const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : nlohmann::ordered_json();
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    e.begin = offsets[0].get<std::uint64_t>();
    e.end = offsets[1].get<std::uint64_t>();
    if (e.begin > e.end || e.end > data_size)
      throw bad("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] outside the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
    if (e.end - e.begin != bytes)
      throw bad("data_offsets span " + std::to_string(e.end - e.begin) + " bytes but dtype and shape need " +
                std::to_string(bytes));
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  std::uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin != expected)
      throw corrupt("tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) + ", expected " +
                    std::to_string(expected) + " (overlapping or missing data)");
    expected = e.end;
  }
  if (expected != data_size)
    throw corrupt("tensors cover " + std::to_string(expected) + " bytes of a " + std::to_string(data_size) +
                  "-byte data section");

  for (const auto& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    const std::uint64_t bytes = e.end - e.begin;
    if (bytes) {
      if (std::fseek(file.f, static_cast<long>(8 + n + e.begin), SEEK_SET) != 0 ||
          std::fread(t.raw_data(), 1, bytes, file.f) != bytes)
        throw corrupt("cannot read the data of tensor '" + e.name + "' (truncated file?)");
    }
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace aimc
