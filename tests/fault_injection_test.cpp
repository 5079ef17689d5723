// Fault injection on a real chapter run (chapter-01, a smoke configuration
// that trains for a few seconds with frequent checkpoints): SIGKILL at random
// moments and rerun until complete; SIGINT and SIGTERM stop cleanly with the
// resume command; each ends with bitwise the numbers of an uninterrupted run
// (timings aside). Also: two runs with the same seed agree, a finished run is
// not trained again (unless --force, or with another configuration), a write
// failing half-way and a corrupt dataset leave nothing that looks complete.
// Issue #17: data replaced between two runs is another configuration; two
// concurrent runs of one configuration (the second refuses, naming the
// first's pid); SIGTERM during chapter 2's final estimate (exit 143, and the
// rerun reuses the trained model); a kill between the two steps of the final
// swap (one complete result stays, the leftover is cleaned up); a disk full
// at the final run.json (a .failed result, nothing saying "running").
// Issue #18: chapter 5 (VQ-VAEs, their PixelCNN priors and the judging
// classifier, each in the one training loop) killed with SIGKILL at random
// moments resumes and ends with bitwise the numbers and images of an
// uninterrupted run. Chapter 7 (its grid's points, each a TrainStep on the
// same loop, checkpointed in the point store) likewise.
#include <gtest/gtest.h>

#include "vaerepro/build_config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kSlug = "01-elbo-vs-latent";

// Long enough to be killed mid-training (a few seconds on one core), small
// enough that a checkpoint every 0.2 s is cheap.
std::vector<std::string> long_args(const fs::path& out) {
  return {"--profile",          "smoke", "--dataset", "synthetic", "--nz",      "3",
          "--manifold-nz",      "0",     "--hidden",  "200",       "--samples", "60000",
          "--eval-points",      "5",     "--threads", "1",         "--seed",    "3",
          "--checkpoint-every", "0.2",   "--out",     out.string()};
}

struct Child {
  pid_t pid = -1;
  fs::path log;
};

Child spawn(const std::vector<std::string>& args, const fs::path& log, const std::string& env = "",
            const std::string& program = "chapter-01") {
  Child c;
  c.log = log;
  c.pid = ::fork();
  if (c.pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // "A=1\nB=2": each assignment (one a line) put into the environment.
    std::vector<std::string> assignments;
    for (size_t start = 0; start < env.size();) {
      const size_t end = std::min(env.find('\n', start), env.size());
      if (end > start) assignments.push_back(env.substr(start, end - start));
      start = end + 1;
    }
    for (auto& a : assignments) ::putenv(strdup(a.c_str()));
    const std::string bin = std::string(VAEREPRO_BIN_DIR) + "/" + program;
    std::vector<char*> argv = {const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

/// Exit code, or 128 + signal when killed by one.
int wait_for(const Child& c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int run_to_end(const std::vector<std::string>& args, const fs::path& log,
               std::string* out = nullptr, const std::string& env = "",
               const std::string& program = "chapter-01") {
  const int code = wait_for(spawn(args, log, env, program));
  if (out) *out = slurp(log);
  return code;
}

/// metrics.json without what measures time (wall clock differs run to run).
json numbers(const fs::path& out, const std::string& slug = kSlug) {
  std::ifstream in(out / slug / "metrics.json");
  json j = json::parse(in);
  std::function<void(json&)> strip = [&](json& v) {
    if (v.is_object()) {
      for (const char* k : {"train_seconds", "eval_seconds", "wall_seconds", "sample_seconds"})
        v.erase(k);
      for (auto& [k, x] : v.items()) strip(x);
    } else if (v.is_array()) {
      for (auto& x : v) strip(x);
    }
  };
  strip(j);
  return j;
}

bool poll_until(const std::function<bool()>& cond, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

bool has_checkpoint(const fs::path& out) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(out / ".checkpoints", ec)) {
    if (e.path().extension() == ".ckpt") return true;
  }
  return false;
}

bool leftovers(const fs::path& out, std::string* what) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {
      *what = e.path().string();
      return true;
    }
  }
  return false;
}

class FaultInjection : public ::testing::Test {
 protected:
  static fs::path root;
  static json reference;
  static double reference_seconds;

  static void SetUpTestSuite() {
    root = fs::temp_directory_path() / ("vaerepro-faults-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    const auto t0 = std::chrono::steady_clock::now();
    std::string out;
    const int code = run_to_end(long_args(root / "reference"), root / "reference.log", &out);
    reference_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(code, 0) << out;
    reference = numbers(root / "reference");
  }
  static void TearDownTestSuite() { fs::remove_all(root); }
};

fs::path FaultInjection::root;
json FaultInjection::reference;
double FaultInjection::reference_seconds = 0;

TEST_F(FaultInjection, SameSeedSameNumbers) {
  ASSERT_FALSE(reference.is_null());
  std::string out;
  ASSERT_EQ(run_to_end(long_args(root / "again"), root / "again.log", &out), 0) << out;
  EXPECT_EQ(numbers(root / "again"), reference);
}

TEST_F(FaultInjection, SigkillAtRandomMomentsThenRerunGivesTheSameResult) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "killed";
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  std::mt19937 rng(seed);
  SCOPED_TRACE("kill moments drawn with seed " + std::to_string(seed) + "; uninterrupted run " +
               std::to_string(reference_seconds) + " s");
  int kills = 0, resumed = 0;
  for (int attempt = 0; attempt < 8 && kills < 4; ++attempt) {
    const fs::path log = root / ("killed-" + std::to_string(attempt) + ".log");
    Child c = spawn(long_args(out), log);
    // Wait for the first checkpoint of this run's configuration, then a random moment.
    poll_until([&] { return has_checkpoint(out); }, 30);
    std::uniform_real_distribution<double> delay(0.05, std::max(0.1, 0.35 * reference_seconds));
    std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
    const bool killed = ::kill(c.pid, SIGKILL) == 0;
    const int code = wait_for(c);
    const std::string text = slurp(log);
    if (text.find("resuming from") != std::string::npos ||
        text.find("already trained") != std::string::npos)
      ++resumed;
    if (code == 0) break;  // it finished before the kill landed
    ASSERT_TRUE(killed);
    ASSERT_EQ(code, 128 + SIGKILL) << text;
    ++kills;
    // A killed run leaves nothing that looks complete.
    EXPECT_FALSE(fs::exists(out / kSlug)) << text;
  }
  EXPECT_GE(kills, 2) << "the kills did not land mid-training";
  std::string text;
  ASSERT_EQ(run_to_end(long_args(out), root / "killed-final.log", &text), 0) << text;
  if (text.find("resuming from") != std::string::npos ||
      text.find("already trained") != std::string::npos)
    ++resumed;
  EXPECT_GE(resumed, 1) << "no run resumed from a checkpoint";
  std::cout << "[   info   ] " << kills << " SIGKILLs mid-run, " << resumed
            << " runs resumed from a checkpoint\n";
  EXPECT_EQ(numbers(out), reference);
  // The pictures too (decoded prior samples draw from the generator after training).
  for (const auto& e : fs::directory_iterator(root / "reference" / kSlug / "images")) {
    EXPECT_EQ(slurp(out / kSlug / "images" / e.path().filename()), slurp(e.path()))
        << e.path().filename();
  }
  // Checkpoints and staging folders of killed runs are cleaned up.
  EXPECT_FALSE(fs::exists(out / ".checkpoints" / kSlug));
  EXPECT_TRUE(!fs::exists(out / ".staging") || fs::is_empty(out / ".staging"));
  std::string left;
  EXPECT_FALSE(leftovers(out, &left)) << left;
}

TEST_F(FaultInjection, SigintAndSigtermSaveSayHowToResumeAndResumeExactly) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "stopped";
  int expected = 0;
  for (int sig : {SIGINT, SIGTERM}) {
    const fs::path log = root / ("stopped-" + std::to_string(sig) + ".log");
    Child c = spawn(long_args(out), log);
    // SIGINT once training has saved a checkpoint; SIGTERM once the rerun resumed from it.
    ASSERT_TRUE(poll_until(
        [&] {
          return sig == SIGINT ? has_checkpoint(out)
                               : slurp(log).find("resuming from") != std::string::npos;
        },
        30))
        << slurp(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(c.pid, sig);
    const int code = wait_for(c);
    const std::string text = slurp(log);
    ASSERT_EQ(code, 128 + sig) << text;
    EXPECT_NE(text.find(sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("to resume, run: "), std::string::npos) << text;
    EXPECT_NE(text.find("--out " + out.string()), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(out / kSlug)) << text;
    EXPECT_FALSE(fs::exists(out / (std::string(kSlug) + ".failed")))
        << "an interruption is not a failure";
    EXPECT_TRUE(!fs::exists(out / ".staging") || fs::is_empty(out / ".staging"));
    if (sig == SIGTERM) EXPECT_NE(text.find("resuming from"), std::string::npos) << text;
    ++expected;
  }
  ASSERT_EQ(expected, 2);
  std::string text;
  ASSERT_EQ(run_to_end(long_args(out), root / "stopped-final.log", &text), 0) << text;
  EXPECT_NE(text.find("resuming from"), std::string::npos) << text;
  EXPECT_EQ(numbers(out), reference);
}

TEST_F(FaultInjection, AFinishedRunIsNotTrainedAgainUnlessForcedOrChanged) {
  ASSERT_FALSE(reference.is_null());
  // A copy of the reference's output, so the other tests keep theirs.
  const fs::path out = root / "finished";
  fs::copy(root / "reference", out, fs::copy_options::recursive);
  const auto before = slurp(out / kSlug / "run.json");
  auto args = long_args(out);
  std::string text;
  ASSERT_EQ(run_to_end(args, root / "finished-1.log", &text), 0) << text;
  EXPECT_NE(text.find("nothing to train"), std::string::npos) << text;
  EXPECT_EQ(slurp(out / kSlug / "run.json"), before);
  // Another configuration (a different seed) trains.
  auto other = args;
  other[std::find(other.begin(), other.end(), "--seed") - other.begin() + 1] = "4";
  other[std::find(other.begin(), other.end(), "--samples") - other.begin() + 1] = "3000";
  ASSERT_EQ(run_to_end(other, root / "finished-2.log", &text), 0) << text;
  EXPECT_EQ(text.find("nothing to train"), std::string::npos) << text;
  // --force trains again (small budget: the same configuration as just run).
  other.push_back("--force");
  ASSERT_EQ(run_to_end(other, root / "finished-3.log", &text), 0) << text;
  EXPECT_EQ(text.find("nothing to train"), std::string::npos) << text;
  EXPECT_NE(text.find("Nz=3 done"), std::string::npos) << text;
}

TEST_F(FaultInjection, AWriteFailingHalfWayKeepsTheLastCompleteResult) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "faulty";
  fs::copy(root / "reference", out, fs::copy_options::recursive);
  auto args = long_args(out);
  args[std::find(args.begin(), args.end(), "--samples") - args.begin() + 1] = "2000";
  std::string text;
  EXPECT_EQ(run_to_end(args, root / "faulty.log", &text, "VAEREPRO_FAULT_WRITE=metrics.json"), 1)
      << text;
  EXPECT_NE(text.find("failed half-way"), std::string::npos) << text;
  EXPECT_EQ(numbers(out), reference) << "the last complete result was touched";
  std::ifstream in(out / (std::string(kSlug) + ".failed") / "run.json");
  const json failed = json::parse(in);
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_NE(failed["error"].get<std::string>().find("injected fault"), std::string::npos);
  EXPECT_FALSE(fs::exists(out / (std::string(kSlug) + ".failed") / "metrics.json"));
  std::string left;
  EXPECT_FALSE(leftovers(out, &left)) << left;
}

TEST_F(FaultInjection, ACorruptDatasetFileFailsNamingItAndWritesNoResult) {
  const fs::path data = root / "bad-data" / "mnist";
  fs::create_directories(data);
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    std::ofstream(data / f, std::ios::binary)
        << std::string("\x00\x00\x08\x03\x00\x00", 6);  // truncated header
  }
  std::string text;
  const fs::path out = root / "bad-data-out";
  EXPECT_EQ(run_to_end({"--profile", "smoke", "--dataset", "mnist", "--data-dir",
                        (root / "bad-data").string(), "--out", out.string()},
                       root / "bad-data.log", &text),
            1)
      << text;
  EXPECT_NE(text.find("idx"), std::string::npos) << text;
  EXPECT_NE(text.find((data).string()), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(out / kSlug));
}

// --- Issue #17 ------------------------------------------------------------------

/// A raw idx file: the header (magic 0x00 0x00 0x08 N, the sizes) and `body`.
void write_raw_idx(const fs::path& p, const std::vector<uint32_t>& dims, const std::string& body) {
  std::string header = {0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) header.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  std::ofstream(p, std::ios::binary) << header << body;
}

/// An MNIST-style data/mnist/ of random strokes drawn from `seed` (600 train, 200 test).
void write_idx_set(const fs::path& dir, unsigned seed) {
  fs::create_directories(dir);
  std::mt19937 rng(seed);
  for (const auto& [prefix, n] : {std::pair{"train", 600u}, std::pair{"t10k", 200u}}) {
    std::string images(static_cast<size_t>(n) * 784, '\0'), labels(n, '\0');
    for (uint32_t i = 0; i < n; ++i) {
      labels[i] = static_cast<char>(i % 10);
      // A bar whose row depends on the label, with noise: learnable, and the seed changes every
      // byte.
      for (int p = 0; p < 784; ++p) {
        const bool ink = (p / 28) / 3 == static_cast<int>(i % 10) || rng() % 13 == 0;
        images[static_cast<size_t>(i) * 784 + p] = static_cast<char>(ink ? 200 + rng() % 56 : 0);
      }
    }
    write_raw_idx(dir / (std::string(prefix) + "-images-idx3-ubyte"), {n, 28, 28}, images);
    write_raw_idx(dir / (std::string(prefix) + "-labels-idx1-ubyte"), {n}, labels);
  }
}

json run_json(const fs::path& out) {
  std::ifstream in(out / kSlug / "run.json");
  return json::parse(in);
}

TEST_F(FaultInjection, DataReplacedBetweenTwoRunsIsAnotherConfiguration) {
  const fs::path data = root / "replaced-data", out = root / "replaced";
  write_idx_set(data / "mnist", 1);
  const std::vector<std::string> args = {
      "--profile",   "smoke",     "--dataset", "mnist",         "--data-dir",
      data.string(), "--nz",      "3",         "--manifold-nz", "0",
      "--hidden",    "50",        "--samples", "1200",          "--eval-points",
      "2",           "--threads", "1",         "--out",         out.string()};
  std::string text;
  ASSERT_EQ(run_to_end(args, root / "replaced-1.log", &text), 0) << text;
  // The first line names the folders used (item 7).
  EXPECT_EQ(text.find("chapter-01: data from " + fs::weakly_canonical(data).string() +
                      "/, results into " + fs::weakly_canonical(out).string() + "/"),
            0u)
      << text;
  const json first = run_json(out);
  ASSERT_EQ(first["dataset"]["fingerprint"].get<std::string>().size(), 16u) << first.dump();
  // The same files: nothing to train.
  ASSERT_EQ(run_to_end(args, root / "replaced-2.log", &text), 0) << text;
  EXPECT_NE(text.find("nothing to train"), std::string::npos) << text;
  // Other files under the same names: trained again, and labelled with their own fingerprint.
  write_idx_set(data / "mnist", 2);
  ASSERT_EQ(run_to_end(args, root / "replaced-3.log", &text), 0) << text;
  EXPECT_EQ(text.find("nothing to train"), std::string::npos) << text;
  EXPECT_EQ(text.find("resuming"), std::string::npos) << text;
  const json second = run_json(out);
  EXPECT_NE(second["dataset"]["fingerprint"], first["dataset"]["fingerprint"]);
  EXPECT_NE(second["config_hash"], first["config_hash"]);
  EXPECT_NE(numbers(out), json()) << "a result";
}

TEST_F(FaultInjection, TwoConcurrentRunsOfOneConfigurationDoNotTrampleEachOther) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "concurrent";
  Child first = spawn(long_args(out), root / "concurrent-1.log");
  ASSERT_TRUE(poll_until([&] { return has_checkpoint(out); }, 30)) << slurp(first.log);
  std::string text;
  const int second = run_to_end(long_args(out), root / "concurrent-2.log", &text);
  EXPECT_EQ(second, 1) << text;
  EXPECT_NE(text.find("another run of this configuration"), std::string::npos) << text;
  EXPECT_NE(text.find("pid " + std::to_string(first.pid)), std::string::npos) << text;
  const int code = wait_for(first);
  ASSERT_EQ(code, 0) << slurp(first.log);
  EXPECT_EQ(numbers(out), reference) << "the first run went on undisturbed";
  EXPECT_FALSE(fs::exists(out / (std::string(kSlug) + ".failed"))) << "a refusal is no failure";
  // Its lock is gone with it: the next run finds the result complete.
  ASSERT_EQ(run_to_end(long_args(out), root / "concurrent-3.log", &text), 0) << text;
  EXPECT_NE(text.find("nothing to train"), std::string::npos) << text;
}

/// Waits up to `seconds` for the child; -2 when it is still running (then killed).
int wait_at_most(const Child& c, double seconds) {
  int status = 0;
  const bool ended =
      poll_until([&] { return ::waitpid(c.pid, &status, WNOHANG) == c.pid; }, seconds);
  if (!ended) {
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, &status, 0);
    return -2;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(FaultInjection, SigtermDuringAFinalEstimateStopsResumably) {
  // Chapter 2's final K = 20000 estimate on 200 + 200 examples runs for minutes on one thread.
  const fs::path out = root / "estimate";
  const std::vector<std::string> args = {
      "--profile",       "smoke", "--dataset",       "synthetic", "--n-train", "200",
      "--samples-small", "1000",  "--eval-examples", "200",       "--k-final", "20000",
      "--hmc-examples",  "0",     "--threads",       "1",         "--out",     out.string()};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const fs::path log = root / ("estimate-" + std::to_string(attempt) + ".log");
    Child c = spawn(args, log, "", "chapter-02");
    ASSERT_TRUE(
        poll_until([&] { return slurp(log).find("final estimates") != std::string::npos; }, 60))
        << slurp(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(c.pid, SIGTERM);
    const int code = wait_at_most(c, 60);
    const std::string text = slurp(log);
    ASSERT_EQ(code, 128 + SIGTERM) << text;
    EXPECT_NE(text.find("stopped by SIGTERM"), std::string::npos) << text;
    EXPECT_NE(text.find("to resume, run: "), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(out / "02-marginal-likelihood")) << text;
    EXPECT_FALSE(fs::exists(out / "02-marginal-likelihood.failed"))
        << "an interruption is not a failure";
    // The rerun takes the trained model from its checkpoint and estimates again.
    if (attempt == 1) EXPECT_NE(text.find("already trained"), std::string::npos) << text;
  }
}

TEST_F(FaultInjection, AKillBetweenTheTwoStepsOfTheFinalSwapLeavesOneCompleteResult) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "swap";
  fs::copy(root / "reference", out, fs::copy_options::recursive);
  auto args = long_args(out);
  args[std::find(args.begin(), args.end(), "--samples") - args.begin() + 1] = "2000";
  std::string text;
  EXPECT_EQ(run_to_end(args, root / "swap-1.log", &text, "VAEREPRO_FAULT_KILL=swap"), 128 + SIGKILL)
      << text;
  // A complete result is in place (the new one: the swap is one step), the old one beside it in
  // .staging.
  EXPECT_EQ(run_json(out)["status"], "complete");
  EXPECT_FALSE(fs::is_empty(out / ".staging")) << "the old result, set aside by the killed swap";
  // The next run cleans up after the killed one.
  ASSERT_EQ(run_to_end(args, root / "swap-2.log", &text), 0) << text;
  EXPECT_EQ(run_json(out)["status"], "complete");
  EXPECT_TRUE(fs::is_empty(out / ".staging")) << text;
  std::string left;
  EXPECT_FALSE(leftovers(out, &left)) << left;
}

TEST_F(FaultInjection, ADiskFullAtTheFinalRunJsonLeavesAFailedResultAndNothingRunning) {
  ASSERT_FALSE(reference.is_null());
  const fs::path out = root / "full";
  fs::copy(root / "reference", out, fs::copy_options::recursive);
  auto args = long_args(out);
  args[std::find(args.begin(), args.end(), "--samples") - args.begin() + 1] = "2000";
  args[std::find(args.begin(), args.end(), "--checkpoint-every") - args.begin() + 1] = "1000";
  std::string text;
  // Every run.json that says complete or failed fails half-way, as on a full disk.
  EXPECT_EQ(
      run_to_end(args, root / "full.log", &text,
                 "VAEREPRO_FAULT_WRITE=run.json\n"
                 "VAEREPRO_FAULT_WRITE_CONTAINS=\"status\": \"complete\"|\"status\": \"failed\""),
      1)
      << text;
  EXPECT_EQ(numbers(out), reference) << "the last complete result stays";
  EXPECT_TRUE(fs::exists(out / (std::string(kSlug) + ".failed"))) << text;
  EXPECT_TRUE(!fs::exists(out / ".staging") || fs::is_empty(out / ".staging"))
      << "nothing saying running";
  EXPECT_NE(text.find("checkpoints ("), std::string::npos)
      << "says what it leaves behind: " << text;
  EXPECT_NE(text.find("MB) are kept in"), std::string::npos) << text;
}

// --- Issue #18: chapter 5 in the one training loop ------------------------------

const char* kSlug05 = "05-vqvae-pixelcnn";

/// Chapter 5 at the smoke profile with a checkpoint every 0.2 s.
std::vector<std::string> chapter05_args(const fs::path& out) {
  return {"--profile", "smoke", "--dataset",          "synthetic", "--threads", "1",
          "--seed",    "3",     "--checkpoint-every", "0.2",       "--out",     out.string()};
}

TEST_F(FaultInjection, ChapterFiveKilledAtRandomMomentsResumesToTheSameNumbers) {
  const fs::path ref = root / "ch05-reference", out = root / "ch05-killed";
  std::string text;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_to_end(chapter05_args(ref), root / "ch05-reference.log", &text, "", "chapter-05"),
            0)
      << text;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json reference05 = numbers(ref, kSlug05);
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  std::mt19937 rng(seed);
  SCOPED_TRACE("kill moments drawn with seed " + std::to_string(seed) + "; uninterrupted run " +
               std::to_string(seconds) + " s");
  int kills = 0, resumed = 0;
  for (int attempt = 0; attempt < 12 && kills < 5; ++attempt) {
    const fs::path log = root / ("ch05-killed-" + std::to_string(attempt) + ".log");
    Child c = spawn(chapter05_args(out), log, "", "chapter-05");
    poll_until([&] { return has_checkpoint(out); }, 60);
    std::uniform_real_distribution<double> delay(0.05, std::max(0.1, 0.5 * seconds));
    std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
    const bool killed = ::kill(c.pid, SIGKILL) == 0;
    const int code = wait_for(c);
    const std::string t = slurp(log);
    if (t.find("resuming from") != std::string::npos ||
        t.find("already trained") != std::string::npos)
      ++resumed;
    if (code == 0) break;  // it finished before the kill landed
    ASSERT_TRUE(killed);
    ASSERT_EQ(code, 128 + SIGKILL) << t;
    ++kills;
    EXPECT_FALSE(fs::exists(out / kSlug05)) << t;
  }
  EXPECT_GE(kills, 2) << "the kills did not land mid-run";
  ASSERT_EQ(
      run_to_end(chapter05_args(out), root / "ch05-killed-final.log", &text, "", "chapter-05"), 0)
      << text;
  if (text.find("resuming from") != std::string::npos ||
      text.find("already trained") != std::string::npos)
    ++resumed;
  EXPECT_GE(resumed, 1) << "no run resumed from a checkpoint";
  std::cout << "[   info   ] chapter 5: " << kills << " SIGKILLs mid-run, " << resumed
            << " runs resumed from a checkpoint\n";
  EXPECT_EQ(numbers(out, kSlug05), reference05);
  // The pictures too (prior samples draw from the generator after training).
  for (const auto& e : fs::directory_iterator(ref / kSlug05 / "images")) {
    EXPECT_EQ(slurp(out / kSlug05 / "images" / e.path().filename()), slurp(e.path()))
        << e.path().filename();
  }
  EXPECT_FALSE(fs::exists(out / ".checkpoints" / kSlug05));
  std::string left;
  EXPECT_FALSE(leftovers(out, &left)) << left;
}

TEST_F(FaultInjection, ChapterFiveStoppedBySigtermSavesAndResumesExactly) {
  const fs::path ref = root / "ch05-reference", out = root / "ch05-stopped";
  if (!fs::exists(ref / kSlug05 / "metrics.json")) {
    std::string text;
    ASSERT_EQ(
        run_to_end(chapter05_args(ref), root / "ch05-reference-2.log", &text, "", "chapter-05"), 0)
        << text;
  }
  const fs::path log = root / "ch05-stopped.log";
  Child c = spawn(chapter05_args(out), log, "", "chapter-05");
  ASSERT_TRUE(poll_until([&] { return has_checkpoint(out); }, 60)) << slurp(log);
  ::kill(c.pid, SIGTERM);
  const int code = wait_for(c);
  std::string text = slurp(log);
  if (code != 0) {  // it may have finished first
    ASSERT_EQ(code, 128 + SIGTERM) << text;
    EXPECT_NE(text.find("stopped by SIGTERM"), std::string::npos) << text;
    EXPECT_NE(text.find("to resume, run: "), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(out / kSlug05)) << text;
    ASSERT_EQ(
        run_to_end(chapter05_args(out), root / "ch05-stopped-final.log", &text, "", "chapter-05"),
        0)
        << text;
    EXPECT_TRUE(text.find("resuming from") != std::string::npos ||
                text.find("already trained") != std::string::npos)
        << text;
  }
  EXPECT_EQ(numbers(out, kSlug05), numbers(ref, kSlug05));
}

// --- Chapter 7: the grid's points in the one training loop ------------------------

const char* kSlug07 = "07-improving-vaes";

/// Two points of chapter 7's grid (the IWAE and the CNN at N_z = 3), long enough to be
/// killed mid-training, with a checkpoint every 0.2 s.
std::vector<std::string> chapter07_args(const fs::path& out) {
  return {"--profile", "smoke", "--dataset",          "synthetic", "--variants", "iwae,cnn",
          "--nz",      "3",     "--samples",          "6000",      "--threads",  "1",
          "--seed",    "3",     "--checkpoint-every", "0.2",       "--out",      out.string()};
}

bool has_point_checkpoint(const fs::path& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out / ".points" / kSlug07, ec)) {
    if (e.path().extension() == ".ckpt") return true;
  }
  return false;
}

/// Chapter 7's numbers: metrics.json without timings and without where a run resumed.
json numbers07(const fs::path& out) {
  json j = numbers(out, kSlug07);
  for (auto& p : j["grid"]) p.erase("resumed_at");
  return j;
}

TEST_F(FaultInjection, ChapterSevenKilledAtRandomMomentsResumesToTheSameNumbers) {
  const fs::path ref = root / "ch07-reference", out = root / "ch07-killed";
  std::string text;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_to_end(chapter07_args(ref), root / "ch07-reference.log", &text, "", "chapter-07"),
            0)
      << text;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json reference07 = numbers07(ref);
  const unsigned seed = static_cast<unsigned>(std::random_device{}());
  std::mt19937 rng(seed);
  SCOPED_TRACE("kill moments drawn with seed " + std::to_string(seed) + "; uninterrupted run " +
               std::to_string(seconds) + " s");
  int kills = 0, resumed = 0;
  for (int attempt = 0; attempt < 12 && kills < 4; ++attempt) {
    const fs::path log = root / ("ch07-killed-" + std::to_string(attempt) + ".log");
    Child c = spawn(chapter07_args(out), log, "", "chapter-07");
    poll_until([&] { return has_point_checkpoint(out); }, 60);
    std::uniform_real_distribution<double> delay(0.05, std::max(0.1, 0.4 * seconds));
    std::this_thread::sleep_for(std::chrono::duration<double>(delay(rng)));
    const bool killed = ::kill(c.pid, SIGKILL) == 0;
    const int code = wait_for(c);
    const std::string t = slurp(log);
    if (t.find("resuming from") != std::string::npos) ++resumed;
    if (code == 0) break;  // it finished before the kill landed
    ASSERT_TRUE(killed);
    ASSERT_EQ(code, 128 + SIGKILL) << t;
    ++kills;
    EXPECT_FALSE(fs::exists(out / kSlug07)) << t;
  }
  EXPECT_GE(kills, 2) << "the kills did not land mid-run";
  ASSERT_EQ(
      run_to_end(chapter07_args(out), root / "ch07-killed-final.log", &text, "", "chapter-07"), 0)
      << text;
  if (text.find("resuming from") != std::string::npos) ++resumed;
  EXPECT_GE(resumed, 1) << "no run resumed from a checkpoint";
  std::cout << "[   info   ] chapter 7: " << kills << " SIGKILLs mid-run, " << resumed
            << " runs resumed from a checkpoint\n";
  EXPECT_EQ(numbers07(out), reference07);
  // The pictures too (the samples draw from the generator after training).
  for (const auto& e : fs::directory_iterator(ref / kSlug07 / "images")) {
    EXPECT_EQ(slurp(out / kSlug07 / "images" / e.path().filename()), slurp(e.path()))
        << e.path().filename();
  }
  EXPECT_FALSE(has_point_checkpoint(out)) << "a committed point's checkpoint is removed";
  std::string left;
  EXPECT_FALSE(leftovers(out, &left)) << left;
}

}  // namespace
