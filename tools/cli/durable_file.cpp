// Crash-safe output files (see durable_file.h).
#include "tools/cli/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "engine/error.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

// Makes a rename in dir durable; best effort (some file systems refuse to
// open or sync a directory, and the data itself is already on the disk).
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw IoError("cannot write " + tmp);
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size() && std::fflush(f) == 0 &&
                       ::fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !written) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError("cannot rename " + tmp + " to " + path);
  }
  sync_directory(fs::path(path).parent_path());
}

DurableAppender::DurableAppender(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) throw IoError("cannot open " + path + " for appending");
}

DurableAppender::~DurableAppender() {
  if (file_) std::fclose(file_);
}

void DurableAppender::append(const std::string& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!file_) throw IoError("cannot append to " + path_ + ": it is closed");
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0 ||
      ::fsync(fileno(file_)) != 0)
    throw IoError("cannot append to " + path_);
}

void DurableAppender::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!file_) return;
  const bool ok = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok) throw IoError("cannot close " + path_);
}

}  // namespace aimc::cli
