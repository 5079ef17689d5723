// A smoke run of chapter 4 writes a complete result with both encodings'
// conditional accuracy, the benchmark and the latent scatter.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "vaerepro/build_config.h"
#include "run_program.h"

namespace fs = std::filesystem;

TEST(Chapter04Smoke, WritesAccuracyBenchmarkAndScatter) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch04-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const auto r = vaerepro::test::run_program(
      "chapter-04", "--profile smoke --dataset synthetic --threads 2 --out " + root.string());
  const std::string& out = r.output;
  ASSERT_EQ(r.code, 0) << out;
  const fs::path dir = root / "04-cvae-labels";
  std::ifstream in(dir / "metrics.json");
  auto m = nlohmann::json::parse(in);
  for (const char* k : {"cvae-raw", "cvae-one-hot", "vae"}) {
    ASSERT_TRUE(m["conditional_accuracy"].contains(k)) << k;
    EXPECT_EQ(m["conditional_accuracy"][k]["per_label"].size(), 10u);
    const double a = m["conditional_accuracy"][k]["overall"].get<double>();
    EXPECT_GE(a, 0.0);
    EXPECT_LE(a, 1.0);
  }
  EXPECT_EQ(m["benchmark"].size(), 4u);
  EXPECT_EQ(m["scatter"].size(), 3u);
  for (const auto& s : m["scatter"]) EXPECT_TRUE(fs::exists(dir / s["csv"].get<std::string>()));
  for (const auto& [k, rel] : m["images"].items())
    EXPECT_TRUE(fs::exists(dir / rel.get<std::string>())) << k;
  EXPECT_GT(m["classifier_accuracy"].get<double>(), 0.3);  // far above chance even after one epoch
  EXPECT_EQ(m["checks"].size(), 4u);
  fs::remove_all(root);
}
