// The sweep runtime (sweep.h) on a toy chapter whose points train nothing,
// and the small pieces the chapters share (schedule, records, options).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "vaerepro/chapter.h"
#include "vaerepro/experiment.h"
#include "vaerepro/sweep.h"

namespace fs = std::filesystem;
using namespace vaerepro;

namespace {

/// Three points x = 1, 2, 3, each "trained" into value.txt = x * scale.
class ToySweep : public Chapter {
 public:
  static inline int trained = 0;
  ChapterInfo info() const override {
    return {"chapter-toysweep", "98-toy-sweep", "a toy sweep", "mnist", Protocol::kBinarized};
  }
  void declare(OptionTable& o) override {
    o.add("scale", scale_, int64_t{2}, "scale").range(1, 10);
    declare_point_modes(o, modes_, "train one point and stop: x=N");
  }
  nlohmann::json run(ChapterRun& run) override {
    const PointSweep sweep(run);
    std::vector<SweepPoint> points;
    for (int64_t x : {1, 2, 3}) {
      const int64_t value = x * scale_;
      points.push_back({"x-" + std::to_string(x),
                        {{"x", x}, {"scale", scale_}},
                        [value](const PointStaging& s) {
                          ++trained;
                          EXPECT_TRUE(s.checkpoint.enabled());
                          write_file_atomic(s.dir + "/value.txt", std::to_string(value));
                          return nlohmann::json{{"value", value}};
                        },
                        {"x=" + std::to_string(x)}});
    }
    if (sweep.run_mode(modes_, points, "x=1")) return nullptr;
    run.begin(nlohmann::json::object(), run.budget(0, 0, "points", "none", "no training"));
    nlohmann::json values = nlohmann::json::array();
    for (const auto& p : points) values.push_back(sweep.assemble(p));
    return {{"checks", nlohmann::json::array()}, {"points", values}};
  }

 private:
  int64_t scale_ = 0;
  PointModes modes_;
};

struct Outcome {
  int code;
  std::string out;
};

Outcome toy(const fs::path& out, std::vector<std::string> args) {
  std::vector<std::string> storage = {"chapter-toysweep", "--profile", "smoke", "--dataset",
                                      "synthetic",        "--threads", "1",     "--out",
                                      out.string()};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  testing::internal::CaptureStdout();
  const int code = chapter_main<ToySweep>(static_cast<int>(argv.size()), argv.data());
  return {code, testing::internal::GetCapturedStdout()};
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST(PointSweep, PointsTrainAloneAreListedAndAssembledOnce) {
  const fs::path out =
      fs::temp_directory_path() / ("vaerepro-sweep-test-" + std::to_string(::getpid()));
  fs::remove_all(out);
  ToySweep::trained = 0;
  auto r = toy(out, {"--only-point", "x=2"});  // an alias
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(ToySweep::trained, 1);
  EXPECT_NE(r.out.find("point x-2 is in "), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out / "98-toy-sweep")) << "a single point is not a chapter result";
  r = toy(out, {"--list-points"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("pending-point x-1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pending-point x-3\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("pending-point x-2"), std::string::npos) << r.out;
  EXPECT_EQ(ToySweep::trained, 1);  // listing trains nothing
  r = toy(out, {});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(ToySweep::trained, 3);  // x-1 and x-3; x-2 reused
  EXPECT_NE(r.out.find("x-2: reusing "), std::string::npos) << r.out;
  std::ifstream min(out / "98-toy-sweep" / "metrics.json");
  const auto metrics = nlohmann::json::parse(min);
  ASSERT_EQ(metrics["points"].size(), 3u);
  for (int x = 1; x <= 3; ++x) {
    const auto& p = metrics["points"][x - 1];
    EXPECT_EQ(p["value"], 2 * x);
    EXPECT_EQ(p["dir"], "points/x-" + std::to_string(x));
    EXPECT_EQ(p["config_hash"].get<std::string>().size(), 16u);
    EXPECT_EQ(read_text(out / "98-toy-sweep" / p["dir"].get<std::string>() / "value.txt"),
              std::to_string(2 * x));
  }
  EXPECT_NE(metrics["points"][0]["config_hash"], metrics["points"][1]["config_hash"]);
  // Another configuration is other points: all three train.
  r = toy(out, {"--scale", "3", "--list-points"});
  EXPECT_NE(r.out.find("pending-point x-2\n"), std::string::npos) << r.out;
  fs::remove_all(out);
}

TEST(PointSweep, UnknownPointsAndContradictoryModesAreUsageErrors) {
  const fs::path out =
      fs::temp_directory_path() / ("vaerepro-sweep-usage-" + std::to_string(::getpid()));
  ToySweep::trained = 0;
  EXPECT_EQ(toy(out, {"--only-point", "x=7"}).code, 2);
  EXPECT_EQ(toy(out, {"--only-point", "x-1", "--list-points"}).code, 2);
  EXPECT_EQ(ToySweep::trained, 0);
  fs::remove_all(out);
}

namespace {
void parse(OptionTable& t, const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::vector<const char*> argv = {"toy"};
  for (const auto& a : args) argv.push_back(a.c_str());
  po::variables_map vm;
  po::store(po::command_line_parser(static_cast<int>(argv.size()), argv.data())
                .options(t.description())
                .run(),
            vm);
  t.apply(Profile::kSmoke);
  po::notify(vm);
}
}  // namespace

TEST(ProbeModes, TheProbeTokenIsParsedAndChecked) {
  auto modes_of = [](const std::vector<std::string>& args) {
    ProbeModes m;
    const int64_t repeats = 3;
    OptionTable t;
    declare_probe_modes(t, m, repeats);
    parse(t, args);
    t.validate();
    return m;
  };
  const auto m = modes_of({"--only-probe", "500-500-3.r2"});
  ASSERT_TRUE(m.request);
  EXPECT_EQ(m.request->first, (std::vector<int64_t>{500, 500, 3}));
  EXPECT_EQ(m.request->second, 2);
  EXPECT_FALSE(modes_of({}).request);
  EXPECT_TRUE(modes_of({"--list-probes"}).list);
  EXPECT_THROW(modes_of({"--only-probe", "500-500-3.r3"}), UsageError);  // seeds 0..2
  EXPECT_THROW(modes_of({"--only-probe", "3-500.r0"}), UsageError);      // widens
  EXPECT_THROW(modes_of({"--only-probe", "500-3"}), UsageError);         // no seed index
  EXPECT_THROW(modes_of({"--only-probe", "500-3.r0", "--list-probes"}), UsageError);
  // Neither is recorded: they change nothing that is trained.
  ProbeModes p;
  OptionTable t;
  const int64_t repeats = 3;
  declare_probe_modes(t, p, repeats);
  parse(t, {"--list-probes"});
  EXPECT_TRUE(t.config().empty()) << t.config().dump();
}

TEST(Schedule, EvaluationsLogSpacedOnBatchBoundaries) {
  const auto t = training_schedule(10000, 100, 3);
  EXPECT_EQ(t.total_samples, 10000);
  EXPECT_EQ(t.batch_size, 100);
  EXPECT_EQ(t.eval_at, (std::vector<int64_t>{100, 1000, 10000}));  // from max(batch, total / 100)
  EXPECT_EQ(training_schedule(int64_t{1000000}, 100, 3).eval_at,
            (std::vector<int64_t>{10000, 100000, 1000000}));
  EXPECT_TRUE(training_schedule(10000, 100, 0).eval_at.empty());  // the final evaluation only
}

TEST(FirstRows, TheFirstNOrAll) {
  const auto t = torch::arange(5).view({5, 1});
  EXPECT_EQ(first_rows(t, 3).size(0), 3);
  EXPECT_EQ(first_rows(t, 3)[2].item<int64_t>(), 2);
  EXPECT_EQ(first_rows(t, 0).size(0), 5);
  EXPECT_EQ(first_rows(t, 9).size(0), 5);
}

TEST(TrainingRecord, TheFinalBoundsAreTheLastCurvePoints) {
  TrainResult r;
  for (int i = 1; i <= 2; ++i) {
    CurvePoint p;
    p.samples_seen = 100 * i;
    p.train.elbo = -100.0 / i;
    p.test.elbo = -110.0 / i;
    p.train.log_likelihood = -80.0 * i;
    p.train.kl = 5;
    p.test.log_likelihood = -85.0 * i;
    p.test.kl = 6;
    p.extra = {{"train", {{"mean", -90.0 * i}, {"standard_error_data", 1.5}}},
               {"test", {{"mean", -95.0 * i}, {"standard_error_data", 2.5}}}};
    r.curve.push_back(p);
  }
  r.samples_seen = 200;
  r.train_seconds = 3;
  r.eval_seconds = 1;
  r.step = "hand-written";
  const auto j = training_record(r);
  EXPECT_EQ(j["final"]["train"]["elbo"], -50.0);
  EXPECT_EQ(j["final"]["test"]["elbo"], -55.0);
  EXPECT_EQ(j["curve"].size(), 2u);
  EXPECT_EQ(j["samples_seen"], 200);
  EXPECT_EQ(j["train_seconds"], 3.0);
  EXPECT_EQ(j["eval_seconds"], 1.0);
  EXPECT_EQ(j["step"], "hand-written");
  const fs::path out =
      fs::temp_directory_path() / ("vaerepro-record-test-" + std::to_string(::getpid()));
  {
    RunWriter w(out.string(), "97-toy");
    write_curve_estimates_csv(w, "curves/e.csv", r, "log_px");
    EXPECT_EQ(read_text(w.path("curves/e.csv")),
              "samples_seen,train_log_px,train_se,test_log_px,test_se\n"
              "100,-90,1.5,-95,2.5\n200,-180,1.5,-190,2.5\n");
    write_rate_distortion_csv(w.path("rd.csv"), r);
    EXPECT_EQ(read_text(w.path("rd.csv")),
              "samples_seen,train_reconstruction,train_kl,test_reconstruction,test_kl\n"
              "100,80,5,85,6\n200,160,5,170,6\n");
    w.abandon();
  }
  fs::remove_all(out);
}

TEST(WeightDecay, MinusOneIsTheWeightPrior) {
  EXPECT_DOUBLE_EQ(weight_decay_for(-1, 1000), 1e-3);
  EXPECT_EQ(weight_decay_for(0, 1000), 0);
  EXPECT_EQ(weight_decay_for(0.25, 1000), 0.25);
  auto check = [](const std::vector<std::string>& args) {
    double wd = 0;
    OptionTable t;
    add_weight_decay_option(t, wd);
    parse(t, args);
    t.validate();
    return wd;
  };
  EXPECT_EQ(check({}), -1);
  EXPECT_EQ(check({"--weight-decay", "0.5"}), 0.5);
  EXPECT_THROW(check({"--weight-decay", "2"}), UsageError);
  EXPECT_THROW(check({"--weight-decay", "-0.5"}), UsageError);
}
