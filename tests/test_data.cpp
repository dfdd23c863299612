// IDX reading (gzip and raw), Fashion-MNIST as installed by Debian, errors on
// missing/truncated/corrupt files, and the shuffling batch loader.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

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
}

TEST_CASE("the loader rejects images and labels of different lengths") {
  data::Dataset ds{Tensor::zeros({10, 1, 2, 2}), Tensor::zeros({20}, DType::Int32)};
  CHECK_THROWS_AS(data::BatchLoader(ds, 4, false), ShapeError);
  data::Dataset wrong_dtype{Tensor::zeros({10, 1, 2, 2}), Tensor::zeros({10})};
  CHECK_THROWS_AS(data::BatchLoader(wrong_dtype, 4, false), ValueError);
}
