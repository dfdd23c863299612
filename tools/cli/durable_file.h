// Output files that survive a crash or a kill: a whole file replaced
// atomically, or a log whose every appended line is on the disk before
// append returns.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

namespace aimc::cli {

// Writes path.tmp, flushes it to the disk and renames it onto path (then
// syncs the directory, so the rename is on the disk too): the file at path is
// always whole, old or new. IoError naming the path on failure.
void write_file_atomically(const std::string& path, const std::string& content);

// An existing file opened for appending whole records (lines) from any
// thread: each append is one write under a mutex, flushed and fsync'd before
// it returns, so a kill loses at most the record being written (a partial
// last line, which readers must expect). IoError naming the path on failure.
class DurableAppender {
 public:
  explicit DurableAppender(const std::string& path);
  ~DurableAppender();
  DurableAppender(const DurableAppender&) = delete;
  DurableAppender& operator=(const DurableAppender&) = delete;

  void append(const std::string& record);
  void close();  // idempotent; IoError when the final close fails

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

}  // namespace aimc::cli
