// A smoke run of chapter 2 writes a complete result whose estimates are
// finite and ordered as the theory says: ELBO <= K = 50 <= K = k_final bound.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vaerepro/build_config.h"
#include "run_program.h"

namespace fs = std::filesystem;

namespace {

int run(const std::string& args, std::string* output) {
  const auto r = vaerepro::test::run_program("chapter-02", args);
  *output += r.output;
  return r.code;
}

TEST(Chapter02Smoke, WritesOrderedFiniteEstimates) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch02-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::string out;
  ASSERT_EQ(run("--profile smoke --dataset synthetic --threads 2 --out " + root.string(), &out), 0)
      << out;
  const fs::path dir = root / "02-marginal-likelihood";
  std::ifstream rin(dir / "run.json"), min(dir / "metrics.json");
  auto run_json = nlohmann::json::parse(rin);
  auto metrics = nlohmann::json::parse(min);
  EXPECT_EQ(run_json["status"], "complete");
  EXPECT_EQ(run_json["protocol"]["name"], "binarized");
  const std::string k = metrics["k_final"].dump();
  ASSERT_EQ(metrics["models"].size(), 2u);
  for (const auto& m : metrics["models"]) {
    for (const char* split : {"train", "test"}) {
      const auto& f = m["final"][split];
      const double elbo = f["elbo"]["elbo"].get<double>();
      const double k50 = f["importance_sampled"]["50"]["mean"].get<double>();
      const double kf = f["importance_sampled"][k]["mean"].get<double>();
      const double hmc = f["hmc"]["mean"].get<double>();
      for (double v : {elbo, k50, kf, hmc}) EXPECT_TRUE(std::isfinite(v) && v < 0);
      EXPECT_LE(elbo, k50 + 0.5) << split;  // the bound tightens with K (up to noise)
      EXPECT_GT(f["hmc"]["acceptance"].get<double>(), 0.3);
    }
    ASSERT_FALSE(m["curve"].empty());
    EXPECT_TRUE(m["curve"][0]["extra"]["test"]["mean"].is_number());
    EXPECT_TRUE(fs::exists(dir / ("curves/n-" + m["n_train"].dump() + "-log-px.csv")));
  }
  EXPECT_EQ(metrics["checks"].size(), 3u);
  fs::remove_all(root);
}

TEST(Chapter02Smoke, RejectsATrainingSetLargerThanTheData) {
  std::string out;
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --n-train 5000 --out /tmp/never-written", &out), 2)
      << out;
  EXPECT_NE(out.find("n-train"), std::string::npos) << out;
}

}  // namespace
