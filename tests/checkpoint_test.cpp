// Checkpoints in the training loop, in process: a run stopped and resumed
// (once or several times, with Adagrad or Adam, dynamic binarisation and
// evaluation drawing random numbers) gives bitwise the curve, the parameters
// and the generator state of an uninterrupted run; a checkpoint of another
// configuration, or a corrupt one, is not used (with a message); a NaN stops
// the run with a diagnosis and keeps the last good checkpoint; a checkpoint
// write that fails half-way leaves no file behind.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <unistd.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/cli.h"
#include "vaerepro/datasets.h"
#include "vaerepro/protocol.h"
#include "vaerepro/results.h"
#include "vaerepro/trainer.h"

namespace fs = std::filesystem;
using namespace vaerepro;

namespace {

struct Outcome {
  TrainResult result;
  torch::Tensor params;  // all parameters, flattened
  torch::Tensor after;   // a draw from the global generator after training
};

class CheckpointTest : public ::testing::Test {
 protected:
  fs::path dir;
  TensorData binarized, gray;
  void SetUp() override {
    torch::set_num_threads(1);
    dir = fs::temp_directory_path() /
          ("vaerepro-ckpt-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    const Dataset d = make_synthetic(300, 100, 3);
    binarized = prepare_tensors(d, Protocol::kBinarized, torch::kCPU);
    gray = prepare_tensors(d, Protocol::kGrayBce, torch::kCPU);
    clear_stop();
  }
  void TearDown() override {
    clear_stop();
    ::unsetenv("VAEREPRO_FAULT_WRITE");
    fs::remove_all(dir);
  }

  CheckpointOptions checkpoint(const std::string& hash = "h1", int64_t every_steps = 0) const {
    CheckpointOptions c;
    c.path = (dir / "model.ckpt").string();
    c.config_hash = hash;
    c.every_seconds = 0;
    c.every_steps = every_steps;
    return c;
  }

  /// Trains a small model from seed 7; `stop_at_marks`: evaluation marks
  /// (0-based, counted in this call) at which a stop is requested, as SIGINT would.
  Outcome train(const CheckpointOptions& ck, const std::string& optimizer = "adagrad",
                std::set<int> stop_at_marks = {}, const TensorData* data_in = nullptr,
                int64_t hidden = 32) {
    const TensorData& data = data_in ? *data_in : binarized;
    torch::manual_seed(7);
    Vae vae(VaeOptions(data.dim(), Architecture{{hidden}, 4}));
    auto opt =
        make_optimizer(vae->parameters(), {optimizer, optimizer == "adam" ? 1e-3 : 0.02, 1e-3});
    TrainOptions t;
    t.total_samples = 3000;
    t.batch_size = 40;  // 300 = 7 * 40 + 20: the epoch's remainder is dropped
    t.eval_at = {400, 1000, 2000};
    t.eval_batch = 50;
    t.progress_seconds = 0;
    t.label = "test";
    t.checkpoint = ck;
    int mark = 0;
    t.evaluate_extra = [&](VaeImpl&) -> nlohmann::json {
      if (stop_at_marks.count(mark++)) request_stop(SIGINT);
      return {{"draw", torch::rand({1}).item<double>()}};  // evaluation draws too
    };
    Outcome o;
    o.result = train_vae(*vae, *opt, data, t);
    std::vector<torch::Tensor> flat;
    for (const auto& p : vae->parameters()) flat.push_back(p.detach().reshape({-1}).clone());
    o.params = torch::cat(flat);
    o.after = torch::rand({4});
    return o;
  }

  static void expect_same(const Outcome& a, const Outcome& b) {
    ASSERT_EQ(a.result.curve.size(), b.result.curve.size());
    for (size_t i = 0; i < a.result.curve.size(); ++i) {
      const auto &p = a.result.curve[i], &q = b.result.curve[i];
      EXPECT_EQ(p.samples_seen, q.samples_seen);
      EXPECT_EQ(p.train.elbo, q.train.elbo) << "point " << i;  // bitwise
      EXPECT_EQ(p.train.kl, q.train.kl) << "point " << i;
      EXPECT_EQ(p.test.elbo, q.test.elbo) << "point " << i;
      EXPECT_EQ(p.test.log_likelihood, q.test.log_likelihood) << "point " << i;
      EXPECT_EQ(p.extra, q.extra) << "point " << i;
    }
    EXPECT_EQ(a.result.samples_seen, b.result.samples_seen);
    EXPECT_TRUE(torch::equal(a.params, b.params));
    EXPECT_TRUE(torch::equal(a.after, b.after)) << "the generator state after training differs";
  }

  std::string read_bytes(const fs::path& p) const {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

class ResumeTest : public CheckpointTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ResumeTest, StoppedAndResumedEqualsUninterrupted) {
  const std::string optimizer = GetParam();
  const Outcome reference = train({}, optimizer);
  const auto ck = checkpoint("h1");
  EXPECT_THROW(train(ck, optimizer, {1}), Interrupted);  // after the mark at 1000 samples
  ASSERT_TRUE(fs::exists(ck.path));
  clear_stop();
  const Outcome resumed = train(ck, optimizer);
  ASSERT_EQ(resumed.result.resumed_at.size(), 1u);
  EXPECT_EQ(resumed.result.resumed_at[0], 1000);
  expect_same(reference, resumed);
  // The checkpoint is now complete: a third call trains nothing and leaves
  // model and generator as training did.
  const Outcome reused = train(ck, optimizer);
  expect_same(reference, reused);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeTest, ::testing::Values("adagrad", "adam"));

TEST_F(CheckpointTest, SeveralStopsWithPeriodicSavesStillEqual) {
  const Outcome reference = train({});
  const auto ck = checkpoint("h1", 3);  // also a save every 3 steps
  EXPECT_THROW(train(ck, "adagrad", {0}), Interrupted);
  clear_stop();
  EXPECT_THROW(train(ck, "adagrad", {1}), Interrupted);  // the resumed call's second mark: 2000
  clear_stop();
  const Outcome resumed = train(ck);
  EXPECT_EQ(resumed.result.resumed_at, (std::vector<int64_t>{400, 2000}));
  expect_same(reference, resumed);
}

TEST_F(CheckpointTest, AnotherConfigurationIsNotResumedFrom) {
  const Outcome reference = train({});
  EXPECT_THROW(train(checkpoint("old-config"), "adagrad", {1}), Interrupted);
  clear_stop();
  ::testing::internal::CaptureStderr();
  const Outcome fresh = train(checkpoint("new-config"));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("another configuration"), std::string::npos) << err;
  EXPECT_TRUE(fresh.result.resumed_at.empty());
  expect_same(reference, fresh);  // trained from scratch, not mixed
}

TEST_F(CheckpointTest, ACorruptCheckpointIsIgnoredWithAMessage) {
  const Outcome reference = train({});
  const auto ck = checkpoint();
  std::ofstream(ck.path) << "PK\x03\x04 this is not a checkpoint";
  ::testing::internal::CaptureStderr();
  const Outcome fresh = train(ck);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot be read"), std::string::npos) << err;
  expect_same(reference, fresh);
}

TEST_F(CheckpointTest, ACheckpointOfAnotherShapeIsRefusedNamingTheFile) {
  const auto ck = checkpoint();
  EXPECT_THROW(train(ck, "adagrad", {0}), Interrupted);
  clear_stop();
  try {
    train(ck, "adagrad", {}, nullptr, /*hidden=*/16);
    FAIL() << "a checkpoint of a [32, 4] model was loaded into a [16, 4] one";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("does not fit"), std::string::npos) << what;
    EXPECT_NE(what.find(ck.path), std::string::npos) << what;
  }
}

TEST_F(CheckpointTest, NanStopsWithADiagnosisAndKeepsTheLastGoodCheckpoint) {
  const auto ck = checkpoint("h1", 1);
  EXPECT_THROW(train(ck, "adagrad", {0}, &gray), Interrupted);  // saved at 400 samples
  clear_stop();
  const std::string good = read_bytes(ck.path);
  TensorData poisoned = gray;
  poisoned.train = torch::full_like(gray.train, std::nan(""));
  try {
    train(ck, "adagrad", {}, &poisoned);
    FAIL() << "a NaN loss did not stop the run";
  } catch (const Interrupted&) {
    FAIL() << "stopped, not failed";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("non-finite"), std::string::npos) << what;
    EXPECT_NE(what.find("step"), std::string::npos) << what;
    // NaN pixels reach the encoder too, so both terms are named.
    EXPECT_NE(what.find("both terms are non-finite"), std::string::npos) << what;
    EXPECT_NE(what.find("learning rate 0.02"), std::string::npos) << what;
    EXPECT_NE(what.find("last good checkpoint (400 samples)"), std::string::npos) << what;
  }
  EXPECT_EQ(read_bytes(ck.path), good);
}

TEST_F(CheckpointTest, AWriteFailingHalfWayLeavesNothingBehind) {
  ::setenv("VAEREPRO_FAULT_WRITE", ".ckpt", 1);
  const auto ck = checkpoint("h1", 2);
  try {
    train(ck);
    FAIL() << "the injected fault did not surface";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("failed half-way"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(ck.path), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir)) << "a partial checkpoint or temporary file was left";
}

TEST_F(CheckpointTest, LeftoversOfKilledSavesAreRemovedThoseOfLiveOnesKept) {
  const auto ck = checkpoint();
  const fs::path dead = ck.path + ".tmp.999999999";                       // no such process
  const fs::path live = ck.path + ".tmp." + std::to_string(::getppid());  // alive: our parent
  std::ofstream(dead) << "half a checkpoint";
  std::ofstream(live) << "being written";
  const Outcome reference = train({});
  expect_same(reference, train(ck));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
}

TEST(StopFlag, ThrowIfStoppedNamesTheSignalAndExitCode) {
  clear_stop();
  EXPECT_NO_THROW(throw_if_stopped("x"));
  request_stop(SIGTERM);
  try {
    throw_if_stopped("chapter-99 N=3");
    FAIL();
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.exit_code(), 143);
    EXPECT_NE(std::string(e.what()).find("SIGTERM"), std::string::npos);
  }
  clear_stop();
}

TEST(ShellCommand, QuotesAndDrops) {
  const char* argv[] = {"bin/chapter-01", "--out", "my results", "--force", "--nz", "3,5", "it's"};
  EXPECT_EQ(shell_command(7, const_cast<char**>(argv), {"--force"}),
            "bin/chapter-01 --out 'my results' --nz 3,5 'it'\\''s'");
}

}  // namespace
