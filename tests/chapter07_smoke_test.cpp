// A smoke run of chapter 7: the grid's points run alone and are reused, the
// assembled result has every variant at every latent size with its bounds,
// estimates and active units, the composite pictures, and the verdicts; the
// protocol is seed 002's threshold unless told otherwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "run_program.h"

namespace fs = std::filesystem;

namespace {

int run(const std::string& args, std::string* output) {
  const auto r = vaerepro::test::run_program("chapter-07", args);
  *output += r.output;
  return r.code;
}

nlohmann::json read(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(Chapter07Smoke, PointsRunAloneAndTheGridIsAssembled) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch07-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const std::string base = "--profile smoke --dataset synthetic --threads 1 --out " + root.string();
  std::string out;
  ASSERT_EQ(run(base + " --only-point iwae-nz3", &out), 0) << out;
  EXPECT_FALSE(fs::exists(root / "07-improving-vaes")) << "a single point is not a chapter result";
  out.clear();
  ASSERT_EQ(run(base + " --list-points", &out), 0) << out;
  EXPECT_NE(out.find("pending-point cvae-nz20\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pending-point iwae-elbo-nz3\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("pending-point iwae-nz3\n"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run(base, &out), 0) << out;
  EXPECT_NE(out.find("iwae-nz3: reusing"), std::string::npos) << out;  // trained once, reused
  const fs::path dir = root / "07-improving-vaes";
  const auto metrics = read(dir / "metrics.json");
  const auto run_json = read(dir / "run.json");
  EXPECT_EQ(run_json["protocol"]["name"], "threshold");  // seed 002's, by default
  ASSERT_EQ(metrics["grid"].size(), 16u);                // 8 variants x N_z = 3, 20
  std::set<std::string> variants;
  for (const auto& p : metrics["grid"]) {
    const std::string v = p["variant"];
    variants.insert(v);
    EXPECT_EQ(p["protocol"], "threshold");
    const double elbo = p["test"]["elbo"], lp = p["marginal"]["log_px"]["mean"];
    EXPECT_LT(elbo, 0.0) << p["name"];
    EXPECT_LT(lp, 0.0) << p["name"];
    EXPECT_EQ(p["marginal"]["k"], 10);
    EXPECT_EQ(p["marginal"]["examples"], 50);
    // log p(x) is not below the ELBO on the same points by more than noise.
    EXPECT_GT(lp, p["elbo_same_points"]["elbo"].get<double>() - 5.0) << p["name"];
    EXPECT_EQ(p.contains("iwae_bound"), v == "iwae" || v == "iwae-elbo") << p["name"];
    EXPECT_EQ(p["marginal"].contains("label_marginal"), v == "cvae") << p["name"];
    EXPECT_EQ(p.contains("denoising_elbo"), v == "dvae") << p["name"];
    EXPECT_EQ(p["layers"].size(), v.rfind("iwae", 0) == 0 ? 2u : 1u) << p["name"];
    EXPECT_TRUE(fs::exists(dir / p["dir"].get<std::string>() / "point.json")) << p["name"];
    if (p["nz"] == 3)
      EXPECT_TRUE(fs::exists(dir / p["dir"].get<std::string>() / "images/samples.png"))
          << p["name"];
  }
  EXPECT_EQ(variants.size(), 8u);
  EXPECT_TRUE(fs::exists(dir / metrics["images"]["reconstructions"].get<std::string>()));
  EXPECT_TRUE(fs::exists(dir / metrics["images"]["samples"].get<std::string>()));
  EXPECT_EQ(metrics["images"]["reconstruction_rows"].size(),
            9u);  // the test images, then one row per variant
  // Verdicts on the test ELBO and on log p(x) for each claim the grid can decide, and Burda's.
  std::set<std::string> claims;
  for (const auto& c : metrics["checks"]) {
    EXPECT_TRUE(c["holds"].is_boolean());
    claims.insert(c["claim"]);
  }
  EXPECT_TRUE(claims.count("DVAE best at low latent capacity (test ELBO)"))
      << metrics["checks"].dump();
  EXPECT_TRUE(claims.count("CNN best at high latent capacity (log p(x))"))
      << metrics["checks"].dump();
  EXPECT_TRUE(claims.count("CVAE best overall (log p(x))")) << metrics["checks"].dump();
  EXPECT_EQ(metrics["checks"].size(), 9u) << metrics["checks"].dump();
  out.clear();
  ASSERT_EQ(run(base, &out), 0) << out;  // complete: nothing to train
  EXPECT_NE(out.find("nothing to train"), std::string::npos) << out;
  fs::remove_all(root);
}

TEST(Chapter07Smoke, RejectsAnUnknownPointOrVariant) {
  std::string out;
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --only-point iwae-nz7 --out /tmp/never-written",
          &out),
      2)
      << out;
  EXPECT_NE(out.find("only-point"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --variants vae,wae --out /tmp/never-written", &out),
      2)
      << out;
  EXPECT_NE(out.find("wae"), std::string::npos) << out;
}

}  // namespace
