// Tests of the idx reader and writer: round trips (raw and gzip) and one
// clear DataError per kind of corrupt file.

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "vaerepro/datasets.h"

namespace {

namespace fs = std::filesystem;
using vaerepro::DataError;

/// A fresh directory under the system temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("vaerepro-idx-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

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

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// An idx header: magic 0 0 type ndim, then big-endian dimensions.
std::vector<uint8_t> header(const std::vector<uint32_t>& dims, uint8_t type = 0x08) {
  std::vector<uint8_t> h = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    h.push_back(static_cast<uint8_t>(d >> 24));
    h.push_back(static_cast<uint8_t>(d >> 16));
    h.push_back(static_cast<uint8_t>(d >> 8));
    h.push_back(static_cast<uint8_t>(d));
  }
  return h;
}

/// A header followed by n body bytes.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, size_t n) {
  std::vector<uint8_t> b = header(dims);
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i * 7));
  return b;
}

torch::Tensor random_bytes(std::vector<int64_t> shape, int64_t seed) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  return torch::randint(0, 256, shape, gen, torch::kUInt8);
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "message: " << (haystack) << "\nexpected to contain: " << (needle)

TEST(Idx, RoundTripRawAndGzip) {
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes = {
      {17}, {5, 28, 28}, {3, 4, 5, 6}, {0, 28, 28}, {2, 3}};
  int64_t seed = 1;
  for (const auto& shape : shapes) {
    torch::Tensor t = random_bytes(shape, seed++);
    for (const char* name : {"t.idx", "t.idx.gz"}) {
      const std::string path = dir.file(name);
      vaerepro::write_idx(path, t);
      torch::Tensor back = vaerepro::read_idx(path);
      EXPECT_EQ(back.scalar_type(), torch::kUInt8) << name;
      EXPECT_EQ(back.sizes(), t.sizes()) << name;
      EXPECT_TRUE(torch::equal(back, t)) << name;
    }
  }
}

TEST(Idx, GzipIsDetectedByContentNotName) {
  TempDir dir;
  torch::Tensor t = random_bytes({4, 28, 28}, 3);
  vaerepro::write_idx(dir.file("a.gz"), t);
  vaerepro::write_idx(dir.file("b"), t);
  // A gzip file without the suffix and a raw file with it both read.
  fs::rename(dir.file("a.gz"), dir.file("a-compressed"));
  fs::rename(dir.file("b"), dir.file("b-raw.gz"));
  std::ifstream in(dir.file("a-compressed"), std::ios::binary);
  unsigned char magic[2] = {0, 0};
  in.read(reinterpret_cast<char*>(magic), 2);
  EXPECT_EQ(magic[0], 0x1f);
  EXPECT_EQ(magic[1], 0x8b);
  EXPECT_TRUE(torch::equal(vaerepro::read_idx(dir.file("a-compressed")), t));
  EXPECT_TRUE(torch::equal(vaerepro::read_idx(dir.file("b-raw.gz")), t));
  EXPECT_EQ(fs::file_size(dir.file("b-raw.gz")), 16u + 4u * 28u * 28u);
}

TEST(Idx, WriteIsAtomicAndLeavesNoTemporaryFiles) {
  TempDir dir;
  const std::string path = dir.file("x.gz");
  vaerepro::write_idx(path, random_bytes({10}, 1));
  torch::Tensor second = random_bytes({12}, 2);
  vaerepro::write_idx(path, second);  // replaces the first
  EXPECT_TRUE(torch::equal(vaerepro::read_idx(path), second));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "x.gz");
  }
  EXPECT_EQ(files, 1);
}

TEST(Idx, WriteRejectsNonBytes) {
  TempDir dir;
  EXPECT_THROW(vaerepro::write_idx(dir.file("f"), torch::zeros({3}, torch::kFloat32)),
               std::invalid_argument);
  EXPECT_THROW(vaerepro::write_idx(dir.file("f"), torch::zeros({}, torch::kUInt8)),
               std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir.file("f")));
}

TEST(Idx, WriteIntoMissingDirectoryNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.gz");
  std::string msg = error_of([&] { vaerepro::write_idx(path, random_bytes({3}, 1)); });
  EXPECT_CONTAINS(msg, path + ": cannot create");
}

TEST(Idx, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nothere-idx3-ubyte.gz");
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "no such file");
}

TEST(Idx, WrongMagic) {
  TempDir dir;
  const std::string path = dir.file("magic.idx");
  std::vector<uint8_t> bytes = idx_bytes({2, 2}, 4);
  bytes[0] = 0x12;
  bytes[1] = 0x34;
  write_bytes(path, bytes);
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "wrong magic number");
  EXPECT_CONTAINS(msg, "expected 0x00 0x00 0x08");
  EXPECT_CONTAINS(msg, "found 0x12 0x34 0x08 0x02");

  // Zero and too many dimensions are wrong magic numbers as well.
  write_bytes(path, {0, 0, 0x08, 0});
  EXPECT_CONTAINS(error_of([&] { vaerepro::read_idx(path); }), "found 0x00 0x00 0x08 0x00");
  write_bytes(path, {0, 0, 0x08, 5});
  EXPECT_CONTAINS(error_of([&] { vaerepro::read_idx(path); }), "wrong magic number");
}

TEST(Idx, UnsupportedType) {
  TempDir dir;
  const std::string path = dir.file("float.idx");
  std::vector<uint8_t> bytes = header({4}, 0x0D);
  bytes.resize(bytes.size() + 16, 0);
  write_bytes(path, bytes);
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "unsupported idx data type 0x0d");
  EXPECT_CONTAINS(msg, "float32");
  EXPECT_CONTAINS(msg, "0x08");
}

TEST(Idx, TruncatedBody) {
  TempDir dir;
  const std::string path = dir.file("train-images-idx3-ubyte");
  write_bytes(path, idx_bytes({10, 28, 28}, 1000));
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "truncated: header promises 7840 bytes of pixels");
  EXPECT_CONTAINS(msg, "file has 1000");
}

TEST(Idx, TruncatedHeader) {
  TempDir dir;
  const std::string path = dir.file("short.idx");
  write_bytes(path, {0, 0});
  EXPECT_CONTAINS(error_of([&] { vaerepro::read_idx(path); }), "truncated");
  std::vector<uint8_t> bytes = header({10, 28, 28});
  bytes.resize(9);  // the magic and half the dimensions
  write_bytes(path, bytes);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "truncated");
  EXPECT_CONTAINS(msg, "3 dimensions");
}

TEST(Idx, TruncatedGzip) {
  TempDir dir;
  const std::string path = dir.file("cut.idx.gz");
  vaerepro::write_idx(path, random_bytes({20, 28, 28}, 5));  // incompressible
  fs::resize_file(path, fs::file_size(path) / 2);
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "truncated: header promises 15680 bytes of pixels");

  // Cut only the 8-byte gzip trailer: every byte is there, unverified.
  vaerepro::write_idx(path, random_bytes({20, 28, 28}, 5));
  fs::resize_file(path, fs::file_size(path) - 4);
  msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "truncated");
}

TEST(Idx, CorruptGzip) {
  TempDir dir;
  const std::string path = dir.file("bad.idx.gz");
  vaerepro::write_idx(path, torch::zeros({1000}, torch::kUInt8));
  // Damage the stored CRC (the trailer's first 4 bytes).
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(fs::file_size(path)) - 8);
  f.put('\x55').put('\x55');
  f.close();
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "gzip");
}

TEST(Idx, TrailingBytes) {
  TempDir dir;
  const std::string path = dir.file("labels-idx1-ubyte");
  write_bytes(path, idx_bytes({5}, 8));
  EXPECT_THROW(vaerepro::read_idx(path), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "3 trailing bytes after the 5 bytes of labels");

  // In a gzip file the check applies after decompression: two gzip members
  // concatenated decompress as one stream, the second one trailing.
  vaerepro::write_idx(dir.file("a.gz"), random_bytes({6}, 1));
  vaerepro::write_idx(dir.file("b.gz"), random_bytes({4}, 2));  // 8 + 4 bytes
  std::ifstream a(dir.file("a.gz"), std::ios::binary), b(dir.file("b.gz"), std::ios::binary);
  using It = std::istreambuf_iterator<char>;
  std::vector<uint8_t> both{It(a), It()};
  both.insert(both.end(), It(b), It());
  const std::string gz = dir.file("trail.gz");
  write_bytes(gz, both);
  msg = error_of([&] { vaerepro::read_idx(gz); });
  EXPECT_CONTAINS(msg, gz);
  EXPECT_CONTAINS(msg, "12 trailing bytes after the 6 bytes of labels");
}

/// Writes an images/labels pair into dir and returns their paths.
std::pair<std::string, std::string> write_pair(const TempDir& dir, const torch::Tensor& images,
                                               const torch::Tensor& labels) {
  std::string ip = dir.file("imgs-idx3-ubyte.gz");
  std::string lp = dir.file("labs-idx1-ubyte.gz");
  vaerepro::write_idx(ip, images);
  vaerepro::write_idx(lp, labels);
  return {ip, lp};
}

TEST(IdxPair, GoodPair) {
  TempDir dir;
  torch::Tensor images = random_bytes({30, 28, 28}, 9);
  torch::Tensor labels = torch::arange(30, torch::kUInt8).remainder(10);
  auto [ip, lp] = write_pair(dir, images, labels);
  vaerepro::ImageSet set = vaerepro::read_idx_pair(ip, lp);
  EXPECT_EQ(set.size(), 30);
  EXPECT_EQ(set.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(set.images, images));
  EXPECT_TRUE(torch::equal(set.labels, labels.to(torch::kInt64)));
}

TEST(IdxPair, CountMismatch) {
  TempDir dir;
  auto [ip, lp] =
      write_pair(dir, random_bytes({100, 28, 28}, 1), torch::zeros({99}, torch::kUInt8));
  EXPECT_THROW(vaerepro::read_idx_pair(ip, lp), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx_pair(ip, lp); });
  EXPECT_CONTAINS(msg, ip);
  EXPECT_CONTAINS(msg, lp);
  EXPECT_CONTAINS(msg, "count mismatch");
  EXPECT_CONTAINS(msg, "100 images");
  EXPECT_CONTAINS(msg, "99 labels");
}

TEST(IdxPair, ImagesNot3d) {
  TempDir dir;
  auto [ip, lp] = write_pair(dir, random_bytes({10, 784}, 1), torch::zeros({10}, torch::kUInt8));
  EXPECT_THROW(vaerepro::read_idx_pair(ip, lp), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx_pair(ip, lp); });
  EXPECT_CONTAINS(msg, ip);
  EXPECT_CONTAINS(msg, lp);
  EXPECT_CONTAINS(msg, "must be 3-d");
  EXPECT_CONTAINS(msg, "[10, 784]");
}

TEST(IdxPair, WrongRowsOrCols) {
  TempDir dir;
  auto [ip, lp] = write_pair(dir, random_bytes({10, 28, 27}, 1), torch::zeros({10}, torch::kUInt8));
  std::string msg = error_of([&] { vaerepro::read_idx_pair(ip, lp); });
  EXPECT_CONTAINS(msg, ip);
  EXPECT_CONTAINS(msg, lp);
  EXPECT_CONTAINS(msg, "must be 28x28");
  EXPECT_CONTAINS(msg, "found 28x27");
  // The same files are fine when 28x27 is what the caller expects.
  EXPECT_EQ(vaerepro::read_idx_pair(ip, lp, 28, 27).size(), 10);
  msg = error_of([&] { vaerepro::read_idx_pair(ip, lp, 32, 27); });
  EXPECT_CONTAINS(msg, "must be 32x27");
}

TEST(IdxPair, LabelsNot1d) {
  TempDir dir;
  auto [ip, lp] =
      write_pair(dir, random_bytes({10, 28, 28}, 1), torch::zeros({10, 1}, torch::kUInt8));
  std::string msg = error_of([&] { vaerepro::read_idx_pair(ip, lp); });
  EXPECT_CONTAINS(msg, ip);
  EXPECT_CONTAINS(msg, lp);
  EXPECT_CONTAINS(msg, "labels must be 1-d");
}

TEST(IdxPair, LabelOutOfRange) {
  TempDir dir;
  torch::Tensor labels = torch::zeros({10}, torch::kUInt8);
  labels[3] = 10;
  labels[7] = 200;
  auto [ip, lp] = write_pair(dir, random_bytes({10, 28, 28}, 1), labels);
  EXPECT_THROW(vaerepro::read_idx_pair(ip, lp), DataError);
  std::string msg = error_of([&] { vaerepro::read_idx_pair(ip, lp); });
  EXPECT_CONTAINS(msg, ip);
  EXPECT_CONTAINS(msg, lp);
  EXPECT_CONTAINS(msg, "label out of range");
  EXPECT_CONTAINS(msg, "2 labels are >= 10");
  EXPECT_CONTAINS(msg, "largest 200");
  EXPECT_CONTAINS(msg, "first at index 3");
  // With 201 classes the same labels are valid.
  EXPECT_EQ(vaerepro::read_idx_pair(ip, lp, 28, 28, 201).size(), 10);
}

TEST(IdxPair, MissingFileNamesIt) {
  TempDir dir;
  vaerepro::write_idx(dir.file("imgs"), random_bytes({2, 28, 28}, 1));
  std::string msg =
      error_of([&] { vaerepro::read_idx_pair(dir.file("imgs"), dir.file("labels-missing")); });
  EXPECT_CONTAINS(msg, dir.file("labels-missing"));
  EXPECT_CONTAINS(msg, "no such file");
}

}  // namespace
