// A smoke run of chapter 6: both search modes with their logs, the
// monotonicity count, probes cached and reused.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vaerepro/build_config.h"

namespace fs = std::filesystem;

namespace {
int run(const std::string& args, std::string* out) {
  const std::string cmd = std::string(VAEREPRO_BIN_DIR) + "/chapter-06 " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  char buf[512];
  while (pipe && std::fgets(buf, sizeof(buf), pipe)) *out += buf;
  const int status = pipe ? ::pclose(pipe) : -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

TEST(Chapter06Smoke, BothModesLogEveryProbe) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch06-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::string out;
  ASSERT_EQ(run("--profile smoke --dataset synthetic --threads 2 --out " + root.string(), &out), 0) << out;
  std::ifstream in(root / "06-architecture-search/metrics.json");
  auto m = nlohmann::json::parse(in);
  ASSERT_EQ(m["searches"].size(), 6u);  // {seed, noise-aware} x {depth 2, depth 3, eased}
  for (const auto& s : m["searches"]) {
    ASSERT_FALSE(s["log"].empty());
    EXPECT_EQ(s["log"][0]["architecture"], s["upper"]);  // the upper bound is probed first
  }
  EXPECT_GT(m["probes_reused"].get<int>(), 0);  // the second mode reuses the first's probes
  EXPECT_EQ(m["thresholds"], "relative");       // synthetic data: the seed's thresholds do not apply
  EXPECT_TRUE(m["monotonicity"]["pairs"].is_number());
  // The same run again has nothing to train (its result is complete for this configuration).
  out.clear();
  ASSERT_EQ(run("--profile smoke --dataset synthetic --threads 2 --out " + root.string(), &out), 0) << out;
  EXPECT_NE(out.find("nothing to train"), std::string::npos) << out;
  // Another run whose probes were all made by the first (seed mode only) trains no probe.
  out.clear();
  ASSERT_EQ(run("--profile smoke --dataset synthetic --threads 2 --mode seed --out " + root.string(), &out), 0) << out;
  std::ifstream in2(root / "06-architecture-search/metrics.json");
  const auto m2 = nlohmann::json::parse(in2);
  EXPECT_EQ(m2["probes_trained"].get<int>(), 0);
  EXPECT_EQ(m2["searches"].size(), 3u);
  fs::remove_all(root);
}

TEST(Chapter06Smoke, RejectsAWideningUpperBound) {
  std::string out;
  EXPECT_EQ(run("--profile smoke --dataset synthetic --upper-deep [100,200,3] --out /tmp/never-written", &out), 2) << out;
  EXPECT_NE(out.find("h_{i+1} <= h_i"), std::string::npos) << out;
}
