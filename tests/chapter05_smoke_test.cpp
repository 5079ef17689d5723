// A smoke run of chapter 5 writes a complete result: both VQ-VAE settings in
// both codebook arms (as written; with the usual fixes), their priors (NLL
// below uniform is not required at this budget, only finite and consistent),
// samples, curves with the batch perplexity, codebook counts, the bound and
// the verdicts of both arms.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "vaerepro/build_config.h"
#include "run_program.h"

namespace fs = std::filesystem;

namespace {

int csv_rows(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int n = -1;  // the header
  while (std::getline(in, line)) ++n;
  return n;
}

}  // namespace

TEST(Chapter05Smoke, WritesBothSettingsPriorsSamplesAndTheBound) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch05-" + std::to_string(::getpid()));
  fs::remove_all(root);
  // One thread: ctest runs tests side by side, and the prior's tiny 7x7
  // convolutions slow down many-fold when two threads compete for a busy core.
  const auto r = vaerepro::test::run_program(
      "chapter-05", "--profile smoke --dataset synthetic --threads 1 --out " + root.string());
  const std::string& out = r.output;
  ASSERT_EQ(r.code, 0) << out;
  const fs::path dir = root / "05-vqvae-pixelcnn";
  std::ifstream run_in(dir / "run.json");
  auto run = nlohmann::json::parse(run_in);
  EXPECT_EQ(run["status"], "complete");
  std::ifstream in(dir / "metrics.json");
  auto m = nlohmann::json::parse(in);
  ASSERT_EQ(m["settings"].size(), 4u);
  const std::vector<std::string> names = {"seed-faithful", "seed-fixed", "paper-faithful",
                                          "paper-fixed"};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(m["settings"][i]["name"], names[i]);
  EXPECT_EQ(m["settings"][0]["codes"],
            10);  // chapter 4 reads the first K = 10 model: seed 000's recipe
  EXPECT_EQ(m["settings"][0]["arm"], "faithful");
  EXPECT_EQ(m["settings"][0]["dim"], 2);
  EXPECT_EQ(m["settings"][3]["codes"], 512);
  for (const auto& s : m["settings"]) {
    const bool fixed = s["arm"] == "fixed";
    EXPECT_EQ(s["quantizer"]["update"], fixed ? "ema" : "gradient");
    EXPECT_EQ(s["quantizer"]["init"], fixed ? "data" : "uniform");
    EXPECT_DOUBLE_EQ(s["quantizer"]["restart_threshold"].get<double>(), fixed ? 1.0 : 0.0);
    if (!fixed) EXPECT_EQ(s["vqvae"]["restarts"], 0);
    for (const auto& p : s["vqvae"]["curve"]) {
      EXPECT_GE(p["batch_perplexity"].get<double>(), 1.0 - 1e-6);
      EXPECT_LE(p["batch_perplexity"].get<double>(), s["codes"].get<double>() + 1e-6);
    }
    const int64_t k = s["codes"].get<int64_t>();
    const auto& test = s["vqvae"]["final"]["test"];
    EXPECT_TRUE(std::isfinite(test["mse_per_pixel"].get<double>()));
    EXPECT_GE(test["codes_used"].get<int64_t>(), 1);
    EXPECT_LE(test["codes_used"].get<int64_t>(), k);
    EXPECT_GE(s["usage"]["test"]["perplexity"].get<double>(), 1.0 - 1e-9);
    EXPECT_LE(s["usage"]["test"]["perplexity"].get<double>(), static_cast<double>(k) + 1e-9);
    // Prior: nats and bits per dimension agree; uniform is 49 ln K.
    const auto& p = s["prior"]["final"]["test"];
    EXPECT_NEAR(p["bits_per_dim"].get<double>(),
                p["nats_per_map"].get<double>() / (49 * std::log(2.0)), 1e-9);
    EXPECT_NEAR(s["prior"]["uniform"]["nats_per_map"].get<double>(),
                49 * std::log(static_cast<double>(k)), 1e-9);
    // The bound is the sum of its parts.
    const auto& b = s["bound"];
    EXPECT_NEAR(b["total"].get<double>(),
                b["log_p_x_given_z"].get<double>() + b["log_p_z"].get<double>(), 1e-6);
    EXPECT_FALSE(b["caveats"].empty());
    EXPECT_GT(s["vqvae"]["table1"]["cross_entropy"].get<double>(), 0.0);
    for (const auto& [key, rel] : s["images"].items())
      EXPECT_TRUE(fs::exists(dir / rel.get<std::string>())) << key;
    EXPECT_EQ(csv_rows(dir / s["vqvae"]["curve_csv"].get<std::string>()), 3);
    EXPECT_EQ(csv_rows(dir / s["prior"]["curve_csv"].get<std::string>()), 1);
    EXPECT_EQ(csv_rows(dir / s["usage"]["codebook_csv"].get<std::string>()), k);
    EXPECT_TRUE(s.contains("judge"));
  }
  bool live_check = false;
  int sizes = 0;
  for (const auto& c : m["checks"]) {
    const std::string claim = c["claim"];
    live_check |= claim.find("the live arm uses at least half") != std::string::npos;
    sizes += claim.find("a larger codebook reconstructs better") != std::string::npos;
  }
  EXPECT_TRUE(live_check);
  EXPECT_EQ(sizes, 2);  // one per arm
  EXPECT_GE(m["checks"].size(), 10u);
  fs::remove_all(root);
}

TEST(Chapter05Smoke, RejectsAnUnknownArmAsAUsageError) {
  const auto r = vaerepro::test::run_program("chapter-05", "--arms faithful,tuned");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("tuned"), std::string::npos) << r.output;
  const auto init = vaerepro::test::run_program("chapter-05", "--fixed-init random");
  EXPECT_EQ(init.code, 2) << init.output;
  EXPECT_NE(init.output.find("--fixed-init"), std::string::npos) << init.output;
}

TEST(Chapter05Smoke, RejectsAnUnknownSettingAsAUsageError) {
  const auto r = vaerepro::test::run_program("chapter-05", "--settings seed,huge");
  const std::string& out = r.output;
  EXPECT_EQ(r.code, 2) << out;
  EXPECT_NE(out.find("huge"), std::string::npos) << out;
}
