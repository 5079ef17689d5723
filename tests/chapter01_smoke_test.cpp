// A smoke run of chapter 1 writes a complete, valid result; a failing run
// leaves nothing that looks complete.
#include <gtest/gtest.h>

#include "vaerepro/build_config.h"
#include "run_program.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace fs = std::filesystem;

namespace {

int run(const std::string& args, std::string* output = nullptr) {
  const auto r = vaerepro::test::run_program("chapter-01", args);
  if (output) *output = r.output;
  return r.code;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

class Chapter01Smoke : public ::testing::Test {
 protected:
  fs::path root;
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("vaerepro-smoke-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }
};

TEST_F(Chapter01Smoke, WritesACompleteValidResult) {
  std::string out;
  const int code =
      run("--profile smoke --dataset synthetic --threads 2 --out " + root.string(), &out);
  ASSERT_EQ(code, 0) << out;
  const fs::path dir = root / "01-elbo-vs-latent";
  ASSERT_TRUE(fs::exists(dir / "run.json")) << out;
  auto run_json = read_json(dir / "run.json");
  EXPECT_EQ(run_json["status"], "complete");
  EXPECT_EQ(run_json["dataset"]["name"], "synthetic");
  EXPECT_EQ(run_json["protocol"]["name"], "binarized");
  EXPECT_EQ(run_json["profile"], "smoke");
  EXPECT_FALSE(run_json["provenance"]["git_commit"].get<std::string>().empty());
  EXPECT_FALSE(run_json["runtime"]["libtorch_version"].get<std::string>().empty());
  EXPECT_GT(run_json["wall_seconds"].get<double>(), 0.0);

  auto metrics = read_json(dir / "metrics.json");
  ASSERT_EQ(metrics["models"].size(), 3u);  // Nz = 3, 20 and the manifold's Nz = 2
  for (const auto& m : metrics["models"]) {
    for (const char* split : {"train", "test"}) {
      const double e = m["final"][split]["elbo"].get<double>();
      EXPECT_TRUE(std::isfinite(e));
      EXPECT_LT(e, 0.0);  // a log-likelihood bound of binary images is negative
      EXPECT_GE(m["final"][split]["kl"].get<double>(), 0.0);
    }
    EXPECT_EQ(m["samples_seen"].get<int64_t>(), 3000);
    const fs::path csv = dir / m["curve_csv"].get<std::string>();
    ASSERT_TRUE(fs::exists(csv));
    std::ifstream in(csv);
    std::string header;
    std::getline(in, header);
    EXPECT_EQ(header.rfind("samples_seen,epochs,train_elbo", 0), 0u) << header;
    int rows = 0;
    for (std::string line; std::getline(in, line);) ++rows;
    EXPECT_EQ(rows, static_cast<int>(m["curve"].size()));
    EXPECT_GE(rows, 2);
  }
  EXPECT_FALSE(metrics["checks"].empty());
  for (const auto& [key, rel] : metrics["images"].items()) {
    const fs::path png = dir / rel.get<std::string>();
    ASSERT_TRUE(fs::exists(png)) << key;
    std::ifstream in(png, std::ios::binary);
    char sig[8] = {0};
    in.read(sig, 8);
    EXPECT_EQ(std::string(sig + 1, 3), "PNG") << key;
  }
  EXPECT_TRUE(metrics["images"].contains("manifold_nz-2"));
  EXPECT_EQ(metrics["frey_face"]["status"], "skipped");
  // Nothing staged is left behind.
  EXPECT_TRUE(!fs::exists(root / ".staging") || fs::is_empty(root / ".staging"));
}

TEST_F(Chapter01Smoke, SameSeedSameNumbers) {
  ASSERT_EQ(
      run("--profile smoke --dataset synthetic --nz 3 --manifold-nz 0 --threads 1 --seed 5 --out " +
          (root / "a").string()),
      0);
  ASSERT_EQ(
      run("--profile smoke --dataset synthetic --nz 3 --manifold-nz 0 --threads 1 --seed 5 --out " +
          (root / "b").string()),
      0);
  auto a = read_json(root / "a" / "01-elbo-vs-latent" / "metrics.json");
  auto b = read_json(root / "b" / "01-elbo-vs-latent" / "metrics.json");
  EXPECT_EQ(a["models"][0]["final"], b["models"][0]["final"]);
}

TEST_F(Chapter01Smoke, ADivergingRunFailsAndKeepsTheLastCompleteResult) {
  const std::string base =
      "--profile smoke --dataset synthetic --nz 3 --manifold-nz 0 --out " + root.string();
  ASSERT_EQ(run(base), 0);
  std::string out;
  EXPECT_EQ(run(base + " --optimizer sgd --lr 10", &out), 1) << out;
  EXPECT_NE(out.find("non-finite"), std::string::npos) << out;
  EXPECT_NE(out.find("learning rate"), std::string::npos) << out;
  auto kept = read_json(root / "01-elbo-vs-latent" / "run.json");
  EXPECT_EQ(kept["status"], "complete");
  auto failed = read_json(root / "01-elbo-vs-latent.failed" / "run.json");
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_NE(failed["error"].get<std::string>().find("non-finite"), std::string::npos);
  // A later complete run supersedes the failure.
  ASSERT_EQ(run(base), 0);
  EXPECT_FALSE(fs::exists(root / "01-elbo-vs-latent.failed"));
}

TEST_F(Chapter01Smoke, AMissingDatasetFailsCleanly) {
  std::string out;
  const int code = run("--profile smoke --dataset mnist --data-dir " + (root / "empty").string() +
                           " --out " + (root / "results").string(),
                       &out);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("make data"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(root / "results" / "01-elbo-vs-latent" / "run.json"));
}

TEST_F(Chapter01Smoke, AnUnwritableOutputFolderFailsCleanly) {
  std::string out;
  const fs::path file = root / "a-file";
  std::ofstream(file) << "x";
  const int code =
      run("--profile smoke --dataset synthetic --out " + (file / "sub").string(), &out);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("results folder"), std::string::npos) << out;
}

}  // namespace
