// The one training loop (loop.h): its state round-trips through JSON
// exactly; marks, epochs and the window of sums follow closed forms on a toy
// step; a non-finite term is named with its step although the host reads the
// history only every kLossCheckSteps steps; and every loop that adopts it
// (the MLP VAE's autograd step, the VQ-VAE, the gated PixelCNN prior, the
// judging classifier) stopped and resumed once or twice ends bitwise as an
// uninterrupted run: curve, parameters, buffers and the generator after it,
// and a complete checkpoint is reused without training.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "vaerepro/classifier.h"
#include "vaerepro/datasets.h"
#include "vaerepro/loop.h"
#include "vaerepro/pixelcnn.h"
#include "vaerepro/stop.h"
#include "vaerepro/trainer.h"
#include "vaerepro/vqvae.h"

namespace fs = std::filesystem;
using namespace vaerepro;
using nlohmann::json;

namespace {

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

TEST(LoopState, RoundTripsEveryFieldExactly) {
  LoopState s;
  s.complete = true;
  s.samples_seen = 123456789012345;
  s.step = 77;
  s.epoch = 3;
  s.position = 41;
  s.next_mark = 2;
  s.running = {0.1 + 0.2, -1e-300, std::nextafter(1.0, 2.0)};
  s.running_steps = 5;
  s.window = {3.0 / 7.0, 5e-324, -0.0};
  s.window_examples = 400;
  s.window_steps = 4;
  s.elapsed_seconds = 12.5;
  s.eval_seconds = 1.0 / 3.0;
  s.resumed_at = {400, 2000};
  s.curve =
      json::array({{{"samples_seen", 400}, {"x", 0.1}}, {{"samples_seen", 800}, {"x", 2.0 / 3.0}}});
  s.identity = {{"total_samples", 1000}, {"step", {{"beta", 0.25}}}};
  s.step_state = {{"first_loss", 1.0 / 9.0}};
  s.summary = {{"step", "hand-written"}};
  const LoopState back =
      LoopState::from_json(json::parse(s.to_json().dump()));  // as a checkpoint carries it
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_EQ(back.complete, s.complete);
  EXPECT_EQ(back.samples_seen, s.samples_seen);
  EXPECT_EQ(back.step, s.step);
  EXPECT_EQ(back.epoch, s.epoch);
  EXPECT_EQ(back.position, s.position);
  EXPECT_EQ(back.next_mark, s.next_mark);
  ASSERT_EQ(back.running.size(), 3u);
  ASSERT_EQ(back.window.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(same_bits(back.running[i], s.running[i])) << i;
    EXPECT_TRUE(same_bits(back.window[i], s.window[i])) << i;
  }
  EXPECT_EQ(back.running_steps, s.running_steps);
  EXPECT_EQ(back.window_examples, s.window_examples);
  EXPECT_EQ(back.window_steps, s.window_steps);
  EXPECT_TRUE(same_bits(back.elapsed_seconds, s.elapsed_seconds));
  EXPECT_TRUE(same_bits(back.eval_seconds, s.eval_seconds));
  EXPECT_TRUE(same_bits(back.train_seconds(), 12.5 - 1.0 / 3.0));
  EXPECT_EQ(back.resumed_at, s.resumed_at);
  EXPECT_TRUE(same_bits(back.curve[1]["x"].get<double>(), 2.0 / 3.0));
  EXPECT_EQ(back.identity, s.identity);
  EXPECT_EQ(back.step_state, s.step_state);
  EXPECT_EQ(back.summary, s.summary);
}

TEST(LoopState, AMissingFieldIsNamed) {
  json j = LoopState{}.to_json();
  j.erase("window");
  try {
    LoopState::from_json(j);
    FAIL() << "a state without its window was read";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'window'"), std::string::npos) << e.what();
  }
  j = LoopState{}.to_json();
  j["step"] = "seven";
  EXPECT_THROW(LoopState::from_json(j), std::runtime_error);
}

/// A model with a parameter and a buffer that training updates outside the
/// optimizer (as an EMA codebook's counts are).
struct ToyImpl : torch::nn::Module {
  ToyImpl() {
    w = register_parameter("w", torch::zeros({1}));
    seen = register_buffer("seen", torch::zeros({1}, torch::kFloat64));
  }
  torch::Tensor w, seen;
};
TORCH_MODULE(Toy);

/// Least squares on y_i = 2 x_i with SGD; writes [B, sum of the indices] (or
/// NaN in the second term at `nan_at`), counts its calls and its examples in
/// a buffer, and evaluates w and the window's sums at marks.
class ToyStep : public TrainStep {
 public:
  explicit ToyStep(int64_t n, int64_t nan_at = 0)
      : x_(torch::linspace(0, 1, n)),
        optimizer_(toy_->parameters(), torch::optim::SGDOptions(0.1)),
        nan_at_(nan_at) {}
  std::vector<std::string> terms() const override { return {"count term", "index term"}; }
  torch::Dtype history_dtype() const override { return torch::kFloat64; }
  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    ++calls;
    auto xb = x_.index_select(0, idx);
    auto loss = (toy_->w * xb - 2 * xb).pow(2).mean();
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();
    torch::NoGradGuard no_grad;
    toy_->seen += static_cast<double>(idx.size(0));
    const double second = calls == nan_at_ ? std::nan("") : 0.0;
    at::stack_out(sums, {torch::tensor(static_cast<double>(idx.size(0)), torch::kFloat64),
                         idx.to(torch::kFloat64).sum() + second});
  }
  torch::nn::Module& model() override { return *toy_; }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }
  json evaluate(const Mark& m) override {
    return {
        {"w", toy_->w.item<double>()},
        {"window", m.window},
        {"examples", m.window_examples},
        {"steps", m.window_steps},
        {"step", m.step},
        {"draw",
         torch::rand({1}).item<double>()}};  // evaluation draws; the loop restores the generator
  }
  std::string describe(const std::vector<double>& m) const override { return std::to_string(m[0]); }

  Toy toy_;
  int64_t calls = 0;

 private:
  torch::Tensor x_;
  torch::optim::SGD optimizer_;
  int64_t nan_at_;
};

TEST(TrainingLoop, MarksEpochsAndWindowsFollowTheirClosedForms) {
  torch::manual_seed(1);
  const int64_t n = 10;
  ToyStep step(n);
  LoopOptions o;
  o.total_samples = 3 * n;
  o.batch_size = 4;
  o.drop_last = false;                       // 4 + 4 + 2 per epoch
  o.marks = {n, 2 * n, 3 * n, 0, 5 * n, n};  // unsorted, repeated, outside: cleaned up
  o.progress_seconds = 0;
  TrainingLoop loop(step, n, torch::kCPU, o);
  const LoopState& s = loop.run();
  EXPECT_EQ(s.step, 9);
  EXPECT_EQ(step.calls, 9);
  EXPECT_EQ(s.epoch, 3);
  ASSERT_EQ(s.curve.size(), 3u);
  for (int e = 0; e < 3; ++e) {
    const auto& row = s.curve[static_cast<size_t>(e)];
    EXPECT_EQ(row["samples_seen"], (e + 1) * n);
    EXPECT_EQ(row["epochs"].get<double>(), e + 1.0);
    EXPECT_EQ(row["step"], 3 * (e + 1));
    // Every example once an epoch: the window sums B to N and the indices to N(N-1)/2.
    EXPECT_EQ(row["window"][0].get<double>(), 10.0);
    EXPECT_EQ(row["window"][1].get<double>(), 45.0);
    EXPECT_EQ(row["examples"], n);
    EXPECT_EQ(row["steps"], 3);
  }
  EXPECT_EQ(step.toy_->seen.item<double>(), 30.0);

  // drop_last: two full minibatches an epoch, the remainder never seen.
  ToyStep full(n);
  o.drop_last = true;
  o.total_samples = 16;
  o.marks = {8, 16};
  TrainingLoop loop2(full, n, torch::kCPU, o);
  const LoopState& s2 = loop2.run();
  EXPECT_EQ(s2.step, 4);
  EXPECT_EQ(s2.epoch, 2);
  EXPECT_EQ(s2.curve[0]["window"][0].get<double>(), 8.0);
  EXPECT_EQ(s2.curve[1]["examples"], 8);
}

TEST(TrainingLoop, ANonFiniteTermIsNamedWithItsStepAfterOneReadOfTheHistory) {
  torch::manual_seed(2);
  clear_stop();
  ToyStep step(10, /*nan_at=*/3);
  LoopOptions o;
  o.total_samples = 10 * 100;
  o.batch_size = 5;
  o.progress_seconds = 0;
  o.label = "toy";
  TrainingLoop loop(step, 10, torch::kCPU, o);
  try {
    loop.run();
    FAIL() << "a NaN term did not stop the run";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(
        what.find(
            "toy: the training loss became non-finite at step 3 (15 samples; the index term is "
            "non-finite)"),
        std::string::npos)
        << what;
    EXPECT_NE(what.find("learning rate 0.1"), std::string::npos) << what;
  }
  // The host read the history once, after kLossCheckSteps steps, not after each.
  EXPECT_EQ(step.calls, kLossCheckSteps);
}

/// A checkpoint in a fresh folder per test.
class LoopResume : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    torch::set_num_threads(1);
    dir = fs::temp_directory_path() /
          ("vaerepro-loop-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    clear_stop();
  }
  void TearDown() override {
    clear_stop();
    ::unsetenv("VAEREPRO_FAULT_STOP_STEP");
    fs::remove_all(dir);
  }
  CheckpointOptions checkpoint() const {
    CheckpointOptions c;
    c.path = (dir / "model.ckpt").string();
    c.config_hash = "h";
    c.every_seconds = 0;
    return c;
  }
  /// Every parameter and buffer of `m`, flattened to float64, then a draw
  /// from the generator (its state after training).
  static torch::Tensor fingerprint(const torch::nn::Module& m) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : m.parameters())
      parts.push_back(p.detach().to(torch::kFloat64).reshape({-1}));
    for (const auto& b : m.buffers()) parts.push_back(b.detach().to(torch::kFloat64).reshape({-1}));
    parts.push_back(torch::rand({3}, torch::kFloat64));
    return torch::cat(parts);
  }

  /// `train(checkpoint)` returns a JSON of the run's numbers and its fingerprint.
  /// Uninterrupted, then stopped at the given steps (each a run that throws
  /// Interrupted) and resumed; then once more, reusing the complete checkpoint.
  void expect_resumes_exactly(
      const std::function<std::pair<json, torch::Tensor>(const CheckpointOptions&)>& train,
      const std::vector<int>& stops) {
    const auto reference = train(CheckpointOptions{});
    const auto ck = checkpoint();
    for (int at : stops) {
      ::setenv("VAEREPRO_FAULT_STOP_STEP", std::to_string(at).c_str(), 1);
      EXPECT_THROW(train(ck), Interrupted) << "stop after step " << at;
      ::unsetenv("VAEREPRO_FAULT_STOP_STEP");
      clear_stop();
      ASSERT_TRUE(fs::exists(ck.path));
    }
    const auto resumed = train(ck);
    EXPECT_EQ(resumed.first, reference.first);
    EXPECT_TRUE(torch::equal(resumed.second, reference.second))
        << "parameters, buffers or generator differ";
    const auto reused = train(ck);  // complete: nothing trained, the same model and generator
    EXPECT_EQ(reused.first, reference.first);
    EXPECT_TRUE(torch::equal(reused.second, reference.second));
  }
};

/// Strips what measures time.
json without_timings(json j) {
  std::function<void(json&)> strip = [&](json& v) {
    if (v.is_object()) {
      for (const char* k : {"train_seconds", "eval_seconds", "wall_seconds"}) v.erase(k);
      for (auto& [k, x] : v.items()) strip(x);
    } else if (v.is_array()) {
      for (auto& x : v) strip(x);
    }
  };
  strip(j);
  return j;
}

TEST_F(LoopResume, ToyModelBuffersTravelWithTheCheckpoint) {
  expect_resumes_exactly(
      [&](const CheckpointOptions& ck) {
        torch::manual_seed(3);
        ToyStep step(10);
        LoopOptions o;
        o.total_samples = 60;
        o.batch_size = 4;
        o.drop_last = false;
        o.marks = {20, 40, 60};
        o.progress_seconds = 0;
        o.checkpoint = ck;
        TrainingLoop loop(step, 10, torch::kCPU, o);
        const json curve = without_timings(loop.run().curve);
        return std::make_pair(curve, fingerprint(*step.toy_));
      },
      {4, 11});
}

TEST_F(LoopResume, AutogradVae) {
  const Dataset d = make_synthetic(120, 40, 3);
  const TensorData data = prepare_tensors(d, Protocol::kBinarized, torch::kCPU);
  expect_resumes_exactly(
      [&](const CheckpointOptions& ck) {
        torch::manual_seed(4);
        Vae vae(VaeOptions(data.dim(), Architecture{{16}, 3}));
        auto opt = make_optimizer(vae->parameters(), {"adam", 1e-3, 0, /*fused=*/false});
        TrainOptions t;
        t.total_samples = 1000;
        t.batch_size = 25;
        t.eval_at = {200, 500};
        t.eval_batch = 40;
        t.progress_seconds = 0;
        t.hand_written_step = false;
        t.checkpoint = ck;
        const TrainResult r = train_vae(*vae, *opt, data, t);
        json curve = json::array();
        for (const auto& p : r.curve) curve.push_back(p.to_json());
        EXPECT_EQ(r.step, "autograd (hand-written step turned off)");
        return std::make_pair(without_timings(curve), fingerprint(*vae));
      },
      {7, 30});
}

TEST_F(LoopResume, VqVae) {
  const Dataset d = make_synthetic(32, 8, 3);
  const auto x = d.train.images.to(torch::kFloat32).div(255.0).view({32, 784});
  expect_resumes_exactly(
      [&](const CheckpointOptions& ck) {
        torch::manual_seed(5);
        VqVae model(VqVaeOptions(8, 4).channels(8));
        VqTrainOptions o;
        o.epochs = 3;
        o.batch_size = 10;  // 10 + 10 + 10 + 2 per epoch
        o.lr = 3e-3;
        o.curve_points = 5;
        o.progress_seconds = 0;
        o.checkpoint = ck;
        // Dynamic binarisation: the batch draws from the generator too.
        const auto r = train_vqvae(
            *model, 32,
            [&](const torch::Tensor& idx) { return x.index_select(0, idx).bernoulli(); },
            x.narrow(0, 0, 8), o);
        json curve = json::array();
        for (const auto& p : r.curve) curve.push_back(p.to_json());
        EXPECT_EQ(r.samples_seen, 96);
        EXPECT_EQ(curve.size(), 5u);
        return std::make_pair(without_timings(curve), fingerprint(*model));
      },
      {3, 9});
}

TEST_F(LoopResume, GatedPixelCnnPrior) {
  torch::manual_seed(6);
  const auto maps = torch::randint(4, {30, 3, 3}, torch::kInt64);
  expect_resumes_exactly(
      [&](const CheckpointOptions& ck) {
        torch::manual_seed(7);
        GatedPixelCnn net(GatedPixelCnnOptions(4).channels(8).blocks(1).height(3).width(3));
        PriorTrainOptions o;
        o.epochs = 3;
        o.batch_size = 8;  // 8 + 8 + 8 + 6 per epoch
        o.lr = 1e-2;
        o.progress_seconds = 0;
        o.checkpoint = ck;
        const auto r = train_prior(*net, maps, maps.narrow(0, 0, 10), o);
        json curve = json::array();
        for (const auto& p : r.curve) curve.push_back(p.to_json());
        EXPECT_EQ(curve.size(), 3u);
        return std::make_pair(without_timings(curve), fingerprint(*net));
      },
      {5});
}

TEST_F(LoopResume, JudgingClassifier) {
  torch::manual_seed(8);
  TensorData data;
  data.train = torch::rand({50, 16});
  data.train_labels = torch::randint(10, {50}, torch::kLong);
  data.test = data.train.narrow(0, 0, 20);
  data.test_labels = data.train_labels.narrow(0, 0, 20);
  expect_resumes_exactly(
      [&](const CheckpointOptions& ck) {
        torch::manual_seed(9);
        Classifier classifier(16, 10);
        ClassifierTrainOptions o;
        o.epochs = 3;
        o.batch_size = 8;  // six full minibatches an epoch, two examples dropped
        o.progress_seconds = 0;
        o.checkpoint = ck;
        const auto r = train_classifier(*classifier, data, o);
        EXPECT_EQ(r.samples_seen, 3 * 48);
        return std::make_pair(json{{"accuracy", r.accuracy}, {"samples", r.samples_seen}},
                              fingerprint(*classifier));
      },
      {4, 13});
}

TEST_F(LoopResume, AStopBeforeTheFirstStepTrainsNothing) {
  torch::manual_seed(10);
  ToyStep step(10);
  LoopOptions o;
  o.total_samples = 20;
  o.batch_size = 5;
  o.progress_seconds = 0;
  o.label = "toy";
  request_stop(SIGINT);
  TrainingLoop loop(step, 10, torch::kCPU, o);
  try {
    loop.run();
    FAIL() << "not stopped";
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.exit_code(), 130);
    EXPECT_NE(std::string(e.what()).find("toy: stopped by SIGINT before training"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(step.calls, 0);
}

}  // namespace
