// IDX reading (gzip and raw), Fashion-MNIST as installed by Debian, errors on
// missing/truncated/corrupt files, and the shuffling batch loader.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/stat.h>

#include "tools/data/idx.h"
#include "tools/data/loader.h"

using namespace aimc;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("aimc_test_data_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::vector<unsigned char> idx_images(int n, int h, int w) {
  std::vector<unsigned char> b = {0, 0, 8, 3};
  for (int v : {n, h, w})
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((v >> s) & 0xff));
  for (int i = 0; i < n * h * w; ++i) b.push_back(static_cast<unsigned char>(i % 256));
  return b;
}

std::vector<unsigned char> idx_labels(int n) {
  std::vector<unsigned char> b = {0, 0, 8, 1};
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((n >> s) & 0xff));
  for (int i = 0; i < n; ++i) b.push_back(static_cast<unsigned char>(i % 10));
  return b;
}

void write_raw(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

void write_gz(const fs::path& p, const std::vector<unsigned char>& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, b.data(), unsigned(b.size()));
  gzclose(f);
}

}  // namespace

TEST_CASE("IDX files read the same raw and gzip-compressed") {
  const fs::path d = temp_dir();
  write_raw(d / "train-images-idx3-ubyte", idx_images(5, 3, 4));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(5));
  data::Dataset ds = data::load_mnist_split(d.string(), "train");
  CHECK(ds.images.shape() == Shape{5, 1, 3, 4});
  CHECK(ds.labels.shape() == Shape{5});
  const auto px = ds.images.to_vector();
  CHECK(px[13] == Approx(13.0 / 255.0));
  CHECK(ds.labels.data<std::int32_t>()[4] == 4);
  fs::remove_all(d);
}

TEST_CASE("missing, truncated and corrupt IDX files raise IoError naming the path") {
  const fs::path d = temp_dir();
  CHECK_THROWS_WITH(data::read_idx_images((d / "nope").string()), Catch::Contains("nope"));
  auto bytes = idx_images(4, 2, 2);
  bytes.resize(bytes.size() - 3);
  write_raw(d / "trunc", bytes);
  CHECK_THROWS_AS(data::read_idx_images((d / "trunc").string()), IoError);
  CHECK_THROWS_WITH(data::read_idx_images((d / "trunc").string()), Catch::Contains("truncated"));
  auto bad = idx_images(1, 2, 2);
  bad[2] = 9;  // not unsigned byte
  write_raw(d / "badmagic", bad);
  CHECK_THROWS_WITH(data::read_idx_images((d / "badmagic").string()), Catch::Contains("magic"));
  // A labels file is not an images file.
  write_raw(d / "labels", idx_labels(3));
  CHECK_THROWS_AS(data::read_idx_images((d / "labels").string()), IoError);
  // Corrupt gzip stream.
  std::vector<unsigned char> gz_garbage = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
  write_raw(d / "garbage.gz", gz_garbage);
  CHECK_THROWS_AS(data::read_idx_images((d / "garbage.gz").string()), IoError);
  // Mismatched counts.
  write_raw(d / "x-images-idx3-ubyte", idx_images(5, 2, 2));
  write_raw(d / "x-labels-idx1-ubyte", idx_labels(4));
  CHECK_THROWS_AS(data::load_mnist_split(d.string(), "x"), IoError);
  fs::remove_all(d);
}

TEST_CASE("a header claiming gigabytes in a tiny file fails as truncated before allocating them") {
  const fs::path d = temp_dir();
  // 8 192 003 images of 4x58 (1.9e9 pixels: 7.6 GB as float32) in a 40-byte file;
  // found by the IDX fuzz target (tests/fuzz/regressions/idx).
  std::vector<unsigned char> images = {0, 0, 8, 3, 0, 0x7d, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0x3a};
  for (int i = 0; i < 24; ++i) images.push_back(static_cast<unsigned char>(i));
  std::vector<unsigned char> labels = {0, 0, 8, 1, 0x05, 0xf5, 0xe1, 0x00, 1, 2, 3};  // 1e8 labels claimed
  // Under a 1 GiB address-space limit a claimed-size allocation would fail
  // with std::bad_alloc instead of the IoError (not under AddressSanitizer,
  // whose shadow memory needs terabytes of address space).
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool limit_memory = false;
#elif defined(__has_feature)
  constexpr bool limit_memory = !__has_feature(address_sanitizer);
#else
  constexpr bool limit_memory = true;
#endif
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_AS, &old) == 0);
  for (const bool gz : {false, true}) {
    const fs::path ip = d / (gz ? "big_images.gz" : "big_images"), lp = d / (gz ? "big_labels.gz" : "big_labels");
    if (gz) write_gz(ip, images), write_gz(lp, labels);
    else write_raw(ip, images), write_raw(lp, labels);
    struct rlimit small = old;
    small.rlim_cur = std::min<rlim_t>(old.rlim_cur, rlim_t(1) << 30);
    if (limit_memory) REQUIRE(::setrlimit(RLIMIT_AS, &small) == 0);
    bool images_truncated = false, labels_truncated = false;
    try {
      data::read_idx_images(ip.string());
    } catch (const IoError& e) {
      images_truncated = std::string(e.what()).find("truncated") != std::string::npos;
    }
    try {
      data::read_idx_labels(lp.string(), 10);
    } catch (const IoError& e) {
      labels_truncated = std::string(e.what()).find("truncated") != std::string::npos;
    }
    REQUIRE(::setrlimit(RLIMIT_AS, &old) == 0);
    INFO((gz ? "gzip" : "raw"));
    CHECK(images_truncated);
    CHECK(labels_truncated);
  }
  fs::remove_all(d);
}

// Issue 12: labels outside the classes, empty splits and non-regular files
// were accepted (accuracy 0.0, or a read that blocks forever on a FIFO).
TEST_CASE("labels outside 0..9, an empty split and a FIFO or directory as data file raise IoError naming it") {
  const fs::path d = temp_dir();
  write_raw(d / "t10k-images-idx3-ubyte", idx_images(4, 2, 2));
  auto labels = idx_labels(4);
  labels[8 + 2] = 12;  // sample 2 of 4: header is 8 bytes
  write_raw(d / "t10k-labels-idx1-ubyte", labels);
  CHECK_THROWS_AS(data::load_mnist_split(d.string(), "t10k"), IoError);
  CHECK_THROWS_WITH(data::load_mnist_split(d.string(), "t10k"),
                    Catch::Contains("t10k-labels-idx1-ubyte") && Catch::Contains("label 12 of sample 2") &&
                        Catch::Contains("0..9"));
  // Label 9 is the last class and is accepted; with 5 classes it is not.
  labels[8 + 2] = 9;
  write_raw(d / "t10k-labels-idx1-ubyte", labels);
  CHECK(data::load_mnist_split(d.string(), "t10k").labels.data<std::int32_t>()[2] == 9);
  CHECK_THROWS_WITH(data::read_idx_labels((d / "t10k-labels-idx1-ubyte").string(), 5),
                    Catch::Contains("label 9 of sample 2") && Catch::Contains("0..4"));

  write_raw(d / "e-images-idx3-ubyte", idx_images(0, 2, 2));
  write_raw(d / "e-labels-idx1-ubyte", idx_labels(0));
  CHECK_THROWS_AS(data::load_mnist_split(d.string(), "e"), IoError);
  CHECK_THROWS_WITH(data::load_mnist_split(d.string(), "e"), Catch::Contains("e has no samples"));

  // Checked before opening: the test would hang if the FIFO were opened.
  REQUIRE(::mkfifo((d / "f-labels-idx1-ubyte").c_str(), 0600) == 0);
  write_raw(d / "f-images-idx3-ubyte", idx_images(4, 2, 2));
  CHECK_THROWS_WITH(data::load_mnist_split(d.string(), "f"),
                    Catch::Contains("f-labels-idx1-ubyte") && Catch::Contains("not a regular file"));
  fs::create_directories(d / "g-images-idx3-ubyte");
  CHECK_THROWS_WITH(data::load_mnist_split(d.string(), "g"),
                    Catch::Contains("g-images-idx3-ubyte") && Catch::Contains("is a directory"));
  fs::remove_all(d);
}

TEST_CASE("Fashion-MNIST from dataset-fashion-mnist has 60000/10000 balanced samples") {
  const std::string dir = data::dataset_dir("fashion-mnist");
  REQUIRE(fs::exists(fs::path(dir) / "t10k-images-idx3-ubyte.gz"));
  data::Dataset test = data::load_mnist_split(dir, "t10k");
  CHECK(test.images.shape() == Shape{10000, 1, 28, 28});
  std::vector<int> counts(10, 0);
  const std::int32_t* l = test.labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < test.size(); ++i) counts.at(l[i])++;
  for (int c : counts) CHECK(c == 1000);
  const auto px = test.images.to_vector();
  CHECK(*std::max_element(px.begin(), px.end()) == 1.0f);
  CHECK(*std::min_element(px.begin(), px.end()) == 0.0f);
  data::Dataset train = data::load_mnist_split(dir, "train");
  CHECK(train.size() == 60000);
}

TEST_CASE("dataset specs parse and reject unknown names") {
  CHECK(data::dataset_dir("fashion-mnist") == data::kFashionMnistDir);
  CHECK(data::dataset_dir("fashion-mnist:/tmp/x") == "/tmp/x");
  CHECK_THROWS_AS(data::dataset_dir("cifar"), UsageError);
}

TEST_CASE("the loader visits every sample once per epoch, reproducibly") {
  data::Dataset ds{Tensor::empty({10, 1, 1, 1}), Tensor::empty({10}, DType::Int32)};
  for (int i = 0; i < 10; ++i) {
    ds.images.data<float>()[i] = float(i);
    ds.labels.data<std::int32_t>()[i] = i;
  }
  data::BatchLoader a(ds, 4, true, Generator(9, 2)), b(ds, 4, true, Generator(9, 2));
  CHECK(a.num_batches() == 3);
  auto order = [](data::BatchLoader& l, int epoch) {
    l.start_epoch(epoch);
    std::vector<int> seen;
    for (std::int64_t i = 0; i < l.num_batches(); ++i) {
      auto bt = l.batch(i);
      for (std::int64_t k = 0; k < bt.labels.size(0); ++k) {
        CHECK(bt.images.data<float>()[k] == float(bt.labels.data<std::int32_t>()[k]));
        seen.push_back(bt.labels.data<std::int32_t>()[k]);
      }
    }
    return seen;
  };
  const auto e0 = order(a, 0), e1 = order(a, 1);
  CHECK(std::set<int>(e0.begin(), e0.end()).size() == 10);
  CHECK(e0.size() == 10);
  CHECK(e0 != e1);
  CHECK(order(b, 1) == e1);
  CHECK_THROWS_AS(data::BatchLoader(ds, 0, true), ConfigError);

  // Issue 12: a batch size near INT64_MAX overflowed the batch count
  // (size + batch - 1); it is one batch holding all 10 samples.
  data::BatchLoader huge(ds, INT64_MAX, false);
  CHECK(huge.num_batches() == 1);
  CHECK(huge.batch(0).labels.size(0) == 10);
  data::BatchLoader three(ds, 3, false);  // 10 = 3 + 3 + 3 + 1
  CHECK(three.num_batches() == 4);
  CHECK(three.batch(3).labels.size(0) == 1);
  CHECK(three.batch(3).labels.data<std::int32_t>()[0] == 9);
}

TEST_CASE("the loader rejects images and labels of different lengths") {
  data::Dataset ds{Tensor::zeros({10, 1, 2, 2}), Tensor::zeros({20}, DType::Int32)};
  CHECK_THROWS_AS(data::BatchLoader(ds, 4, false), ShapeError);
  data::Dataset wrong_dtype{Tensor::zeros({10, 1, 2, 2}), Tensor::zeros({10})};
  CHECK_THROWS_AS(data::BatchLoader(wrong_dtype, 4, false), ValueError);
}
