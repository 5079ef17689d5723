// A smoke run of chapter 6: both search modes with their logs, the
// monotonicity count, probes cached and reused.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "vaerepro/build_config.h"
#include "run_program.h"

namespace fs = std::filesystem;

namespace {
int run(const std::string& args, std::string* out) {
  const auto r = vaerepro::test::run_program("chapter-06", args);
  *out += r.output;
  return r.code;
}
}  // namespace

TEST(Chapter06Smoke, BothModesLogEveryProbe) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-ch06-" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::string out;
  ASSERT_EQ(run("--profile smoke --dataset synthetic --threads 2 --out " + root.string(), &out), 0)
      << out;
  std::ifstream in(root / "06-architecture-search/metrics.json");
  auto m = nlohmann::json::parse(in);
  ASSERT_EQ(m["searches"].size(), 6u);  // {seed, noise-aware} x {depth 2, depth 3, eased}
  for (const auto& s : m["searches"]) {
    ASSERT_FALSE(s["log"].empty());
    EXPECT_EQ(s["log"][0]["architecture"], s["upper"]);  // the upper bound is probed first
  }
  EXPECT_GT(m["probes_reused"].get<int>(), 0);  // the second mode reuses the first's probes
  EXPECT_EQ(m["thresholds"], "relative");  // synthetic data: the seed's thresholds do not apply
  EXPECT_TRUE(m["monotonicity"]["pairs"].is_number());
  const std::string args = "--profile smoke --dataset synthetic --threads 2 --out " + root.string();
  auto metrics = [&] {
    std::ifstream in(root / "06-architecture-search/metrics.json");
    return nlohmann::json::parse(in);
  };
  // A second run of the same configuration is not redone.
  out.clear();
  ASSERT_EQ(run(args, &out), 0) << out;
  EXPECT_NE(out.find("nothing to train"), std::string::npos) << out;
  // Without the result, the chapter is assembled from the cached probes.
  fs::remove_all(root / "06-architecture-search");
  out.clear();
  ASSERT_EQ(run(args, &out), 0) << out;
  EXPECT_EQ(metrics()["probes_trained"].get<int>(), 0);
  // Another configuration whose probes the first made (seed mode only) trains no probe.
  out.clear();
  ASSERT_EQ(run(args + " --mode seed", &out), 0) << out;
  EXPECT_EQ(metrics()["probes_trained"].get<int>(), 0);
  EXPECT_EQ(metrics()["searches"].size(), 3u);
  // --force trains every probe again, once, with the same numbers (same seeds).
  out.clear();
  ASSERT_EQ(run(args + " --force", &out), 0) << out;
  const auto forced = metrics();
  EXPECT_EQ(forced["probes_trained"], m["probes_trained"]);
  EXPECT_EQ(forced["monotonicity"], m["monotonicity"]);
  fs::remove_all(root);
}

// `make chapter-06-probes`: rounds of --list-probes and --only-probe fill the
// cache; the chapter run then trains nothing and decides exactly as the
// sequential run did (same seeds, same threads).
TEST(Chapter06Smoke, ParallelProbeRoundsMatchTheSequentialRun) {
  const fs::path base =
      fs::temp_directory_path() / ("vaerepro-ch06p-" + std::to_string(::getpid()));
  fs::remove_all(base);
  const std::string common = "--profile smoke --dataset synthetic --threads 1 --mode both --out ";
  std::string out;
  ASSERT_EQ(run(common + (base / "sequential").string(), &out), 0) << out;
  const std::string rounds = common + (base / "rounds").string();
  int round = 0, probes = 0;
  for (;; ++round) {
    ASSERT_LT(round, 30) << "the pending probes never ran out";
    out.clear();
    ASSERT_EQ(run(rounds + " --list-probes", &out), 0) << out;
    std::vector<std::string> pending;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("pending-probe ", 0) == 0) pending.push_back(line.substr(14));
    }
    if (pending.empty()) break;
    for (const auto& p : pending) {
      std::string o2;
      ASSERT_EQ(run(rounds + " --only-probe " + p, &o2), 0) << o2;
      ++probes;
    }
  }
  EXPECT_GT(round, 1);  // the searches need several rounds
  out.clear();
  ASSERT_EQ(run(rounds, &out), 0) << out;
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
  };
  const auto seq = read(base / "sequential/06-architecture-search/metrics.json");
  const auto par = read(base / "rounds/06-architecture-search/metrics.json");
  EXPECT_EQ(par["probes_trained"].get<int>(), 0);
  EXPECT_EQ(seq["probes_trained"].get<int>(),
            probes);  // no probe trained that the algorithm did not ask for
  auto decisions = [](nlohmann::json searches) {  // everything but the timings
    for (auto& s : searches) {
      for (auto& p : s["log"]) p.erase("seconds");
    }
    return searches;
  };
  EXPECT_EQ(decisions(par["searches"]), decisions(seq["searches"]));
  fs::remove_all(base);
}

TEST(Chapter06Smoke, RejectsAMalformedProbe) {
  std::string out;
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --only-probe 16x3 --out /tmp/never-written", &out),
      2)
      << out;
  EXPECT_NE(out.find("500-500-3.r0"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run("--profile smoke --dataset synthetic --only-probe 3-16.r0 --out /tmp/never-written",
                &out),
            2)
      << out;
  EXPECT_NE(out.find("h_{i+1} <= h_i"), std::string::npos) << out;
}

TEST(Chapter06Smoke, RejectsAWideningUpperBound) {
  std::string out;
  EXPECT_EQ(
      run("--profile smoke --dataset synthetic --upper-deep [100,200,3] --out /tmp/never-written",
          &out),
      2)
      << out;
  EXPECT_NE(out.find("h_{i+1} <= h_i"), std::string::npos) << out;
}
