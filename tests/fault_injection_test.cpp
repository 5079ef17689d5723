// Fault injection on a real chapter run (chapter-01, a smoke configuration
// that trains for a few seconds with frequent checkpoints): SIGKILL at random
// moments and rerun until complete; SIGINT and SIGTERM stop cleanly with the
// resume command; each ends with bitwise the numbers of an uninterrupted run
// (timings aside). Also: two runs with the same seed agree, a finished run is
// not trained again (unless --force, or with another configuration), a write
// failing half-way and a corrupt dataset leave nothing that looks complete.
#include <gtest/gtest.h>

#include "vaerepro/build_config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
  return {"--profile", "smoke", "--dataset", "synthetic", "--nz", "3", "--manifold-nz", "0", "--hidden", "200",
          "--samples", "60000", "--eval-points", "5", "--threads", "1", "--seed", "3",
          "--checkpoint-every", "0.2", "--out", out.string()};
}

struct Child {
  pid_t pid = -1;
  fs::path log;
};

Child spawn(const std::vector<std::string>& args, const fs::path& log, const std::string& env = "") {
  Child c;
  c.log = log;
  c.pid = ::fork();
  if (c.pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (!env.empty()) ::putenv(const_cast<char*>(env.c_str()));
    const std::string bin = std::string(VAEREPRO_BIN_DIR) + "/chapter-01";
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

int run_to_end(const std::vector<std::string>& args, const fs::path& log, std::string* out = nullptr,
               const std::string& env = "") {
  const int code = wait_for(spawn(args, log, env));
  if (out) *out = slurp(log);
  return code;
}

/// metrics.json without what measures time (wall clock differs run to run).
json numbers(const fs::path& out) {
  std::ifstream in(out / kSlug / "metrics.json");
  json j = json::parse(in);
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
    reference_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
    if (text.find("resuming from") != std::string::npos || text.find("already trained") != std::string::npos) ++resumed;
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
  if (text.find("resuming from") != std::string::npos || text.find("already trained") != std::string::npos) ++resumed;
  EXPECT_GE(resumed, 1) << "no run resumed from a checkpoint";
  std::cout << "[   info   ] " << kills << " SIGKILLs mid-run, " << resumed << " runs resumed from a checkpoint\n";
  EXPECT_EQ(numbers(out), reference);
  // The pictures too (decoded prior samples draw from the generator after training).
  for (const auto& e : fs::directory_iterator(root / "reference" / kSlug / "images")) {
    EXPECT_EQ(slurp(out / kSlug / "images" / e.path().filename()), slurp(e.path())) << e.path().filename();
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
    ASSERT_TRUE(poll_until([&] {
      return sig == SIGINT ? has_checkpoint(out) : slurp(log).find("resuming from") != std::string::npos;
    }, 30)) << slurp(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(c.pid, sig);
    const int code = wait_for(c);
    const std::string text = slurp(log);
    ASSERT_EQ(code, 128 + sig) << text;
    EXPECT_NE(text.find(sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"), std::string::npos) << text;
    EXPECT_NE(text.find("to resume, run: "), std::string::npos) << text;
    EXPECT_NE(text.find("--out " + out.string()), std::string::npos) << text;
    EXPECT_FALSE(fs::exists(out / kSlug)) << text;
    EXPECT_FALSE(fs::exists(out / (std::string(kSlug) + ".failed"))) << "an interruption is not a failure";
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
  EXPECT_EQ(run_to_end(args, root / "faulty.log", &text, "VAEREPRO_FAULT_WRITE=metrics.json"), 1) << text;
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
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"}) {
    std::ofstream(data / f, std::ios::binary) << std::string("\x00\x00\x08\x03\x00\x00", 6);  // truncated header
  }
  std::string text;
  const fs::path out = root / "bad-data-out";
  EXPECT_EQ(run_to_end({"--profile", "smoke", "--dataset", "mnist", "--data-dir", (root / "bad-data").string(),
                        "--out", out.string()},
                       root / "bad-data.log", &text),
            1)
      << text;
  EXPECT_NE(text.find("idx"), std::string::npos) << text;
  EXPECT_NE(text.find((data).string()), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(out / kSlug));
}

}  // namespace
