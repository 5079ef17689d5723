// Issue #17 in process: results that cannot go stale (the data fingerprint in
// every configuration hash), runs that cannot trample each other (the run
// lock), a result swap that always leaves one complete result, data errors
// that say what is wrong (0 images, wrong file types, gzip garbage), VQ-VAE
// and prior divergence, long evaluations that honour the stop flag, the
// suite's folders found from anywhere, and the warnings for settings that
// are not honoured. Program-level cases run build/bin/prepare-data.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>

#include "run_program.h"
#include "vaerepro/build_config.h"
#include "vaerepro/chapter.h"
#include "vaerepro/classifier.h"
#include "vaerepro/cli.h"
#include "vaerepro/datasets.h"
#include "vaerepro/estimators.h"
#include "vaerepro/image.h"
#include "vaerepro/pixelcnn.h"
#include "vaerepro/points.h"
#include "vaerepro/results.h"
#include "vaerepro/runtime.h"
#include "vaerepro/vqvae.h"

namespace fs = std::filesystem;
using namespace vaerepro;

namespace {

const char* kFiles[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

class Reliability : public ::testing::Test {
 protected:
  fs::path root;
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("vaerepro-reliability-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override {
    clear_stop();
    fs::remove_all(root);
  }

  /// An MNIST-style folder data/mnist/ from a synthetic set (n_train, n_test), `gz` or raw.
  fs::path write_mnist(const fs::path& data, int64_t n_train = 40, int64_t n_test = 20,
                       bool gz = true, uint64_t seed = 1) {
    const Dataset d = make_synthetic(n_train, n_test, seed);
    const fs::path dir = data / "mnist";
    fs::create_directories(dir);
    const std::string ext = gz ? ".gz" : "";
    write_idx((dir / (std::string(kFiles[0]) + ext)).string(), d.train.images);
    write_idx((dir / (std::string(kFiles[1]) + ext)).string(), d.train.labels.to(torch::kUInt8));
    write_idx((dir / (std::string(kFiles[2]) + ext)).string(), d.test.images);
    write_idx((dir / (std::string(kFiles[3]) + ext)).string(), d.test.labels.to(torch::kUInt8));
    return dir;
  }
  DataPaths paths(const fs::path& data) {
    DataPaths p;
    p.data_dir = data.string();
    return p;
  }
  std::string data_error(const fs::path& data) {
    try {
      load_dataset("mnist", paths(data));
    } catch (const DataError& e) {
      return e.what();
    }
    return "(no error)";
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- Item 1: the data fingerprint ---------------------------------------------

TEST_F(Reliability, TheFingerprintFollowsTheBytesNotTheFileForm) {
  write_mnist(root / "gz", 40, 20, true);
  write_mnist(root / "raw", 40, 20, false);
  write_mnist(root / "other", 40, 20, true, 2);
  const Dataset a = load_dataset("mnist", paths(root / "gz"));
  const Dataset b = load_dataset("mnist", paths(root / "raw"));
  const Dataset c = load_dataset("mnist", paths(root / "other"));
  ASSERT_EQ(a.fingerprint.size(), 16u);
  EXPECT_EQ(a.fingerprint, b.fingerprint) << "the same images and labels, raw or gzip";
  EXPECT_NE(a.fingerprint, c.fingerprint) << "other images";
  // One pixel, one label.
  ImageSet train = a.train;
  train.images = a.train.images.clone();
  train.images[0][0][0] = static_cast<uint8_t>(train.images[0][0][0].item<int>() ^ 1);
  EXPECT_NE(dataset_fingerprint(train, a.test), a.fingerprint);
  ImageSet test = a.test;
  test.labels = a.test.labels.clone();
  test.labels[3] = (test.labels[3].item<int64_t>() + 1) % 10;
  EXPECT_NE(dataset_fingerprint(a.train, test), a.fingerprint);
  EXPECT_EQ(make_synthetic().fingerprint, make_synthetic().fingerprint);
  EXPECT_FALSE(make_synthetic().fingerprint.empty());
}

TEST_F(Reliability, TheFingerprintEntersTheRunHashAndThePointHash) {
  ChapterSetup s;
  s.program = "chapter-test";
  s.slug = "00-test";
  s.common.out = (root / "out").string();
  s.dataset_name = "mnist";
  s.dataset.fingerprint = "0000000000000001";
  const nlohmann::json config = {{"nz", 3}};
  const std::string first = RunCheckpoints(s, config).hash();
  s.dataset.fingerprint = "0000000000000002";
  EXPECT_NE(RunCheckpoints(s, config).hash(), first)
      << "a run on other files is another configuration";
  EXPECT_EQ(s.run_json("t")["dataset"]["fingerprint"], "0000000000000002");
  const PointStore one(s.common.out, s.slug, "0000000000000001"),
      two(s.common.out, s.slug, "0000000000000002");
  EXPECT_NE(one.dir("beta=1", config), two.dir("beta=1", config));
  EXPECT_NE(point_checkpoint(s, one, "beta=1", config).config_hash,
            point_checkpoint(s, two, "beta=1", config).config_hash);
  // A point committed under one fingerprint is not loaded under another.
  const std::string staging = one.begin("beta=1", config);
  one.commit(staging, "beta=1", config, {{"value", 1}});
  EXPECT_TRUE(one.load("beta=1", config).has_value());
  EXPECT_FALSE(two.load("beta=1", config).has_value());
}

// --- Items 5, 11, 15: data errors that say what is wrong ---------------------

TEST_F(Reliability, AnIdxFileWithNoImagesIsADataErrorNamingIt) {
  const fs::path dir = write_mnist(root / "data");
  write_idx((dir / (std::string(kFiles[0]) + ".gz")).string(),
            torch::empty({0, 28, 28}, torch::kUInt8));
  write_idx((dir / (std::string(kFiles[1]) + ".gz")).string(), torch::empty({0}, torch::kUInt8));
  const std::string e = data_error(root / "data");
  EXPECT_NE(e.find((dir / kFiles[0]).string()), std::string::npos) << e;
  EXPECT_NE(e.find("0 images"), std::string::npos) << e;
}

TEST_F(Reliability, WrongFileTypesAreReportedAsWhatTheyAreNotAsMissing) {
  const fs::path data = root / "data";
  const fs::path dir = write_mnist(data);
  const fs::path target = dir / (std::string(kFiles[1]) + ".gz");
  struct Case {
    const char* what;
    std::function<void()> make;
  };
  const std::vector<Case> cases = {
      {"a directory", [&] { fs::create_directories(target); }},
      {"FIFO", [&] { ASSERT_EQ(::mkfifo(target.c_str(), 0644), 0); }},
      {"character device", [&] { fs::create_symlink("/dev/zero", target); }},
      {"symbolic link loop", [&] { fs::create_symlink(target, target); }},
  };
  for (const auto& c : cases) {
    fs::remove_all(target);
    c.make();
    const std::string e = data_error(data);
    EXPECT_NE(e.find(c.what), std::string::npos) << e;
    EXPECT_NE(e.find(target.string()), std::string::npos) << e;
    EXPECT_EQ(e.find("network"), std::string::npos) << "not missing: " << e;
    // read_idx on it directly says the same.
    try {
      read_idx(target.string());
      ADD_FAILURE() << c.what;
    } catch (const DataError& r) {
      EXPECT_NE(std::string(r.what()).find(c.what), std::string::npos) << r.what();
    }
    // auto falls back (its decision is unchanged) and says why.
    EXPECT_EQ(resolve_dataset_name("auto", paths(data)), "fashion-mnist");
    EXPECT_NE(auto_fallback_reason(paths(data)).find(c.what), std::string::npos)
        << auto_fallback_reason(paths(data));
  }
}

TEST_F(Reliability, AutoSaysWhyItFellBack) {
  EXPECT_NE(auto_fallback_reason(paths(root / "none")).find("does not exist"), std::string::npos);
  const fs::path dir = write_mnist(root / "data");
  EXPECT_EQ(auto_fallback_reason(paths(root / "data")), "");
  fs::remove(dir / (std::string(kFiles[3]) + ".gz"));
  const std::string why = auto_fallback_reason(paths(root / "data"));
  EXPECT_NE(why.find("lacks"), std::string::npos) << why;
  EXPECT_NE(why.find(kFiles[3]), std::string::npos) << why;
}

TEST_F(Reliability, GzipWithTrailingGarbageIsRejectedLikeARawFile) {
  const fs::path file = root / "labels-idx1-ubyte.gz";
  write_idx(file.string(), torch::arange(10, torch::kUInt8));
  EXPECT_EQ(read_idx(file.string()).numel(), 10);
  {
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << "garbage";
  }
  try {
    read_idx(file.string());
    ADD_FAILURE() << "garbage after the gzip stream was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("7 bytes of trailing garbage"), std::string::npos)
        << e.what();
  }
  // Two gzip members (as `cat a.gz b.gz` makes) are one stream of data: accepted.
  const fs::path two = root / "two-idx1-ubyte.gz";
  const unsigned char header[8] = {0, 0, 8, 1, 0, 0, 0, 3};
  const unsigned char body[3] = {1, 2, 3};
  for (const auto& [bytes, n] : {std::pair{header, 8}, std::pair{body, 3}}) {
    gzFile g = gzopen(two.c_str(), "ab");
    gzwrite(g, bytes, static_cast<unsigned>(n));
    gzclose(g);
  }
  EXPECT_EQ(read_idx(two.string()).numel(), 3);
}

// --- Item 3: the run lock -------------------------------------------------------

TEST_F(Reliability, ASecondRunOfTheSameConfigurationIsRefusedNamingThePid) {
  ChapterSetup s;
  s.program = "chapter-test";
  s.slug = "00-test";
  s.common.out = (root / "out").string();
  s.dataset_name = "synthetic";
  const nlohmann::json config = {{"nz", 3}};
  RunWriter w1(s.common.out, s.slug);
  auto first = std::make_unique<RunCheckpoints>(s, config);
  ASSERT_TRUE(first->start(w1));
  const fs::path lock = fs::path(s.common.out) / ".locks" / ("00-test-" + first->hash() + ".lock");
  ASSERT_TRUE(fs::exists(lock));
  EXPECT_EQ(slurp(lock), std::to_string(::getpid()) + "\n");
  {
    RunCheckpoints second(s, config);
    RunWriter w2(s.common.out, s.slug + "-second");
    try {
      second.start(w2);
      ADD_FAILURE() << "two runs of one configuration at once";
    } catch (const RunLocked& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(::getpid())), std::string::npos)
          << e.what();
    }
    w2.abandon();
  }
  // Another configuration is not blocked.
  RunCheckpoints other(s, {{"nz", 5}});
  RunWriter w3(s.common.out, s.slug + "-other");
  EXPECT_NO_THROW(other.start(w3));
  w3.abandon();
  // Released when the holder ends (the kernel drops it on death too).
  first.reset();
  RunCheckpoints again(s, config);
  RunWriter w4(s.common.out, s.slug + "-again");
  EXPECT_NO_THROW(again.start(w4));
  w4.abandon();
  w1.abandon();
}

// --- Items 8 and 13: the result swap, failures while writing ----------------

TEST_F(Reliability, ReplacingAResultLeavesNoOldCopyBehind) {
  const std::string out = (root / "out").string();
  for (int i = 0; i < 2; ++i) {
    RunWriter w(out, "00-test");
    w.write_json("metrics.json", {{"i", i}});
    w.finish({{"i", i}});
  }
  EXPECT_EQ(nlohmann::json::parse(slurp(root / "out/00-test/metrics.json"))["i"], 1);
  EXPECT_TRUE(fs::is_empty(root / "out/.staging")) << "the old result is deleted after the swap";
}

TEST_F(Reliability, AFailureThatCannotBeRecordedLeavesNothingSayingRunning) {
  const std::string out = (root / "out").string();
  ::setenv("VAEREPRO_FAULT_WRITE", "run.json", 1);
  ::setenv("VAEREPRO_FAULT_WRITE_CONTAINS", "\"title\"",
           1);  // the full record fails, a short one fits
  {
    RunWriter w(out, "00-test");
    w.fail({{"title", "t"}}, "disk full");
  }
  EXPECT_EQ(nlohmann::json::parse(slurp(root / "out/00-test.failed/run.json"))["status"], "failed");
  ::setenv("VAEREPRO_FAULT_WRITE_CONTAINS", "\"failed\"", 1);  // no record fits
  {
    RunWriter w(out, "00-test");
    EXPECT_THROW(w.fail({{"title", "t"}}, "disk full"), std::runtime_error);
  }
  ::unsetenv("VAEREPRO_FAULT_WRITE");
  ::unsetenv("VAEREPRO_FAULT_WRITE_CONTAINS");
  EXPECT_TRUE(fs::exists(root / "out/00-test.failed"));
  EXPECT_FALSE(fs::exists(root / "out/00-test.failed/run.json"))
      << "no run.json saying \"running\"";
  EXPECT_TRUE(fs::is_empty(root / "out/.staging"));
}

TEST_F(Reliability, APngWriteFailureSaysTheSystemsReason) {
  try {
    write_png((root / "no-such-folder" / "x.png").string(), torch::zeros({4, 4}));
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos)
        << e.what();
  }
}

// --- Item 6: divergence -----------------------------------------------------------

TEST_F(Reliability, AnExplodingVqVaeLossStopsTheRunWithADiagnosis) {
  // The loss stays finite but grows a millionfold (as the codebook term did,
  // to 1e17): it must stop, not report a complete run.
  torch::manual_seed(1);
  const Dataset d = make_synthetic(32, 8, 3);
  auto x = d.train.images.to(torch::kFloat32).div(255.0).view({32, 784});
  VqVae model(VqVaeOptions(8, 4).channels(8));
  VqTrainOptions o;
  o.epochs = 4;
  o.batch_size = 16;
  o.curve_points = 1;
  o.progress_seconds = 0;
  o.label = "vq";
  int calls = 0;
  try {
    train_vqvae(
        *model, 32,
        [&](const torch::Tensor& idx) {
          return x.index_select(0, idx) * (++calls > 1 ? 1e4 : 1.0);
        },
        x.narrow(0, 0, 8), o);
    ADD_FAILURE() << "a diverged VQ-VAE trained to the end";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("vq: the VQ-VAE diverged at step 2"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--lr"), std::string::npos) << e.what();
  }
}

TEST_F(Reliability, AnExplodingPriorStopsTheRunWithADiagnosis) {
  torch::manual_seed(2);
  auto maps = torch::randint(4, {32, 3, 3}, torch::kInt64);
  GatedPixelCnn net(GatedPixelCnnOptions(4).channels(8).blocks(1));
  PriorTrainOptions o;
  o.epochs = 1;
  o.batch_size = 16;
  o.progress_seconds = 0;
  o.label = "prior";
  o.divergence_factor = 1e-3;  // far below a uniform guess: the first step counts as diverged
  try {
    train_prior(*net, maps, maps, o);
    ADD_FAILURE() << "no divergence check";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("prior: the prior diverged"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("uniform guess"), std::string::npos) << e.what();
  }
  o.divergence_factor = 10;  // the default: an ordinary run is not stopped
  EXPECT_NO_THROW(train_prior(*net, maps, maps, o));
}

// --- Item 4: long evaluations and training loops honour the stop flag -------

TEST_F(Reliability, EstimatorsClassifierAndChapterFiveLoopsStopWhenAsked) {
  torch::manual_seed(3);
  Vae vae(VaeOptions(16, Architecture{{8}, 2}));
  const auto x = torch::rand({4, 16}).bernoulli();
  request_stop(SIGTERM);
  EXPECT_THROW(importance_sampled_on_set(*vae, x, 5000), Interrupted);
  HmcOptions h;
  h.burn_in = 10;
  h.samples = 10;
  EXPECT_THROW(hmc_on_set(*vae, x, h, 4), Interrupted);
  TensorData data;
  data.train = torch::rand({20, 16});
  data.train_labels = torch::randint(10, {20}, torch::kLong);
  data.test = data.train;
  data.test_labels = data.train_labels;
  Classifier classifier(16, 10);
  ClassifierTrainOptions co;
  co.epochs = 1;
  co.batch_size = 10;
  EXPECT_THROW(train_classifier(*classifier, data, co), Interrupted);
  VqVae model(VqVaeOptions(4, 2).channels(8));
  const auto images = torch::rand({8, 784});
  VqTrainOptions vo;
  vo.progress_seconds = 0;
  EXPECT_THROW(
      train_vqvae(
          *model, 8, [&](const torch::Tensor& i) { return images.index_select(0, i); }, images, vo),
      Interrupted);
  GatedPixelCnn net(GatedPixelCnnOptions(2).channels(8).blocks(1));
  PriorTrainOptions po;
  po.progress_seconds = 0;
  EXPECT_THROW(train_prior(*net, torch::zeros({4, 2, 2}, torch::kInt64),
                           torch::zeros({4, 2, 2}, torch::kInt64), po),
               Interrupted);
  clear_stop();
  EXPECT_NO_THROW(importance_sampled_on_set(*vae, x, 5));
}

// --- Item 7: the suite's folders from anywhere --------------------------------

TEST_F(Reliability, TheSuitesFoldersAreFoundFromAnyWorkingDirectory) {
  const fs::path before = fs::current_path();
  fs::current_path(root);
  const fs::path checkout = VAEREPRO_SOURCE_DIR;
  EXPECT_EQ(locate_suite_folder("data", "data"), (checkout / "data").string());
  EXPECT_EQ(locate_suite_folder("results", "results"), (checkout / "results").string());
  EXPECT_EQ(locate_suite_folder("elsewhere", "data"), "elsewhere") << "given folders are kept";
  fs::create_directories(root / "data");
  EXPECT_EQ(locate_suite_folder("data", "data"), "data")
      << "the working directory's own data/ wins";
  fs::current_path(before);
}

// --- Items 12 and 17: settings that are not honoured are said ---------------

TEST_F(Reliability, RuntimeWarningsForSettingsThatAreNotHonoured) {
  RuntimeInfo info;
  info.blas_is_optimized = true;
  info.available_cores = 2;
  info.intra_op_threads = 64;
  info.requested_threads = 64;
  info.malloc_tuned = true;
  auto all = [&] {
    std::string s;
    for (const auto& w : runtime_warnings(info, torch::kCPU)) s += w + "\n";
    return s;
  };
  EXPECT_NE(all().find("--threads 64 is more than the 2 cores"), std::string::npos) << all();
  info.intra_op_threads = 2;
  info.requested_threads = 0;
  info.omp_num_threads_env = "1";
  EXPECT_NE(all().find("OMP_NUM_THREADS=1 is set, but --threads 0"), std::string::npos) << all();
  info.omp_num_threads_env = "";
  info.openblas_coretype_env = "garbage";
  info.openblas_corename = "Haswell";
  EXPECT_NE(all().find("not a core type OpenBLAS took: it uses the Haswell kernels"),
            std::string::npos)
      << all();
  info.openblas_coretype_env = "HASWELL";
  EXPECT_NE(all().find("OpenBLAS uses those kernels (Haswell)"), std::string::npos) << all();
  info.openblas_coretype_env = "";
  EXPECT_EQ(all(), "");
}

TEST_F(Reliability, SighupStopsLikeSigtermAndAClosedPipeIsNoDeath) {
  // Item 17: both killed a run without saving.
  install_stop_handlers("resume");
  ::raise(SIGHUP);
  EXPECT_EQ(stop_signal(), SIGHUP);
  EXPECT_EQ(signal_name(SIGHUP), "SIGHUP");
  clear_stop();
  struct sigaction now {};
  ::sigaction(SIGPIPE, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  ::raise(SIGPIPE);  // ignored: the test goes on
  SUCCEED();
}

// --- Item 14: prepare-data validates its --out ------------------------------

TEST_F(Reliability, PrepareDataValidatesItsOwnOutFolderWithOrWithoutASlash) {
  const fs::path digits = root / "digits";
  fs::create_directories(digits);
  for (int k = 0; k < 10; ++k) {
    nlohmann::json data = nlohmann::json::array();
    for (int i = 0; i < 5 * 784; ++i) data.push_back((i + k) % 7 / 6.0);
    std::ofstream(digits / (std::to_string(k) + ".json"))
        << nlohmann::json({{"data", data}}).dump();
  }
  // A sibling mnist-10k folder that is broken must not be what is checked.
  fs::create_directories(root / "mnist-10k");
  for (const char* out : {"custom/", "custom2"}) {
    const auto r =
        vaerepro::test::run_program("prepare-data", "--npm-digits '" + digits.string() +
                                                        "' --out '" + (root / out).string() + "'");
    EXPECT_EQ(r.code, 0) << out << "\n" << r.output;
    EXPECT_NE(r.output.find("40 train / 10 test"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(root / out / "t10k-labels-idx1-ubyte.gz")) << out;
  }
}

}  // namespace
