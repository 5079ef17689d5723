// A smoke run of chapter 3: a complete result, sweep points that run alone
// and are reused, traversal grids of the promised geometry.
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
  const auto r = vaerepro::test::run_program("chapter-03", args);
  *output += r.output;
  return r.code;
}

TEST(Chapter03Smoke, PointsRunAloneAndAreAssembled) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch03-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const std::string base = "--profile smoke --dataset synthetic --threads 2 --out " + root.string();
  std::string out;
  ASSERT_EQ(run(base + " --only-point beta=5", &out), 0) << out;
  EXPECT_FALSE(fs::exists(root / "03-beta-sweep")) << "a single point is not a chapter result";
  // What a scheduler submits (scripts/slurm_points.sh): the points not yet trained.
  out.clear();
  ASSERT_EQ(run(base + " --list-points", &out), 0) << out;
  EXPECT_NE(out.find("pending-point beta-1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pending-point traversal-nz5-beta5\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("pending-point beta-5"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run(base, &out), 0) << out;
  EXPECT_NE(out.find("beta-5: reusing"), std::string::npos) << out;  // trained once, reused
  const fs::path dir = root / "03-beta-sweep";
  std::ifstream min(dir / "metrics.json");
  auto metrics = nlohmann::json::parse(min);
  ASSERT_EQ(metrics["sweep"].size(), 2u);
  EXPECT_EQ(metrics["sweep"][0]["beta"], 1.0);  // sorted by beta
  for (const auto& p : metrics["sweep"]) {
    EXPECT_EQ(p["kl_per_dim"].size(), 20u);
    EXPECT_GE(p["final"]["test"]["kl"].get<double>(), 0.0);
    EXPECT_TRUE(fs::exists(dir / p["dir"].get<std::string>() / "images/reconstructions.png"));
  }
  ASSERT_EQ(metrics["traversals"].size(), 1u);
  const auto& t = metrics["traversals"][0];
  ASSERT_EQ(t["traversals"].size(), 5u);  // one grid per latent dimension (Nz = 5)
  EXPECT_EQ(t["traversal_values"].size(), 9u);
  const fs::path png =
      dir / t["dir"].get<std::string>() / t["traversals"][0]["image"].get<std::string>();
  ASSERT_TRUE(fs::exists(png));
  // 10 rows (labels) x 10 columns (9 values + heat map) of 28x28 tiles, 1 px padding.
  std::ifstream in(png, std::ios::binary);
  unsigned char header[24];
  in.read(reinterpret_cast<char*>(header), 24);
  const int width = (header[16] << 24) | (header[17] << 16) | (header[18] << 8) | header[19];
  const int height = (header[20] << 24) | (header[21] << 16) | (header[22] << 8) | header[23];
  EXPECT_EQ(width, 10 * 29 + 1);
  EXPECT_EQ(height, 10 * 29 + 1);
  EXPECT_EQ(metrics["checks"].size(), 3u);
  std::ifstream rin(dir / "run.json");
  EXPECT_EQ(nlohmann::json::parse(rin)["protocol"]["name"], "gray-bce");  // seed 000's, by default
  fs::remove_all(root);
}

TEST(Chapter03Smoke, RejectsAnUnknownPoint) {
  std::string out;
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --only-point beta=7 --out /tmp/never-written", &out),
      2)
      << out;
  EXPECT_NE(out.find("only-point"), std::string::npos) << out;
}

}  // namespace
