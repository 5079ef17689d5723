// The report built from a fixture set of results: every chapter complete
// (smoke runs, tests/fixtures/results/, `make fixtures` regenerates them);
// a corrupt one (tests/fixtures/corrupt/: a truncated run.json) and a failed
// one (tests/fixtures/failed/) put in place of a complete one; chapter 1 in
// the previous results layout (tests/fixtures/v1/); an empty folder gives one
// "not run yet" per chapter. The report holds the fixture's values, the "not run",
// "failed", "corrupt" and "older layout" entries, budgets and provisional
// verdicts as the runs recorded them, and every file it references exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common.h"
#include "generator.h"
#include "vaerepro/build_config.h"
#include "vaerepro/schema/metrics.h"
#include "vaerepro/schema/run_record.h"

namespace fs = std::filesystem;
using nlohmann::json;
namespace rp = vaerepro::report;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

bool have(const std::string& program) {
  return std::system(("command -v " + program + " >/dev/null 2>&1").c_str()) == 0;
}

/// Every element opened is closed in order (void elements and "/>" aside).
std::string check_well_formed(const std::string& html) {
  static const std::set<std::string> kVoid = {"area",   "base",  "br",    "col",     "embed",
                                              "hr",     "img",   "input", "link",    "meta",
                                              "source", "track", "wbr",   "!doctype"};
  std::vector<std::string> stack;
  std::regex tag(R"re(<(/?)([A-Za-z!][A-Za-z0-9:-]*)([^>]*)>)re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator();
       ++it) {
    std::string name = (*it)[2];
    for (auto& c : name) c = static_cast<char>(std::tolower(c));
    const bool closing = (*it)[1] == "/";
    const std::string rest = (*it)[3];
    if (kVoid.count(name) || (!rest.empty() && rest.back() == '/')) continue;
    if (!closing) {
      stack.push_back(name);
    } else {
      if (stack.empty() || stack.back() != name) {
        return "</" + name + "> closes " +
               (stack.empty() ? std::string("nothing") : "<" + stack.back() + ">");
      }
      stack.pop_back();
    }
  }
  return stack.empty() ? "" : "<" + stack.back() + "> is never closed";
}

class ReportFromFixtures : public ::testing::Test {
 protected:
  fs::path root;
  rp::Options options;

  void SetUp() override {
    root = fs::temp_directory_path() /
           ("vaerepro-report-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
    const fs::path src = VAEREPRO_SOURCE_DIR;
    fs::copy(src / "tests/fixtures/results", root / "results", fs::copy_options::recursive);
    options.paths.results = (root / "results").string();
    options.paths.full_results = (root / "results-full").string();
    options.paths.templates = (src / "report/templates").string();
    options.paths.published = (src / "report/published").string();
    options.paths.figures = (root / "figures").string();
    options.paths.out = (root / "out").string();
    options.paths.docs_html = (root / "docs").string();
    options.pdf = have("latexmk") && have("pdflatex");
  }
  void TearDown() override { fs::remove_all(root); }
  json fixture_metrics() {
    return json::parse(read(root / "results/01-elbo-vs-latent/metrics.json"));
  }
  json fixture_json(const std::string& slug, const std::string& file) {
    return json::parse(read(root / "results" / slug / file));
  }
  void write_json(const std::string& slug, const std::string& file, const json& j) {
    std::ofstream(root / "results" / slug / file) << j.dump(2);
  }
  /// The part of report.md from chapter `number`'s heading to the next chapter's.
  std::string chapter_section(const std::string& md_text, int number) {
    const auto at = md_text.find("{#chapter-0" + std::to_string(number) + "}");
    if (at == std::string::npos) return "";
    const auto next = md_text.find("\n# ", at);
    return md_text.substr(at, next == std::string::npos ? std::string::npos : next - at);
  }
};

TEST_F(ReportFromFixtures, HoldsTheRunsValuesAndTheStatusOfEveryChapter) {
  // An interrupted chapter-3 run waiting to be resumed.
  fs::create_directories(root / "results/.checkpoints/03-beta-sweep/0123456789abcdef");
  std::ofstream(root / "results/.checkpoints/03-beta-sweep/0123456789abcdef/in-progress.json")
      << "{}";
  const auto outcome = rp::generate(options);
  const std::string html = read(root / "out/index.html");
  const std::string tex = read(root / "out/report.tex");
  ASSERT_FALSE(html.empty());
  ASSERT_FALSE(tex.empty());

  // Chapter 1's table holds the fixture's final bounds, next to KW2013's.
  for (const auto& m : fixture_metrics()["models"]) {
    if (m["role"] != "sweep") continue;
    for (const char* split : {"train", "test"}) {
      const std::string v = rp::fmt1(m["final"][split]["elbo"].get<double>());
      EXPECT_NE(html.find(v), std::string::npos) << "missing " << split << " bound " << v;
      EXPECT_NE(tex.find(v), std::string::npos)
          << "missing " << split << " bound " << v << " in LaTeX";
    }
  }
  EXPECT_NE(html.find("-133.4"), std::string::npos);  // KW2013 Nz = 3 test (D)
  EXPECT_NE(html.find("-100.2"), std::string::npos);  // KW2013 Nz = 20 test (D)
  // Verdicts with their criteria, and provenance.
  EXPECT_NE(html.find("Criterion:"), std::string::npos);
  EXPECT_NE(html.find("commit"), std::string::npos);
  EXPECT_NE(html.find("synthetic"), std::string::npos);

  // Chapter 2's estimates table holds the fixture's final K-sample estimates.
  const auto ch2 = json::parse(read(root / "results/02-marginal-likelihood/metrics.json"));
  const std::string k = ch2["k_final"].dump();
  for (const auto& m : ch2["models"]) {
    for (const char* split : {"train", "test"}) {
      const std::string v =
          rp::fmt1(m["final"][split]["importance_sampled"][k]["mean"].get<double>());
      EXPECT_NE(html.find(v), std::string::npos)
          << "chapter 2: missing " << split << " estimate " << v;
    }
  }
  EXPECT_TRUE(fs::exists(root / "figures/ch02-curves.svg"));
  // Chapter 3: the rate/distortion table holds each beta's reconstruction and KL.
  const auto ch3 = json::parse(read(root / "results/03-beta-sweep/metrics.json"));
  for (const auto& p : ch3["sweep"]) {
    const std::string rec = rp::fmt1(-p["final"]["test"]["log_likelihood"].get<double>());
    const std::string kl = rp::fmt1(p["final"]["test"]["kl"].get<double>());
    EXPECT_NE(html.find(rec), std::string::npos) << rec;
    EXPECT_NE(html.find(kl), std::string::npos) << kl;
  }
  EXPECT_TRUE(fs::exists(root / "figures/ch03-rate-distortion.svg"));
  EXPECT_NE(html.find("traversal-dim1.png"), std::string::npos);
  // Chapter 4: the conditional accuracy of both encodings, and the benchmark.
  const auto ch4 = json::parse(read(root / "results/04-cvae-labels/metrics.json"));
  for (const char* m : {"cvae-raw", "cvae-one-hot", "vae"}) {
    const std::string v =
        rp::fmt1(100 * ch4["conditional_accuracy"][m]["overall"].get<double>()) + "%";
    EXPECT_NE(html.find(v), std::string::npos) << m << " " << v;
  }
  EXPECT_NE(html.find("121.1"), std::string::npos);  // seed 000 Table 1, VAE cross-entropy (S)
  EXPECT_TRUE(fs::exists(root / "figures/ch04-latent.svg"));
  // Chapter 5: each model's Table 1 numbers and codebook use, and where it
  // has a prior its NLL, samples and bound; seed 000's VQ-VAE row, the
  // curves, the usage curves, the over-seeds table, the bound's caveats.
  const auto ch5 = json::parse(read(root / "results/05-vqvae-pixelcnn/metrics.json"));
  ASSERT_EQ(ch5["settings"].size(), 4u);
  for (const auto& s : ch5["settings"]) {
    const std::string name = s["name"].get<std::string>();
    EXPECT_NE(html.find("reconstructions-" + name + ".png"), std::string::npos);
    EXPECT_NE(html.find("codebook-usage-" + name + ".png"), std::string::npos);
    const std::string used = s["usage"]["test"]["used"].dump() + " of " + s["codes"].dump();
    EXPECT_NE(html.find(used), std::string::npos) << "chapter 5: codes used " << used;
    const std::string ce = rp::fmt1(s["vqvae"]["table1"]["cross_entropy"].get<double>());
    EXPECT_NE(html.find(ce), std::string::npos) << "chapter 5: cross-entropy " << ce;
    if (!s.contains("prior")) continue;
    std::ostringstream nll;
    nll.setf(std::ios::fixed);
    nll.precision(3);
    nll << s["prior"]["final"]["test"]["bits_per_dim"].get<double>();
    EXPECT_NE(html.find(nll.str()), std::string::npos) << "chapter 5: prior bits/dim " << nll.str();
    const std::string bound = rp::fmt1(s["bound"]["total"].get<double>());
    EXPECT_NE(html.find(bound), std::string::npos) << "chapter 5: bound " << bound;
    EXPECT_NE(html.find("prior-samples-" + name + ".png"), std::string::npos);
    EXPECT_NE(html.find("uniform-samples-" + name + ".png"), std::string::npos);
  }
  EXPECT_NE(html.find("with the usual fixes"), std::string::npos);
  EXPECT_NE(html.find("K = 512 against K = 10, over seeds"), std::string::npos);
  EXPECT_NE(html.find("<strong>1 of 1</strong> seeds"),
            std::string::npos);  // the fixture's one seed, paired by arm
  EXPECT_NE(html.find("Jukebox"), std::string::npos);
  EXPECT_TRUE(fs::exists(root / "figures/ch05-usage.svg"));
  EXPECT_NE(html.find("169.8"), std::string::npos);  // seed 000 Table 1, VQ-VAE cross-entropy (S)
  EXPECT_NE(html.find("vqvae (chapter 5, K = 10)"),
            std::string::npos);                     // chapter 4's benchmark reads chapter 5
  EXPECT_NE(html.find("4.67"), std::string::npos);  // vdO2017 CIFAR-10 bits/dim (V), for scale
  EXPECT_NE(html.find("Caveats"), std::string::npos);
  EXPECT_TRUE(fs::exists(root / "figures/ch05-curves.svg"));
  EXPECT_TRUE(fs::exists(root / "figures/ch05-prior.svg"));
  // Chapter 6: Table 7's fresh losses, each search's outcome and its probes, the monotonicity
  // count.
  namespace c6 = vaerepro::schema::ch06;
  const auto ch6 = json::parse(read(root / "results/06-architecture-search/metrics.json"));
  for (const auto& r : ch6[c6::kTable7]) {
    const std::string v = rp::fmt1(r[c6::kElboLoss].get<double>());
    EXPECT_NE(html.find(v), std::string::npos) << "chapter 6: Table 7 loss " << v;
  }
  ASSERT_FALSE(ch6[c6::kSearches].empty());
  for (const auto& srch : ch6[c6::kSearches]) {
    EXPECT_NE(html.find(srch[c6::kMode].get<std::string>() + " mode, " +
                        srch[c6::kSearch].get<std::string>()),
              std::string::npos);
    for (const auto& p : srch[c6::kLog]) {
      const std::string v = rp::fmt1(p[c6::kReconstruction].get<double>());
      EXPECT_NE(html.find(v), std::string::npos) << "chapter 6: probe reconstruction " << v;
    }
  }
  EXPECT_NE(html.find("distinct architectures probed"), std::string::npos);
  // Every chapter is complete: none is skipped as corrupt, the summary says so six times.
  EXPECT_EQ(html.find("incomplete or corrupt"), std::string::npos);
  for (const auto& s : outcome.skipped)
    EXPECT_EQ(s.find("incomplete or corrupt"), std::string::npos) << s;
  // The reliability appendix lists the failure classes covered, and the interrupted runs.
  EXPECT_NE(html.find("failures the suite catches"), std::string::npos);
  for (const char* c :
       {"SIGKILL", "SIGINT", "NaN or Inf", "wrong checksum", "a missing dataset",
        "contradictory options", "cannot be written", "fails half-way", "FORCE=1"}) {
    EXPECT_NE(html.find(c), std::string::npos) << "the appendix lacks " << c;
  }
  EXPECT_NE(html.find("stopped before completing (configuration 0123456789abcdef"),
            std::string::npos);

  // The figure was drawn, in both formats.
  EXPECT_TRUE(fs::exists(root / "figures/ch01-curves.svg"));
  EXPECT_TRUE(fs::exists(root / "figures/ch01-curves.pdf"));
  // No template key was left unfilled.
  EXPECT_EQ(html.find("{{"), std::string::npos);
  for (const auto& w : outcome.warnings) EXPECT_EQ(w.find("template key"), std::string::npos) << w;
}

TEST_F(ReportFromFixtures, ChapterOneShowsItsFullBudgetRunBesideKw2013) {
  auto report = [&] {
    rp::Outcome outcome = rp::generate(options);
    (void)outcome;
    return chapter_section(read(root / "out/report.md"), 1);
  };
  EXPECT_NE(report().find("No full-budget run yet"), std::string::npos);
  // A full run kept apart: its models beside KW2013's test bound at 1e8 (Nz = 20: -100.2).
  const fs::path full = root / "results-full" / "01-elbo-vs-latent";
  fs::create_directories(full.parent_path());
  fs::copy(root / "results/01-elbo-vs-latent", full, fs::copy_options::recursive);
  json run = json::parse(read(full / "run.json"));
  run["profile"] = "full";
  run["dataset"]["name"] = "mnist";
  std::ofstream(full / "run.json") << run.dump(2);
  const std::string with_run = report();
  EXPECT_NE(with_run.find("| 20 | "), std::string::npos) << with_run;
  EXPECT_NE(with_run.find("-100.2"), std::string::npos) << with_run;
  EXPECT_EQ(with_run.find("No full-budget run yet"), std::string::npos) << with_run;
  // The same run on other data: no difference against the paper is printed.
  run["dataset"]["name"] = "fashion-mnist";
  std::ofstream(full / "run.json") << run.dump(2);
  EXPECT_NE(report().find("Not comparable with KW2013"), std::string::npos);
}

TEST_F(ReportFromFixtures, ThePerformanceAppendixSaysWhereEachChaptersTimeWent) {
  json run = fixture_json("01-elbo-vs-latent", "run.json");
  run["wall_seconds"] = 600.0;
  run["time_spent"] = {
      {"training", 300.0}, {"whole-set evaluations", 60.0}, {"log p(x) estimates", 180.0}};
  write_json("01-elbo-vs-latent", "run.json", run);
  rp::generate(options);
  const std::string md_text = read(root / "out/report.md");
  const auto at = md_text.find("Where each chapter's time went");
  ASSERT_NE(at, std::string::npos);
  const std::string section = md_text.substr(at, 2500);
  // Minutes: 10 wall, 5 training, 1 evaluating, 3 estimating, 1 other.
  EXPECT_NE(section.find("| 01-elbo-vs-latent | smoke | synthetic | 1 | 10.0 | 5.0 | 1.0 | 3.0 |"),
            std::string::npos)
      << section;
  EXPECT_NE(section.find("| 1.0 |\n"), std::string::npos) << section;
}

TEST_F(ReportFromFixtures, AFailedRunShowsItsErrorAndHowToRerun) {
  // Chapter 3's complete result replaced by a failed one (a real failure's run.json).
  fs::remove_all(root / "results/03-beta-sweep");
  fs::copy(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/failed/03-beta-sweep.failed",
           root / "results/03-beta-sweep.failed", fs::copy_options::recursive);
  options.pdf = false;
  const auto outcome = rp::generate(options);
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("The last run failed"), std::string::npos);
  EXPECT_NE(html.find("non-finite at step 120"), std::string::npos);
  EXPECT_NE(html.find("make chapter-03"), std::string::npos);
  // Nothing of chapter 3's results is rendered, and the summary says failed.
  EXPECT_FALSE(fs::exists(root / "figures/ch03-curves.svg"));
  bool skipped_failed = false;
  for (const auto& s : outcome.skipped) skipped_failed |= s.rfind("03-beta-sweep: failed", 0) == 0;
  EXPECT_TRUE(skipped_failed);
}

TEST_F(ReportFromFixtures, HtmlIsWellFormedAndEveryReferencedFileExists) {
  rp::generate(options);
  const std::string html = read(root / "out/index.html");
  EXPECT_EQ(check_well_formed(html), "");
  std::regex ref(R"re((?:src|href)="([^"#]+)")re");
  int images = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator();
       ++it) {
    const std::string target = (*it)[1];
    if (target.rfind("http", 0) == 0 || target.rfind("mailto:", 0) == 0) {
      ADD_FAILURE() << "the report references the network: " << target;
      continue;
    }
    EXPECT_TRUE(fs::exists(root / "out" / target)) << target;
    images += target.find("images/") == 0 || target.find("figures/") == 0;
  }
  EXPECT_GE(images, 4);
  // Math is rendered without a CDN.
  EXPECT_NE(html.find("<math"), std::string::npos);
  EXPECT_EQ(html.find("<script src="), std::string::npos);
}

TEST_F(ReportFromFixtures, TheFidelityTableAndSeedIntervals) {
  // One seed: the fidelity table names every published number of chapter 1, with the fresh value.
  auto outcome = rp::generate(options);
  std::string md_text = read(root / "out/report.md");
  EXPECT_NE(md_text.find("# Do the published numbers hold?"), std::string::npos);
  EXPECT_NE(md_text.find("| [01](#chapter-01) | KW2013 Fig. 2 (D) | test bound, Nz = 20 |"),
            std::string::npos);
  EXPECT_NE(md_text.find("not compared: CIFAR-10 is not run"), std::string::npos);
  EXPECT_FALSE(std::regex_search(md_text, std::regex(R"(\bn/c\b)")))
      << "a bare n/c instead of a reason";
  const json m1 = fixture_metrics();
  double te20 = 0;
  for (const auto& m : m1["models"]) {
    if (m["nz"] == 20) te20 = m["final"]["test"]["elbo"].get<double>();
  }
  EXPECT_NE(md_text.find(rp::fmt1(te20) + " (one seed)"), std::string::npos);

  // A second seed of the same configuration: means and spreads; another configuration is left out,
  // and said.
  json run = json::parse(read(root / "results/01-elbo-vs-latent/run.json"));
  json metrics = m1;
  for (auto& m : metrics["models"])
    m["final"]["test"]["elbo"] = m["final"]["test"]["elbo"].get<double>() - 2.0;
  run["seed"] = 7;
  fs::create_directories(root / "results/seeds/7");
  fs::copy(root / "results/01-elbo-vs-latent", root / "results/seeds/7/01-elbo-vs-latent",
           fs::copy_options::recursive);
  std::ofstream(root / "results/seeds/7/01-elbo-vs-latent/run.json") << run.dump();
  std::ofstream(root / "results/seeds/7/01-elbo-vs-latent/metrics.json") << metrics.dump();
  run["seed"] = 8;
  run["profile"] = "full";
  fs::create_directories(root / "results/seeds/8");
  fs::copy(root / "results/01-elbo-vs-latent", root / "results/seeds/8/01-elbo-vs-latent",
           fs::copy_options::recursive);
  std::ofstream(root / "results/seeds/8/01-elbo-vs-latent/run.json") << run.dump();
  outcome = rp::generate(options);
  md_text = read(root / "out/report.md");
  // mean te20 - 1, sd sqrt(2) = 1.4
  EXPECT_NE(md_text.find(rp::fmt1(te20 - 1.0) + " &plusmn; 1.4 (2 seeds)"), std::string::npos);
  EXPECT_NE(md_text.find("**Over 2 seeds**"), std::string::npos);
  bool said = false;
  for (const auto& s : outcome.skipped)
    said |= s.find("seed 8 ran another configuration") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(ReportFromFixtures, ACorruptResultIsSkippedAndSaysHowToRerun) {
  // A truncated run.json (tests/fixtures/corrupt/) in place of chapter 6's complete result.
  fs::remove_all(root / "results/06-architecture-search");
  fs::copy(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/corrupt/06-architecture-search",
           root / "results/06-architecture-search", fs::copy_options::recursive);
  options.pdf = false;
  const auto outcome = rp::generate(options);
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("incomplete or corrupt"), std::string::npos);
  EXPECT_NE(html.find("make chapter-06"), std::string::npos);
  bool skipped_corrupt = false;
  for (const auto& s : outcome.skipped)
    skipped_corrupt |= s.rfind("06-architecture-search: incomplete or corrupt", 0) == 0;
  EXPECT_TRUE(skipped_corrupt);
  // The other chapters are still rendered.
  EXPECT_NE(html.find("Criterion:"), std::string::npos);
}

// Issue #18: the budget and the provisional wording come from what the run
// recorded, not from the profile's name.
TEST_F(ReportFromFixtures, BudgetsAndProvisionalVerdictsAreTheRunsOwn) {
  namespace sc = vaerepro::schema;
  options.pdf = false;
  options.plots = false;
  // The smoke fixtures: every chapter with verdicts says they are provisional, why, and how to
  // decide them.
  rp::generate(options);
  std::string md_text = read(root / "out/report.md");
  for (int n = 1; n <= 6; ++n) {
    const std::string section = chapter_section(md_text, n);
    ASSERT_FALSE(section.empty()) << "chapter " << n;
    EXPECT_EQ(section.find("quick profile"), std::string::npos) << "chapter " << n;
  }
  const json run1 = fixture_json(sc::ch01::kSlug, "run.json");
  ASSERT_EQ(sc::schema_version_of(run1), sc::kSchemaVersion)
      << "regenerate the fixtures: make fixtures";
  const sc::Budget b1 = run1.at(sc::run_key::kBudget).get<sc::Budget>();
  EXPECT_TRUE(b1.provisional);
  EXPECT_EQ(b1.profile, "smoke");
  std::string ch1 = chapter_section(md_text, 1);
  EXPECT_NE(ch1.find("*Provisional:* " + rp::md(b1.why)), std::string::npos) << ch1;
  EXPECT_NE(ch1.find("`make chapter-01 PROFILE=full` trains at the paper's budget"),
            std::string::npos)
      << ch1;
  EXPECT_NE(ch1.find("(provisional)"), std::string::npos);
  EXPECT_NE(ch1.find("| profile and budget | smoke: " + rp::md(b1.text)), std::string::npos) << ch1;
  for (int n : {2, 3, 4, 6}) {
    EXPECT_NE(chapter_section(md_text, n).find("PROFILE=full` trains at the paper's budget"),
              std::string::npos)
        << "chapter " << n;
  }

  // A run that recorded the paper's budget (a full run): no "(provisional)", no advice to rerun it.
  for (const char* slug : {sc::ch01::kSlug, sc::ch03::kSlug, sc::ch06::kSlug}) {
    json run = fixture_json(slug, "run.json");
    sc::Budget b = run.at(sc::run_key::kBudget).get<sc::Budget>();
    b = sc::make_budget("full", b.paper_amount, b.paper_amount, b.unit, b.paper,
                        "the paper's budget");
    run[sc::run_key::kBudget] = b;
    run[sc::run_key::kProfile] = "full";
    write_json(slug, "run.json", run);
  }
  rp::generate(options);
  md_text = read(root / "out/report.md");
  for (int n : {1, 3, 6}) {
    const std::string section = chapter_section(md_text, n);
    EXPECT_EQ(section.find("(provisional)"), std::string::npos) << "chapter " << n << ":\n"
                                                                << section;
    EXPECT_EQ(section.find("PROFILE=full"), std::string::npos) << "chapter " << n;
    EXPECT_NE(section.find("*Budget:* decided at the paper's budget or beyond"), std::string::npos)
        << "chapter " << n;
    EXPECT_NE(section.find("verdicts not provisional"), std::string::npos) << "chapter " << n;
  }

  // A full profile below the paper's budget (an override) is provisional, without the advice to run
  // the full profile.
  {
    json run = fixture_json(sc::ch03::kSlug, "run.json");
    run[sc::run_key::kBudget] =
        sc::make_budget("full", 3e7, 6e7, "training samples per model", "seed 000: 6e7", "3e7");
    write_json(sc::ch03::kSlug, "run.json", run);
  }
  rp::generate(options);
  const std::string ch3 = chapter_section(read(root / "out/report.md"), 3);
  EXPECT_NE(ch3.find("(provisional)"), std::string::npos);
  EXPECT_NE(ch3.find("50% of the paper's 6e+07"), std::string::npos) << ch3;
  EXPECT_EQ(ch3.find("PROFILE=full"), std::string::npos);
}

TEST_F(ReportFromFixtures, AResultInTheOlderLayoutIsReadAndSaysSo) {
  // Chapter 1 as the previous layout wrote it (tests/fixtures/v1/): no
  // schema_version, the budget a sentence, checks_budget in metrics.json.
  const fs::path dir = root / "results/01-elbo-vs-latent";
  for (const char* f : {"run.json", "metrics.json"}) {
    fs::copy_file(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/v1/01-elbo-vs-latent" / f,
                  dir / f, fs::copy_options::overwrite_existing);
  }
  options.pdf = false;
  const auto outcome = rp::generate(options);
  const std::string md_text = read(root / "out/report.md");
  const std::string ch1 = chapter_section(md_text, 1);
  EXPECT_NE(ch1.find("**Older results layout.**"), std::string::npos) << ch1;
  EXPECT_NE(ch1.find("`make chapter-01` with the same options regenerates it"), std::string::npos)
      << ch1;
  // Its numbers are still read, its budget sentence shown, its verdicts provisional as it recorded.
  const json old = json::parse(read(dir / "metrics.json"));
  for (const auto& m : old["models"]) {
    if (m["role"] != "sweep") continue;
    EXPECT_NE(ch1.find(rp::fmt1(m["final"]["test"]["elbo"].get<double>())), std::string::npos);
  }
  EXPECT_NE(ch1.find("each model sees 3000 training samples"), std::string::npos);
  EXPECT_NE(ch1.find("*Provisional:* decided at a fraction of KW2013"), std::string::npos) << ch1;
  for (const auto& s : outcome.skipped)
    EXPECT_NE(s.rfind("01-elbo-vs-latent: incomplete", 0), 0u) << s;
  // The other chapters (current layout) say nothing of the kind.
  EXPECT_EQ(chapter_section(md_text, 2).find("Older results layout"), std::string::npos);
}

TEST_F(ReportFromFixtures, AResultInANewerLayoutIsSkippedWithTheReason) {
  json run = fixture_json("02-marginal-likelihood", "run.json");
  run[vaerepro::schema::run_key::kSchemaVersion] = vaerepro::schema::kSchemaVersion + 1;
  write_json("02-marginal-likelihood", "run.json", run);
  options.pdf = false;
  const auto outcome = rp::generate(options);
  std::string skipped;
  for (const auto& s : outcome.skipped) skipped += s + "\n";
  EXPECT_NE(skipped.find("02-marginal-likelihood: incomplete or corrupt"), std::string::npos)
      << skipped;
  EXPECT_NE(skipped.find("newer than this report generator reads"), std::string::npos) << skipped;
}

TEST_F(ReportFromFixtures, ABudgetRecordWithoutItsFieldsNamesTheKey) {
  json run = fixture_json("03-beta-sweep", "run.json");
  run[vaerepro::schema::run_key::kBudget].erase(vaerepro::schema::budget_key::kWhy);
  write_json("03-beta-sweep", "run.json", run);
  options.pdf = false;
  const auto outcome = rp::generate(options);
  std::string skipped;
  for (const auto& s : outcome.skipped) skipped += s + "\n";
  EXPECT_NE(skipped.find("03-beta-sweep: incomplete or corrupt"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("why"), std::string::npos) << skipped;
}

TEST(ResultsSchema, TheBudgetRecordDecidesProvisionalAndRoundTrips) {
  namespace sc = vaerepro::schema;
  const sc::Budget low =
      sc::make_budget("quick", 1.5e6, 1e8, "training samples per model", "KW2013 Fig. 2: 1e8", "t");
  EXPECT_TRUE(low.provisional);
  EXPECT_EQ(low.why,
            "decided at 1.5e+06 training samples per model, 1.5% of the paper's 1e+08 (KW2013 Fig. "
            "2: 1e8)");
  EXPECT_EQ(sc::make_budget("smoke", 3000, 1e8, "samples", "p", "t")
                .why.rfind("decided at 3000 samples, 0.003%", 0),
            0u);
  EXPECT_EQ(sc::budget_number(2.5), "2.5");
  EXPECT_EQ(sc::budget_number(6e7), "6e+07");
  const sc::Budget at =
      sc::make_budget("full", 1e8, 1e8, "training samples per model", "KW2013", "t");
  EXPECT_FALSE(at.provisional);
  EXPECT_FALSE(sc::make_budget("full", 2e8, 1e8, "u", "p", "t").provisional);
  const sc::Budget none = sc::make_budget("full", 10, NAN, "epochs", "no budget stated", "t");
  EXPECT_FALSE(none.provisional);
  EXPECT_NE(none.why.find("states no budget"), std::string::npos);
  // Round trip through JSON, NaN as null.
  const json j = none;
  EXPECT_TRUE(j.at(sc::budget_key::kPaperAmount).is_null());
  const sc::Budget back = j.get<sc::Budget>();
  EXPECT_EQ(back.profile, "full");
  EXPECT_EQ(back.amount, 10);
  EXPECT_TRUE(std::isnan(back.paper_amount));
  EXPECT_EQ(back.why, none.why);
  EXPECT_FALSE(back.legacy);
  const sc::Budget back_low = json(low).get<sc::Budget>();
  EXPECT_EQ(back_low.amount, 1.5e6);
  EXPECT_EQ(back_low.paper_amount, 1e8);
  EXPECT_TRUE(back_low.provisional);
}

TEST(ResultsSchema, ACheckIsWrittenUnderTheKeysTheReportReads) {
  namespace sc = vaerepro::schema;
  const json j = sc::Check{"a claim", "a criterion", true, "1 -> 2"};
  EXPECT_EQ(j.at(sc::key::kClaim), "a claim");
  EXPECT_EQ(j.at(sc::key::kCriterion), "a criterion");
  EXPECT_EQ(j.at(sc::key::kHolds), true);
  EXPECT_EQ(j.at(sc::key::kDetail), "1 -> 2");
  const sc::Check back = j.get<sc::Check>();
  EXPECT_EQ(back.claim, "a claim");
  EXPECT_TRUE(back.holds);
  json missing = j;
  missing.erase(sc::key::kHolds);
  EXPECT_THROW(missing.get<sc::Check>(), json::exception);
  // Every fixture's verdicts read as checks.
  for (const char* slug :
       {sc::ch01::kSlug, sc::ch02::kSlug, sc::ch03::kSlug, sc::ch04::kSlug, sc::ch06::kSlug}) {
    std::ifstream in(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/results" / slug /
                     "metrics.json");
    const json metrics = json::parse(in);
    EXPECT_NO_THROW(metrics.at(sc::key::kChecks).get<std::vector<sc::Check>>()) << slug;
  }
}

// The run.json `config` entries each renderer prints in its setup table:
// every complete fixture (a smoke run of the chapter as built) holds them,
// so an option renamed in a chapter's OptionTable shows here, not as a "?".
TEST(ResultsSchema, EveryFixtureRecordsTheConfigTheReportReads) {
  namespace sc = vaerepro::schema;
  namespace cfg = sc::config_key;
  const std::vector<std::pair<std::string, std::vector<std::string>>> wanted = {
      {sc::ch01::kSlug,
       {cfg::kActivation, cfg::kBatchSize, cfg::kInit, cfg::kOptimizer, cfg::kSamplesPerModel,
        cfg::kEvalPoints, sc::ch01::kConfigHidden}},
      {sc::ch02::kSlug,
       {cfg::kArchitecture, cfg::kActivation, cfg::kInit, cfg::kOptimizer, cfg::kBatchSize,
        sc::ch02::kConfigEvalExamples, sc::ch02::kConfigKCurve, sc::ch02::kConfigKFinal,
        sc::ch02::kConfigHmcExamples}},
      {sc::ch03::kSlug,
       {cfg::kArchitecture, cfg::kActivation, cfg::kOptimizer, cfg::kBatchSize,
        sc::ch03::kConfigTraversalNz, sc::ch03::kConfigAppendixNz,
        sc::ch03::kConfigTraversalCondition, sc::ch03::kConfigTraversalBetas}},
      {sc::ch04::kSlug,
       {cfg::kArchitecture, cfg::kActivation, cfg::kSamplesPerModel, sc::ch04::kConfigBetaBvae,
        sc::ch04::kConfigClassifier, sc::ch04::kConfigClassifierEpochs, sc::ch04::kConfigPerLabel}},
      {sc::ch06::kSlug,
       {cfg::kActivation, cfg::kOptimizer, cfg::kBatchSize, sc::ch06::kConfigMeasuredOn,
        sc::ch06::kConfigSamplesPerProbe}},
  };
  for (const auto& [slug, keys] : wanted) {
    std::ifstream in(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/results" / slug / "run.json");
    const json run = json::parse(in);
    const json& config = run.at(sc::run_key::kConfig);
    for (const auto& key : keys)
      EXPECT_TRUE(config.contains(key)) << slug << ": config lacks " << key;
    if (config.contains(cfg::kOptimizer)) {
      for (const char* key : {cfg::kOptimizerName, cfg::kLr}) {
        EXPECT_TRUE(config[cfg::kOptimizer].contains(key))
            << slug << ": config.optimizer lacks " << key;
      }
    }
  }
}

TEST(ResultsSchema, VersionsAndTheOlderLayoutsBudget) {
  namespace sc = vaerepro::schema;
  EXPECT_EQ(sc::schema_version_of(json::object()), sc::kLegacySchemaVersion);
  EXPECT_EQ(sc::schema_version_of(json{{sc::run_key::kSchemaVersion, 2}}), 2);
  EXPECT_EQ(sc::schema_version_of(json{{sc::run_key::kSchemaVersion, "2"}}),
            sc::kLegacySchemaVersion);
  EXPECT_EQ(sc::schema_version_of(json()), sc::kLegacySchemaVersion);
  // Version 1: the sentence and checks_budget.
  const json run = {{"profile", "quick"}, {"budget", "each model sees 1500000 training samples"}};
  const json metrics = {{"checks_budget",
                         {{"provisional", false},
                          {"note", "decided at KW2013's budget"},
                          {"samples_per_model", 1e8},
                          {"paper_samples", 1e8}}}};
  const sc::Budget b = sc::read_budget(run, metrics);
  EXPECT_TRUE(b.legacy);
  EXPECT_FALSE(b.provisional);
  EXPECT_EQ(b.text, "each model sees 1500000 training samples");
  EXPECT_EQ(b.why, "decided at KW2013's budget");
  EXPECT_EQ(b.amount, 1e8);
  EXPECT_EQ(b.profile, "quick");
  // Version 1 without checks_budget: provisional, as the report always read it.
  EXPECT_TRUE(sc::read_budget(run, json::object()).provisional);
  // Version 2 without a record (a chapter that wrote a sentence): provisional, and the reason says
  // so.
  json v2 = run;
  v2[sc::run_key::kSchemaVersion] = sc::kSchemaVersion;
  const sc::Budget missing = sc::read_budget(v2, metrics);
  EXPECT_TRUE(missing.provisional);
  EXPECT_FALSE(missing.legacy);
  EXPECT_NE(missing.why.find("no budget record"), std::string::npos);
  // Version 2 with a record: the record, whatever metrics.json says.
  v2[sc::run_key::kBudget] = sc::make_budget("full", 1e8, 1e8, "u", "p", "t");
  EXPECT_FALSE(sc::read_budget(v2, json{{"checks_budget", {{"provisional", true}}}}).provisional);
}

TEST(NoiseVerdict, WithinAndOutsideTwoStandardErrors) {
  rp::Spread s;
  s.values = {-100.0, -101.0, -99.0};
  s.seeds = {1, 2, 3};
  s.mean = -100.0;
  s.sd = 1.0;
  // u = sqrt(1 * (1 + 1/3) + 0.25) = 1.258; 2u = 2.52
  EXPECT_NE(rp::noise_verdict(s, -102.5, 0.5).second.find("within noise"), std::string::npos);
  EXPECT_NE(rp::noise_verdict(s, -102.6, 0.5).second.find("outside noise"), std::string::npos);
  EXPECT_EQ(rp::noise_verdict(s, -102.6, 0.5).first, "+2.6");
  EXPECT_NE(rp::noise_verdict(s, -97.4, 0.5).second.find("fresh lower"), std::string::npos);
  rp::Spread one;
  one.values = {-100.0};
  one.mean = -100.0;
  EXPECT_NE(rp::noise_verdict(one, -101.0, 0.5).second.find("no error bar"), std::string::npos);
  EXPECT_NE(rp::noise_verdict(one, -101.0, 0.5, 1.0).second.find("within noise"),
            std::string::npos);
}

TEST_F(ReportFromFixtures, TheLiteratePagesTravelInsideTheReport) {
  // Without Doxygen's pages: no link to them, and the text says how to get them.
  auto outcome = rp::generate(options);
  std::string html = read(root / "out/index.html");
  EXPECT_EQ(html.find("href=\"docs/"), std::string::npos);
  EXPECT_NE(read(root / "out/report.md").find("`make docs` builds it"), std::string::npos);
  // With them: copied into out/docs/, linked relatively, every link resolves.
  fs::create_directories(root / "docs/search");
  for (const char* page :
       {"chapter01", "chapter02", "chapter03", "chapter04", "chapter05", "chapter06"}) {
    std::ofstream(root / "docs" / (std::string(page) + ".html"))
        << "<html><body>" << page << "</body></html>";
  }
  std::ofstream(root / "docs/search/search.js") << "// search";
  outcome = rp::generate(options);
  html = read(root / "out/index.html");
  EXPECT_NE(html.find("href=\"docs/chapter01.html\""), std::string::npos);
  EXPECT_TRUE(fs::exists(root / "out/docs/chapter06.html"));
  EXPECT_TRUE(fs::exists(root / "out/docs/search/search.js"));
  std::regex ref(R"re((?:src|href)="([^"#]+)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator();
       ++it) {
    EXPECT_TRUE(fs::exists(root / "out" / std::string((*it)[1]))) << (*it)[1];
  }
}

TEST_F(ReportFromFixtures, LatexReferencesExistAndCompiles) {
  const auto outcome = rp::generate(options);
  const std::string tex = read(root / "out/report.tex");
  std::regex inc(R"re(\\includegraphics(?:\[[^\]]*\])?\{([^}]+)\})re");
  int n = 0;
  for (auto it = std::sregex_iterator(tex.begin(), tex.end(), inc); it != std::sregex_iterator();
       ++it, ++n) {
    fs::path p = root / "out" / std::string((*it)[1]);
    if (!p.has_extension()) p += ".pdf";
    EXPECT_TRUE(fs::exists(p)) << p;
  }
  EXPECT_GE(n, 4);
  if (!options.pdf) GTEST_SKIP() << "pdflatex/latexmk not installed (CI installs them)";
  EXPECT_TRUE(outcome.pdf_built) << read(root / "out/latexmk.log");
  EXPECT_GT(fs::file_size(root / "out/report.pdf"), 10000u);
}

TEST_F(ReportFromFixtures, NeverCrashesOnPartialResults) {
  // metrics.json without the fields the renderer needs, and a chapter whose
  // run.json says it is still running.
  {
    std::ofstream(root / "results/01-elbo-vs-latent/metrics.json") << R"({"models": [{"nz": 3}]})";
    fs::remove_all(root / "results/02-marginal-likelihood");
    fs::create_directories(root / "results/02-marginal-likelihood");
    std::ofstream(root / "results/02-marginal-likelihood/run.json") << R"({"status": "running"})";
  }
  options.pdf = false;
  rp::Outcome outcome;
  ASSERT_NO_THROW(outcome = rp::generate(options));
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("incomplete or corrupt"), std::string::npos);
  int skipped = 0;
  for (const auto& s : outcome.skipped) {
    skipped += s.rfind("01-elbo-vs-latent", 0) == 0 || s.rfind("02-marginal-likelihood", 0) == 0;
  }
  EXPECT_EQ(skipped, 2);
}

TEST_F(ReportFromFixtures, NeverCrashesOnOddJson) {
  // run.json files that are valid JSON but not objects, or objects with
  // fields of the wrong type.
  fs::create_directories(root / "results/02-marginal-likelihood.failed");
  std::ofstream(root / "results/02-marginal-likelihood.failed/run.json") << "[]";
  fs::create_directories(root / "results/05-vqvae-pixelcnn");
  std::ofstream(root / "results/05-vqvae-pixelcnn/run.json") << "null";
  std::ofstream(root / "results/01-elbo-vs-latent/run.json")
      << R"({"status": "complete", "dataset": 3, "protocol": [], "provenance": "x"})";
  std::ofstream(root / "results/01-elbo-vs-latent/metrics.json")
      << R"({"checks": [1, "a"], "models": 7})";
  options.pdf = false;
  ASSERT_NO_THROW(rp::generate(options));
  const std::string html = read(root / "out/index.html");
  size_t corrupt = 0;
  for (size_t pos = html.find("incomplete or corrupt"); pos != std::string::npos;
       pos = html.find("incomplete or corrupt", pos + 1)) {
    ++corrupt;
  }
  EXPECT_GE(corrupt, 3u);
}

TEST_F(ReportFromFixtures, NoDifferenceIsPrintedAgainstPapersOnOtherData) {
  options.pdf = false;
  rp::generate(options);
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("n/c"), std::string::npos);  // the fixture ran on synthetic data
  EXPECT_NE(html.find("not comparable"), std::string::npos);
}

TEST_F(ReportFromFixtures, AnEmptyResultsFolderGivesAllNotRun) {
  fs::remove_all(root / "results");
  options.pdf = false;
  rp::generate(options);
  const std::string html = read(root / "out/index.html");
  size_t count = 0;
  for (size_t pos = html.find("Not run yet"); pos != std::string::npos;
       pos = html.find("Not run yet", pos + 1))
    ++count;
  const auto chapters =
      json::parse(read(fs::path(VAEREPRO_SOURCE_DIR) / "report/templates/chapters.json"));
  EXPECT_EQ(count, chapters.size());  // every chapter, written or not
  // A written chapter says how to run it; an unwritten one says it is not written.
  size_t unwritten = 0;
  for (const auto& ch : chapters) {
    if (!ch.value("written", false)) {
      ++unwritten;
      continue;
    }
    EXPECT_NE(html.find("Run it with <code>" + ch["make"].get<std::string>() + "</code>"),
              std::string::npos)
        << ch["slug"];
  }
  size_t not_written = 0;
  for (size_t pos = html.find("not written yet"); pos != std::string::npos;
       pos = html.find("not written yet", pos + 1))
    ++not_written;
  EXPECT_EQ(not_written, unwritten);
}

TEST(Substitute, FillsKnownKeysAndReportsUnknownOnes) {
  std::vector<std::string> unknown;
  EXPECT_EQ(rp::substitute("a {{x}} b {{y}}", {{"x", "1"}}, &unknown), "a 1 b {{y}}");
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0], "y");
}

TEST(Format, OneDecimal) {
  EXPECT_EQ(rp::fmt1(-266.6049), "-266.6");
  EXPECT_EQ(rp::fmt1(-0.01), "0.0");
  EXPECT_EQ(rp::fmt1(std::nan("")), "n/a");
  EXPECT_EQ(rp::fmt1(json("x")), "n/a");
}

}  // namespace

namespace {

TEST(PerformanceAppendix, SaysHowToProduceItWhenThereIsNoBenchmark) {
  const fs::path root = fs::temp_directory_path() / ("vaerepro-perf-" + std::to_string(::getpid()));
  fs::remove_all(root);
  rp::Paths paths;
  paths.results = (root / "results").string();
  rp::Outcome outcome;
  const std::string md = rp::render_performance(paths, outcome);
  EXPECT_NE(md.find("No benchmark results yet"), std::string::npos) << md;
  EXPECT_NE(md.find("make bench"), std::string::npos) << md;
  EXPECT_NE(md.find("No GPU check has run yet"), std::string::npos) << md;
  EXPECT_NE(md.find("make gpu-bundle"), std::string::npos) << md;
  // Corrupt: named and skipped, never a crash.
  fs::create_directories(root / "results/bench");
  std::ofstream(root / "results/bench/bench.json") << "{\"configs\": ";
  const std::string bad = rp::render_performance(paths, outcome);
  EXPECT_NE(bad.find("could not be read"), std::string::npos) << bad;
  fs::remove_all(root);
}

TEST(PerformanceAppendix, ShowsTheMediansRatiosVerdictsAndEnvironment) {
  const fs::path root =
      fs::temp_directory_path() / ("vaerepro-perf2-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "results/bench");
  const json b = {
      {"settings", {{"steps", 50}, {"repeats", 3}, {"warmup", 5}}},
      {"data", "Fashion-MNIST"},
      {"gpu", {{"measured", false}, {"note", "no CUDA device: GPU numbers were not measured"}}},
      {"environment",
       {{"cpu_model", "Test CPU"},
        {"blas_library", "/usr/lib/libopenblas.so"},
        {"openblas_corename", "Haswell"},
        {"env", {{"OPENBLAS_CORETYPE", "Haswell"}}},
        {"load_at_start", {{"1min", 0.25}}},
        {"load_at_end", {{"1min", 1.5}}}}},
      {"warnings", {"the machine was busy"}},
      {"configs",
       {{{"name", "kw"},
         {"description", "KW config"},
         {"variants",
          {{"suite",
            {{"median_samples_per_s", 30000.0}, {"threads", 2}, {"other_runnable_before", 0.0}}},
           {"python-default",
            {{"median_samples_per_s", 12000.0},
             {"threads", 1},
             {"torch_version", "1.13.1"},
             {"python", "3.11.2"}}},
           {"gemm-bound", {{"median_samples_per_s", 40000.0}, {"threads", 2}}}}},
         {"targets",
          {{{"target", "epoch within 1.5x of the GEMM-only bound"},
            {"value", 1.3333},
            {"threshold", 1.5},
            {"at_most", true},
            {"holds", true}},
           {{"target", "at least 2.5x the default Python loop"},
            {"value", 2.5},
            {"threshold", 2.5},
            {"at_most", false},
            {"holds", true}},
           {{"target", "at least 1.5x the tuned Python loop"},
            {"value", nullptr},
            {"threshold", 1.5},
            {"at_most", false},
            {"holds", nullptr}}}}}}}};
  std::ofstream(root / "results/bench/bench.json") << b.dump();
  rp::Paths paths;
  paths.results = (root / "results").string();
  rp::Outcome outcome;
  const std::string md = rp::render_performance(paths, outcome);
  EXPECT_NE(md.find("30000"), std::string::npos) << md;  // suite samples/s
  EXPECT_NE(md.find("2.00"), std::string::npos) << md;   // 60,000 / 30,000 s per epoch
  EXPECT_NE(md.find("1.33x"), std::string::npos) << md;  // step over bound
  EXPECT_NE(md.find("2.50x as fast"), std::string::npos) << md;
  EXPECT_NE(md.find("not measured"), std::string::npos) << md;
  EXPECT_NE(md.find("GPU numbers were not measured"), std::string::npos) << md;
  EXPECT_NE(md.find("Haswell"), std::string::npos) << md;
  EXPECT_NE(md.find("0.25 / 1.50"), std::string::npos) << md;
  EXPECT_NE(md.find("torch 1.13.1"), std::string::npos) << md;
  EXPECT_NE(md.find("the machine was busy"), std::string::npos) << md;
  EXPECT_EQ(md.find("OPENBLAS_CORETYPE unset"), std::string::npos)
      << "no second run: no second section";

  // The same figures taken with OPENBLAS_CORETYPE unset: their own section,
  // saying how they were taken.
  json u = b;
  u["environment"]["coretype_setting"] = "unset";
  u["environment"]["coretype_in_environment"] = "Haswell";
  u["environment"]["openblas_corename"] = "Cooperlake";
  u["configs"][0]["variants"]["suite"]["median_samples_per_s"] = 48000.0;
  std::ofstream(root / "results/bench/bench-coretype-unset.json") << u.dump();
  const std::string both = rp::render_performance(paths, outcome);
  const auto section = both.find("The same with OPENBLAS_CORETYPE unset");
  ASSERT_NE(section, std::string::npos) << both;
  EXPECT_NE(both.find("48000", section), std::string::npos) << both;
  EXPECT_NE(both.find("Cooperlake", section), std::string::npos) << both;
  EXPECT_NE(both.find("--coretype unset", section), std::string::npos) << both;
  EXPECT_EQ(both.find("48000"), both.find("48000", section))
      << "the unset figures only in their own section";
  fs::remove_all(root);
}

// bench-train --load's contended section (issue #21): its targets with their
// verdicts and conditions, and every row with its paired ratios.
TEST(PerformanceAppendix, ShowsTheContendedRowsAndTheirVerdicts) {
  const fs::path root =
      fs::temp_directory_path() / ("vaerepro-perf3-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "results/bench");
  const json row_quiet = {{"variant", "suite"},
                          {"competing", 0},
                          {"median_samples_per_s", 20000.0},
                          {"threads", 2},
                          {"of_quiet", 1.0},
                          {"of_1_thread", 1.6},
                          {"background_runnable", 0.5},
                          {"wait_policy", "passive (set by the suite at start)"}};
  const json row_loaded = {{"variant", "suite-libgomp-default"},
                           {"competing", 1},
                           {"median_samples_per_s", 1234.0},
                           {"threads", 2},
                           {"of_quiet", 0.07},
                           {"of_1_thread", 0.21},
                           {"background_runnable", 2.5},
                           {"wait_policy", "libgomp default (spins)"}};
  const json failed = {{"variant", "suite-1-thread"},
                       {"competing", 2},
                       {"median_samples_per_s", nullptr},
                       {"error", "stopped after 300 s"}};
  const json b = {
      {"configs",
       {{{"name", "kw"},
         {"description", "KW config"},
         {"variants", json::object()},
         {"contended",
          {{"rounds", 3},
           {"steps", 100},
           {"warmup", 10},
           {"variants", {{"suite-libgomp-default", {{"what", "libgomp's default wait policy"}}}}},
           {"rows", {row_quiet, row_loaded, failed}},
           {"targets",
            {{{"target", "with 1 competing process: at least 40% of the quiet throughput"},
              {"value", 0.55},
              {"threshold", 0.4},
              {"rounds", 3},
              {"background_runnable", 2.5},
              {"holds", true}},
             {{"target",
               "with 2 competing processes: not slower than --threads 1 under the same load"},
              {"value", 0.9},
              {"threshold", 1.0},
              {"rounds", 2},
              {"background_runnable", 1.0},
              {"holds", false}},
             {{"target",
               "with 1 competing process: not slower than --threads 1 under the same load"},
              {"value", nullptr},
              {"threshold", 1.0},
              {"rounds", 0},
              {"background_runnable", 0.0},
              {"holds", nullptr},
              {"why_not_judged", "not measured (a variant failed or was stopped)"}}}}}}}}}};
  std::ofstream(root / "results/bench/bench.json") << b.dump();
  rp::Paths paths;
  paths.results = (root / "results").string();
  rp::Outcome outcome;
  const std::string md = rp::render_performance(paths, outcome);
  const auto at = md.find("beside competing processes");
  ASSERT_NE(at, std::string::npos) << md;
  EXPECT_NE(
      md.find("at least 40% of the quiet throughput | 0.55x | >= 0.40x | 3 | 2.5 | **yes** |", at),
      std::string::npos)
      << md;
  EXPECT_NE(
      md.find(
          "not slower than --threads 1 under the same load | 0.90x | >= 1.00x | 2 | 1.0 | **no** |",
          at),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("not judged: not measured", at), std::string::npos) << md;
  EXPECT_NE(
      md.find("| suite | 0 | 20000 | 2 | passive (set by the suite at start) | 1.00 | 1.60 | 0.5 |",
              at),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("| suite-libgomp-default | 1 | 1234 | 2 |", at), std::string::npos) << md;
  EXPECT_NE(md.find("| suite-1-thread | 2 | failed: stopped after 300 s", at), std::string::npos)
      << md;
  EXPECT_NE(md.find("libgomp's default wait policy", at), std::string::npos) << md;
  fs::remove_all(root);

  // A wrong type in the section is named, and the appendix still appears.
  json bad = b;
  bad["configs"][0]["contended"]["rows"][0]["of_quiet"] = "high";
  fs::create_directories(root / "results/bench");
  std::ofstream(root / "results/bench/bench.json") << bad.dump();
  const std::string named = rp::render_performance(paths, outcome);
  EXPECT_NE(named.find(rp::md("configs[0].contended.rows[0].of_quiet: expected a number")),
            std::string::npos)
      << named;
  fs::remove_all(root);
}

// The GPU check's summary (tests/fixtures/gpu/gpu-check.json, the shape
// scripts/gpu_check_summary.py writes) beside the CPU's figures: bench.json's
// KW suite and a CPU probe of chapter 6 from results/.
TEST(PerformanceAppendix, ShowsTheGpuCheckBesideTheCpu) {
  const fs::path root =
      fs::temp_directory_path() / ("vaerepro-perf3-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "results/gpu");
  fs::copy_file(fs::path(VAEREPRO_SOURCE_DIR) / "tests/fixtures/gpu/gpu-check.json",
                root / "results/gpu/gpu-check.json");
  fs::create_directories(root / "results/bench");
  std::ofstream(root / "results/bench/bench.json")
      << json{{"configs",
               {{{"name", "kw"},
                 {"description", "KW"},
                 {"variants", {{"suite", {{"median_samples_per_s", 25000.0}, {"threads", 2}}}}}}}}}
             .dump();
  const fs::path probe = root / "results/.points/06-architecture-search/probe-[500, 500, 3]-r0-abc";
  fs::create_directories(probe);
  std::ofstream(probe / "point.json") << json{
      {"status", "complete"},
      {"samples_seen", 120000},
      {"train_seconds", 12.0},
      {"device", "cpu"}}.dump();
  rp::Paths paths;
  paths.results = (root / "results").string();
  rp::Outcome outcome;
  const std::string md = rp::render_performance(paths, outcome);
  const auto at = md.find("### On a GPU");
  ASSERT_NE(at, std::string::npos) << md;
  const std::string gpu = md.substr(at);
  EXPECT_EQ(gpu.find("No GPU check has run yet"), std::string::npos) << gpu;
  EXPECT_NE(gpu.find("NVIDIA H200"), std::string::npos) << gpu;
  EXPECT_NE(gpu.find("| 25000 | 500000 | 20.0x |"), std::string::npos)
      << gpu;  // chapter 1 vs bench's KW suite
  EXPECT_NE(gpu.find("| 10000 | 400000 | 40.0x |"), std::string::npos)
      << gpu;  // the probe vs the CPU probe
  EXPECT_NE(gpu.find("| 66.7 min | 3.3 min |"), std::string::npos) << gpu;  // 1e8 samples
  EXPECT_NE(gpu.find("| 3.3 h | 5.0 min | 30.0x the seed's rate |"), std::string::npos)
      << gpu;  // 1.2e8
  EXPECT_NE(gpu.find("| 25000 | 520000 | 20.8x |"), std::string::npos)
      << gpu;  // bench-train on the GPU
  EXPECT_NE(gpu.find("100% tests passed"), std::string::npos) << gpu;
  EXPECT_NE(gpu.find("StoppedAndResumedOnTheGpuEqualsUninterrupted\\_cuda *passed*"),
            std::string::npos)
      << gpu;
  EXPECT_NE(gpu.find("2.11.0"), std::string::npos) << gpu;
  EXPECT_NE(gpu.find("0123456789ab"), std::string::npos) << gpu;
  EXPECT_EQ(gpu.find("dry run"), std::string::npos) << gpu;
  // A dry run's summary says so; a file that is not a summary is named and skipped.
  json dry = rp::read_json(root / "results/gpu/gpu-check.json");
  dry["dry_run"] = true;
  std::ofstream(root / "results/gpu/gpu-check.json") << dry.dump();
  EXPECT_NE(rp::render_performance(paths, outcome).find("These figures come from a dry run"),
            std::string::npos);
  std::ofstream(root / "results/gpu/gpu-check.json") << "{\"kind\": 3}";
  EXPECT_NE(rp::render_performance(paths, outcome).find("could not be read"), std::string::npos);
  fs::remove_all(root);
}

}  // namespace

// Issue #17: a report that never fails to appear, and that copies only what
// it should.
namespace {

class ReportReliability : public ReportFromFixtures {
 protected:
  void SetUp() override {
    ReportFromFixtures::SetUp();
    options.pdf = false;
    options.plots = false;
  }
  /// The performance appendix rendered from `bench` as results/bench/bench.json.
  std::string appendix_for(const std::string& bench, rp::Outcome& outcome) {
    fs::create_directories(root / "results/bench");
    std::ofstream(root / "results/bench/bench.json") << bench;
    return rp::render_performance(options.paths, outcome);
  }
};

TEST_F(ReportReliability, AWrongTypeInBenchJsonNamesTheFileAndKeyAndTheReportIsWritten) {
  // Item 2: each of these ended report-gen with a bare JSON type error.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"configs": [1]})", "configs[0]: expected an object"},
      {R"({"configs": [{"name": "kw", "variants": {"suite": {"median_samples_per_s": "fast"}}}]})",
       "configs[0].variants.suite.median_samples_per_s: expected a number"},
      {R"({"configs": [], "gpu": "none"})", "gpu: expected an object"},
      {R"({"configs": [{"name": "kw", "targets": [{"target": "t", "value": 1, "threshold": 2}]}]})",
       ""},
      {R"({"configs": [{"targets": [{"holds": "yes"}]}]})",
       "configs[0].targets[0].holds: expected a boolean"},
      {R"({"configs": {}})", "configs: expected an array"},
  };
  for (const auto& [bench, key] : cases) {
    rp::Outcome outcome;
    std::string md;
    ASSERT_NO_THROW(md = appendix_for(bench, outcome)) << bench;
    if (key.empty()) {
      // A target without "holds" is shown as not judged (it used to read a missing key).
      EXPECT_NE(md.find("not judged"), std::string::npos) << bench << "\n" << md;
      continue;
    }
    EXPECT_NE(md.find("could not read " + rp::md((root / "results/bench/bench.json").string())),
              std::string::npos)
        << bench << "\n"
        << md;
    EXPECT_NE(md.find(rp::md(key)), std::string::npos) << bench << "\n" << md;
  }
  // And the whole report is still written around it.
  std::ofstream(root / "results/bench/bench.json") << R"({"configs": [1]})";
  ASSERT_NO_THROW(rp::generate(options));
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("configs[0]: expected an object"), std::string::npos);
  EXPECT_NE(html.find("Chapter"), std::string::npos);
}

TEST_F(ReportReliability, AWrongTypeInAChaptersResultsNamesTheKey) {
  // Item 2: the chapter's section says which file and key (JSON_DIAGNOSTICS).
  json m = fixture_metrics();
  m["models"] = 7;
  std::ofstream(root / "results/01-elbo-vs-latent/metrics.json") << m.dump();
  rp::Outcome outcome;
  ASSERT_NO_THROW(outcome = rp::generate(options));
  std::string skipped;
  for (const auto& s : outcome.skipped) skipped += s + "\n";
  EXPECT_NE(skipped.find("could not read " + (root / "results/01-elbo-vs-latent").string()),
            std::string::npos)
      << skipped;
  EXPECT_NE(skipped.find("(/models"), std::string::npos) << skipped;
}

TEST_F(ReportReliability, ASymlinkLoopInPlaceOfAResultIsReportedAndTheRestWritten) {
  // Item 2: a symlink loop at results/<slug> (and at results/bench).
  fs::remove_all(root / "results/03-beta-sweep");
  fs::create_symlink(root / "results/03-beta-sweep", root / "results/03-beta-sweep");
  fs::create_symlink(root / "results/bench", root / "results/bench");
  rp::Outcome outcome;
  ASSERT_NO_THROW(outcome = rp::generate(options));
  const std::string html = read(root / "out/index.html");
  EXPECT_NE(html.find("could not read"), std::string::npos);
  bool named = false;
  for (const auto& s : outcome.skipped)
    named |= s.rfind("03-beta-sweep: incomplete or corrupt: could not read", 0) == 0;
  EXPECT_TRUE(named);
  // The other chapters are still there (chapter 1's fixture numbers).
  EXPECT_NE(html.find("ELBO"), std::string::npos);
}

TEST_F(ReportReliability, ItsOwnWriteErrorsAreItsOwnNotTheResults) {
  // Item 9: --figures under a regular file cannot be created (whoever runs the test).
  std::ofstream(root / "a-file") << "x";
  options.plots = true;
  options.paths.figures = (root / "a-file" / "figures").string();
  try {
    rp::generate(options);
    ADD_FAILURE() << "an unwritable --figures folder must fail the generation";
  } catch (const rp::OutputError& e) {
    EXPECT_NE(std::string(e.what()).find((root / "a-file" / "figures").string()), std::string::npos)
        << e.what();
  }
  // --out likewise.
  options.plots = false;
  options.paths.figures = (root / "figures").string();
  options.paths.out = (root / "a-file" / "out").string();
  EXPECT_THROW(rp::generate(options), rp::OutputError);
}

TEST_F(ReportReliability, OnlyPngFilesInsideTheRunsFolderAreCopied) {
  // Item 10: metrics.json names files outside its folder, or not PNGs.
  const fs::path run = root / "results/01-elbo-vs-latent";
  std::ofstream(run / "images/not-a-png.png") << "just text";
  fs::create_symlink("/etc/hostname", run / "images/link-out.png");
  json m = fixture_metrics();
  m["images"]["reconstructions"] = "/etc/passwd";
  m["images"]["manifold_nz-2"] = "../../../../../../../../etc/hostname";
  m["images"]["samples_nz-2"] = "images/not-a-png.png";
  m["images"]["samples_nz-3"] = "images/link-out.png";
  std::ofstream(run / "metrics.json") << m.dump();
  rp::Outcome outcome;
  ASSERT_NO_THROW(outcome = rp::generate(options));
  for (const char* name : {"passwd", "hostname", "not-a-png.png", "link-out.png"}) {
    EXPECT_FALSE(fs::exists(root / "out/images/01-elbo-vs-latent" / name)) << name;
  }
  EXPECT_TRUE(
      fs::exists(root / "out/images/01-elbo-vs-latent/samples-nz-10.png"));  // a good one still is
  std::string skipped;
  for (const auto& s : outcome.skipped) skipped += s + "\n";
  EXPECT_NE(skipped.find("absolute path"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("outside the run's folder"), std::string::npos) << skipped;
  EXPECT_NE(skipped.find("is not a PNG image"), std::string::npos) << skipped;
  EXPECT_EQ(rp::image_problem(run, "images/samples-nz-10.png"), "");
  EXPECT_NE(rp::image_problem(run, "images"), "");  // a folder
}

TEST(Format, HugeNumbersAreShortNotHundredsOfDigits) {
  // Item 17: 1e308 printed as a 309-digit number.
  EXPECT_EQ(rp::fmt1(1e308), "1e+308");
  EXPECT_EQ(rp::fmt1(-2.5e12), "-2.5e+12");
  EXPECT_EQ(rp::fmt1(123456.78), "123456.8");
}

}  // namespace

namespace {

// Chapter 7 (a real smoke run, tests/fixtures/results/07-improving-vaes/,
// its points left out but the composite pictures kept): seed 002's Table 1
// beside the fresh cells, the log p(x) figure, the IWAE paper's numbers, the
// pictures, the verdicts, the fidelity rows; with a second seed, the cells'
// seed interval.
TEST_F(ReportFromFixtures, ChapterSevenSetsSeed002AndTheIwaePaperBesideTheGrid) {
  options.pdf = false;
  auto outcome = rp::generate(options);
  std::string md_text = read(root / "out/report.md");
  const json m7 = json::parse(read(root / "results/07-improving-vaes/metrics.json"));
  ASSERT_FALSE(m7["grid"].empty());
  for (const auto& p : m7["grid"]) {
    const std::string elbo = rp::fmt1(p["test"]["elbo"].get<double>());
    const std::string lp = rp::fmt1(p["marginal"]["log_px"]["mean"].get<double>());
    EXPECT_NE(md_text.find(" / " + elbo + " / " + lp + " / "), std::string::npos)
        << p["name"] << ": the cell lacks its fresh ELBO " << elbo << " and log p(x) " << lp;
  }
  EXPECT_NE(md_text.find("-137.6"),
            std::string::npos);  // seed 002, VAE implementation, N_z = 3 (S)
  EXPECT_NE(md_text.find("-154.2"), std::string::npos);  // seed 002, beta-VAE, N_z = 3 (S)
  EXPECT_NE(md_text.find("VAE original (published only)"), std::string::npos);
  EXPECT_NE(md_text.find("86.8"), std::string::npos);  // IWAE paper, 1 layer, k = 1 (V)
  EXPECT_NE(md_text.find("82.9"), std::string::npos);  // IWAE paper, 2 layers, IWAE k = 50 (V)
  EXPECT_NE(md_text.find("Not the same experiment"), std::string::npos);
  EXPECT_NE(md_text.find("fig5-reconstructions.png"), std::string::npos);
  EXPECT_NE(md_text.find("fig6-samples.png"), std::string::npos);
  EXPECT_NE(md_text.find("CVAE best overall (log p(x))"), std::string::npos);
  EXPECT_TRUE(fs::exists(root / "figures/ch07-log-px.svg"));
  size_t rows = 0;
  for (const auto& r : outcome.fidelity) {
    if (r.chapter != "07") continue;
    ++rows;
    EXPECT_EQ(r.status, "S");
    EXPECT_NE(r.verdict.find("not compared"), std::string::npos)
        << r.verdict;  // the fixture ran on synthetic data
  }
  EXPECT_EQ(rows, 7u);  // one per seed 002 row the grid reproduces
  EXPECT_EQ(md_text.find("{{"), std::string::npos);

  // A second seed: every fresh cell becomes a mean with its spread.
  json run = json::parse(read(root / "results/07-improving-vaes/run.json"));
  json metrics = m7;
  for (auto& p : metrics["grid"]) p["test"]["elbo"] = p["test"]["elbo"].get<double>() - 2.0;
  run["seed"] = 7;
  fs::create_directories(root / "results/seeds/7");
  fs::copy(root / "results/07-improving-vaes", root / "results/seeds/7/07-improving-vaes",
           fs::copy_options::recursive);
  std::ofstream(root / "results/seeds/7/07-improving-vaes/run.json") << run.dump();
  std::ofstream(root / "results/seeds/7/07-improving-vaes/metrics.json") << metrics.dump();
  rp::generate(options);
  md_text = read(root / "out/report.md");
  const double e0 = m7["grid"][0]["test"]["elbo"].get<double>();
  EXPECT_NE(md_text.find(rp::fmt1(e0 - 1.0) + " &plusmn; 1.4 (2 seeds)"), std::string::npos);
}

}  // namespace
