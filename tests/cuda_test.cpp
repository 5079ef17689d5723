// The CUDA paths, on a GPU: device selection, the hand-written step's ATen
// path (mlp_step.h) against autograd on the same device, whole training runs
// through train_vae against autograd's and torch::optim's on the GPU and
// against the CPU's, and a checkpointed run stopped and resumed on the GPU
// (the CUDA generator's state in the checkpoint). ctest names these tests
// with the suffix _cuda (tests/CMakeLists.txt); each one skips, saying why,
// where LibTorch sees no CUDA device (Debian's CPU build: here, CI), and runs
// on the GPU machine (scripts/gpu-check.sh).
#include <gtest/gtest.h>

#include <csignal>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/checkpoint.h"
#include "vaerepro/cli.h"
#include "vaerepro/compat.h"
#include "vaerepro/mlp_step.h"
#include "vaerepro/models.h"
#include "vaerepro/objectives.h"
#include "vaerepro/protocol.h"
#include "vaerepro/runtime.h"
#include "vaerepro/trainer.h"
#include "toy_data.h"

namespace fs = std::filesystem;
using namespace vaerepro;

namespace {

#define SKIP_WITHOUT_CUDA()                                                                   \
  do {                                                                                        \
    if (!torch::cuda::is_available()) {                                                       \
      GTEST_SKIP() << "no CUDA device: this LibTorch (" << compat::torch_version()            \
                   << ") sees none; these tests run on a GPU machine (scripts/gpu-check.sh)"; \
    }                                                                                         \
  } while (0)

const torch::Device kGpu(torch::kCUDA, 0);

TensorData to_device(TensorData d, const torch::Device& device) {
  for (torch::Tensor* t :
       {&d.train, &d.train_eval, &d.test, &d.test_gray, &d.train_labels, &d.test_labels}) {
    if (t->defined()) *t = t->to(device);
  }
  return d;
}

std::vector<torch::Tensor> gradients(VaeImpl& vae) {
  std::vector<torch::Tensor> g;
  for (auto& q : vae.parameters())
    g.push_back(q.grad().defined() ? q.grad().clone() : torch::Tensor());
  return g;
}

TEST(Cuda, DeviceSelectionAndRuntimeSeeTheGpu) {
  SKIP_WITHOUT_CUDA();
  EXPECT_TRUE(select_device("cuda").is_cuda());
  EXPECT_TRUE(select_device("auto").is_cuda());
  const RuntimeInfo info = configure_runtime(0);
  EXPECT_TRUE(info.cuda_available);
  EXPECT_GE(info.cuda_device_count, 1);
  // The generator handles of compat.h reach the CUDA generator: a state
  // saved and restored gives the same draws again.
  auto gen = compat::default_generator(kGpu);
  const auto saved = compat::generator_state(gen);
  const auto a = torch::randn({1000}, torch::TensorOptions().device(kGpu));
  compat::set_generator_state(gen, saved);
  const auto b = torch::randn({1000}, torch::TensorOptions().device(kGpu));
  EXPECT_TRUE(torch::equal(a, b));
  compat::synchronize(kGpu);
}

struct GpuStepCase {
  std::string arch;
  Activation activation;
  ConditionEncoding condition;
  double beta;
  int64_t batch;
};

std::string gpu_case_name(const ::testing::TestParamInfo<GpuStepCase>& info) {
  std::string a = to_string(info.param.activation) + "_" + info.param.arch + "_" +
                  to_string(info.param.condition);
  std::string name;
  for (char ch : a) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    if (ch != '_' || (!name.empty() && name.back() != '_')) name += ch;
  }
  return name;
}

class CudaHandWrittenStep : public ::testing::TestWithParam<GpuStepCase> {};

TEST_P(CudaHandWrittenStep, EveryGradientMatchesAutogradOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  const GpuStepCase& p = GetParam();
  const int64_t d = 24, classes = 3;
  torch::manual_seed(11);
  VaeOptions o(d, parse_architecture(p.arch));
  o.activation(p.activation).condition_dim(condition_dim(p.condition, classes)).init_std(0.3);
  Vae vae(o);
  vae->to(kGpu);
  auto x = torch::rand({p.batch, d}).bernoulli().to(kGpu);
  auto c =
      encode_condition(torch::randint(0, classes, {p.batch}, torch::kLong), p.condition, classes);
  if (c.defined()) c = c.to(kGpu);

  torch::manual_seed(5);  // seeds the CUDA generator too: the same eps for both paths
  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  auto t = training_loss(*vae, x, c, p.beta);
  t.loss.backward();
  const auto expected = gradients(*vae);

  for (auto& q : vae->parameters()) q.mutable_grad().reset();
  MlpVaeStep step(*vae);
  auto sums = torch::full({2}, std::nan(""), torch::TensorOptions().device(kGpu));
  torch::manual_seed(5);
  step.compute_gradients(x, c, p.beta, sums);
  EXPECT_EQ(step.sparse_steps(), 0) << "the sparse first layer is a CPU path";
  const auto got = gradients(*vae);
  const auto s = sums.cpu();
  EXPECT_NEAR(s[0].item<double>(), t.log_likelihood.item<double>(),
              1e-4 * std::abs(t.log_likelihood.item<double>()));
  EXPECT_NEAR(s[1].item<double>(), t.kl.item<double>(),
              1e-4 * std::abs(t.kl.item<double>()) + 1e-5);
  const auto named = vae->named_parameters();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(got[i].defined()) << named[i].key();
    EXPECT_TRUE(got[i].is_cuda()) << named[i].key();
    const double scale = expected[i].abs().max().item<double>();
    const double err = (got[i] - expected[i]).abs().max().item<double>();
    EXPECT_LE(err, 1e-4 * scale + 1e-7)
        << named[i].key() << ": max |difference| " << err << " against " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaHandWrittenStep,
                         ::testing::Values(GpuStepCase{"[16, 4]", Activation::kTanh,
                                                       ConditionEncoding::kNone, 1.0, 9},
                                           GpuStepCase{"[12, 8, 3]", Activation::kRelu,
                                                       ConditionEncoding::kOneHot, 2.0, 10},
                                           GpuStepCase{"[10, 2]", Activation::kSigmoid,
                                                       ConditionEncoding::kRaw, 4.0, 7}),
                         gpu_case_name);

struct TrainedRun {
  TrainResult result;
  std::vector<torch::Tensor> params;  // on the CPU
};

/// 60 steps of a [32, 3] VAE on the four-prototype set, on `device`.
TrainedRun train_on(const torch::Device& device, bool hand_written, bool fused, uint64_t seed = 9) {
  const TensorData d = to_device(vaerepro::test::four_prototypes(), device);
  torch::manual_seed(seed);
  Vae vae(VaeOptions(64, parse_architecture("[32, 3]")));
  vae->to(device);
  OptimizerOptions oo{"adagrad", 0.05, 0.0};
  oo.fused = fused;
  auto opt = make_optimizer(vae->parameters(), oo);
  TrainOptions t;
  t.total_samples = 32 * 60;
  t.batch_size = 32;
  t.progress_seconds = 0;
  t.eval_at = {32 * 20};
  t.hand_written_step = hand_written;
  TrainedRun r;
  r.result = train_vae(*vae, *opt, d, t);
  for (auto& q : vae->parameters()) {
    EXPECT_EQ(q.device().type(), device.type());
    r.params.push_back(q.detach().cpu().clone());
  }
  return r;
}

TEST(CudaTraining, HandWrittenFusedRunStaysWithAutogradAndTorchOptimOnTheGpu) {
  SKIP_WITHOUT_CUDA();
  const TrainedRun hand = train_on(kGpu, true, true);
  const TrainedRun autograd = train_on(kGpu, false, true);
  const TrainedRun plain = train_on(kGpu, true, false);
  EXPECT_EQ(hand.result.step, "hand-written");
  EXPECT_EQ(autograd.result.step.rfind("autograd", 0), 0u) << autograd.result.step;
  for (size_t i = 0; i < hand.params.size(); ++i) {
    EXPECT_LE((hand.params[i] - autograd.params[i]).abs().max().item<double>(), 1e-4)
        << "autograd, parameter " << i;
    EXPECT_LE((hand.params[i] - plain.params[i]).abs().max().item<double>(), 1e-4)
        << "torch::optim, parameter " << i;
  }
  const double e = hand.result.curve.back().test.elbo;
  EXPECT_NEAR(autograd.result.curve.back().test.elbo, e, 1e-3 * std::abs(e));
  EXPECT_NEAR(plain.result.curve.back().test.elbo, e, 1e-3 * std::abs(e));
}

TEST(CudaTraining, GpuRunLearnsWhatTheCpuRunLearns) {
  SKIP_WITHOUT_CUDA();
  // The GPU draws other random numbers (its own generator), so the runs are
  // not step for step the same: their bounds agree within what separates
  // CPU runs of other seeds.
  const TrainedRun gpu = train_on(kGpu, true, true);
  std::vector<double> cpu;
  for (uint64_t seed : {9, 10, 11})
    cpu.push_back(train_on(torch::kCPU, true, true, seed).result.curve.back().test.elbo);
  const double lo = *std::min_element(cpu.begin(), cpu.end()),
               hi = *std::max_element(cpu.begin(), cpu.end());
  const double g = gpu.result.curve.back().test.elbo;
  const double slack = std::max(2.0 * (hi - lo), 0.05 * std::abs(hi));
  EXPECT_GE(g, lo - slack) << "GPU test ELBO " << g << ", CPU seeds [" << lo << ", " << hi << "]";
  EXPECT_LE(g, hi + slack) << "GPU test ELBO " << g << ", CPU seeds [" << lo << ", " << hi << "]";
  EXPECT_GT(g, gpu.result.curve.front().test.elbo) << "it learned";
}

class CudaCheckpoint : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("vaerepro-cuda-ckpt-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    clear_stop();
  }
  void TearDown() override {
    clear_stop();
    fs::remove_all(dir);
  }
  struct Outcome {
    TrainResult result;
    torch::Tensor params, after;
  };
  Outcome train(const CheckpointOptions& ck, const std::string& optimizer,
                std::set<int> stop_at_marks = {}) {
    const TensorData data = to_device(vaerepro::test::four_prototypes(), kGpu);
    torch::manual_seed(7);
    Vae vae(VaeOptions(64, Architecture{{32}, 4}));
    vae->to(kGpu);
    auto opt =
        make_optimizer(vae->parameters(), {optimizer, optimizer == "adam" ? 1e-3 : 0.02, 1e-3});
    TrainOptions t;
    t.total_samples = 3000;
    t.batch_size = 40;
    t.eval_at = {400, 1000, 2000};
    t.eval_batch = 50;
    t.progress_seconds = 0;
    t.label = "cuda-test";
    t.checkpoint = ck;
    int mark = 0;
    t.evaluate_extra = [&](VaeImpl&) -> nlohmann::json {
      if (stop_at_marks.count(mark++)) request_stop(SIGINT);
      return nlohmann::json::object();
    };
    Outcome o;
    o.result = train_vae(*vae, *opt, data, t);
    std::vector<torch::Tensor> flat;
    for (const auto& p : vae->parameters()) flat.push_back(p.detach().reshape({-1}).cpu());
    o.params = torch::cat(flat);
    o.after =
        torch::rand({4}, torch::TensorOptions().device(kGpu)).cpu();  // the CUDA generator after
    return o;
  }
};

TEST_F(CudaCheckpoint, StoppedAndResumedOnTheGpuEqualsUninterrupted) {
  SKIP_WITHOUT_CUDA();
  for (const std::string optimizer : {"adagrad", "adam"}) {
    SCOPED_TRACE(optimizer);
    CheckpointOptions ck;
    ck.path = (dir / (optimizer + ".ckpt")).string();
    ck.config_hash = "cuda";
    ck.every_seconds = 0;
    const Outcome reference = train({}, optimizer);
    EXPECT_THROW(train(ck, optimizer, {1}), Interrupted);
    ASSERT_TRUE(fs::exists(ck.path));
    clear_stop();
    const Outcome resumed = train(ck, optimizer);
    ASSERT_EQ(resumed.result.resumed_at.size(), 1u);
    EXPECT_EQ(resumed.result.resumed_at[0], 1000);
    ASSERT_EQ(resumed.result.curve.size(), reference.result.curve.size());
    // cuBLAS and the CUDA kernels used here are deterministic run to run on
    // one GPU; a tolerance (not bitwise, as on the CPU) leaves room for a
    // kernel that is not.
    for (size_t i = 0; i < reference.result.curve.size(); ++i) {
      EXPECT_NEAR(resumed.result.curve[i].test.elbo, reference.result.curve[i].test.elbo,
                  1e-5 * std::abs(reference.result.curve[i].test.elbo))
          << "point " << i;
    }
    EXPECT_LE((resumed.params - reference.params).abs().max().item<double>(), 1e-5);
    EXPECT_TRUE(torch::equal(resumed.after, reference.after))
        << "the CUDA generator's state after training differs";
  }
}

}  // namespace
