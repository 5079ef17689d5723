// The chapter runtime and its option table: the profile parsed before use,
// help texts generated from the profile table, values given over profile
// defaults, range checks naming the option, the recorded configuration being
// the one hashed, and chapter_main's flow (a complete run, "nothing to train"
// on a rerun, a failure recorded as failed, usage errors as exit 2) with a
// toy chapter on the synthetic dataset.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "vaerepro/experiment.h"
#include "vaerepro/options.h"

namespace fs = std::filesystem;
using namespace vaerepro;

TEST(Options, ProfileIsParsedOrRejected) {
  EXPECT_EQ(parse_profile("smoke"), Profile::kSmoke);
  EXPECT_EQ(parse_profile("full"), Profile::kFull);
  EXPECT_EQ(to_string(Profile::kQuick), "quick");
  try {
    parse_profile("fulll");
    FAIL() << "a misspelt profile must not run as another";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'fulll' is not one of: smoke, quick, full"),
              std::string::npos);
  }
}

TEST(Options, CompactNumbersReadAsWritten) {
  EXPECT_EQ(compact_number(3000), "3000");
  EXPECT_EQ(compact_number(30000), "3e4");
  EXPECT_EQ(compact_number(1.5e6), "1.5e6");
  EXPECT_EQ(compact_number(6.7e7), "6.7e7");
  EXPECT_EQ(compact_number(1e8), "1e8");
  EXPECT_EQ(compact_number(500), "500");
  EXPECT_EQ(compact_number(0.02), "0.02");
  EXPECT_EQ(compact_number(-1), "-1");
}

namespace {
struct Toy {
  double samples = 0;
  int64_t points = 0;
  std::string list;
  bool mode = false;
};

void declare(OptionTable& t, Toy& o) {
  t.add("samples", o.samples, {3e3, 1.5e6, 1e8}, "training samples")
      .range(1, 1e12)
      .key("samples_per_model");
  t.add("points", o.points, int64_t{8}, "evaluations").range(1, 100);
  t.add("list", o.list, {"3,20", "3,5,10", "3,5,10"}, "sizes");
  t.flag("mode", o.mode, "a mode").key("");
}

// Parses `args` as a chapter would: profile defaults first, then the values given.
void parse(OptionTable& t, const std::vector<std::string>& args, Profile p) {
  namespace po = boost::program_options;
  std::vector<const char*> argv = {"toy"};
  for (const auto& a : args) argv.push_back(a.c_str());
  po::variables_map vm;
  po::store(po::command_line_parser(static_cast<int>(argv.size()), argv.data())
                .options(t.description())
                .run(),
            vm);
  t.apply(p);
  po::notify(vm);
}
}  // namespace

TEST(Options, HelpShowsEveryProfilesDefault) {
  Toy o;
  OptionTable t;
  declare(t, o);
  std::ostringstream help;
  help << t.description();
  EXPECT_NE(help.str().find("training samples (smoke 3000, quick 1.5e6, full 1e8)"),
            std::string::npos)
      << help.str();
  EXPECT_NE(help.str().find("evaluations (8)"), std::string::npos) << help.str();
}

TEST(Options, GivenValuesOverrideTheProfileAndAreRecorded) {
  Toy o;
  OptionTable t;
  declare(t, o);
  parse(t, {"--points", "3"}, Profile::kSmoke);
  EXPECT_EQ(o.samples, 3e3);
  EXPECT_EQ(o.points, 3);
  EXPECT_EQ(o.list, "3,20");
  const auto c = t.config();
  EXPECT_EQ(c.at("samples_per_model"), 3e3);
  EXPECT_EQ(c.at("points"), 3);
  EXPECT_EQ(c.at("list"), "3,20");
  EXPECT_FALSE(c.contains("mode"));  // a mode changes nothing that is trained
  Toy q;
  OptionTable u;
  declare(u, q);
  parse(u, {}, Profile::kFull);
  EXPECT_EQ(q.samples, 1e8);
}

TEST(Options, RangeErrorsNameTheOption) {
  Toy o;
  OptionTable t;
  declare(t, o);
  parse(t, {"--points", "0"}, Profile::kQuick);
  try {
    t.validate();
    FAIL() << "--points 0 is out of range";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("points"), std::string::npos) << e.what();
  }
}

TEST(Options, DeclaringAnOptionTwiceIsAProgrammingError) {
  Toy o;
  OptionTable t;
  declare(t, o);
  EXPECT_THROW(t.add("points", o.points, int64_t{1}, "again"), std::logic_error);
}

namespace {
/// A chapter that trains nothing: it records its option and returns one check.
class ToyChapter : public Chapter {
 public:
  static inline bool fail = false;
  ChapterInfo info() const override {
    return {"chapter-toy", "99-toy", "a toy chapter", "mnist", Protocol::kBinarized};
  }
  void declare(OptionTable& o) override { o.add("width", width_, {1, 2, 3}, "width").range(1, 10); }
  nlohmann::json run(ChapterRun& run) override {
    run.config()["derived"] = width_ * 10;
    run.begin(nlohmann::json::object(),
              run.budget(0, 0, "training samples", "the toy trains nothing", "no training"));
    if (fail) throw std::runtime_error("the toy failed on purpose");
    return {
        {"checks", nlohmann::json::array({{{"claim", "toy"}, {"holds", true}, {"detail", "w"}}})},
        {"width", width_}};
  }

 private:
  int64_t width_ = 0;
};

int toy_main(const std::vector<std::string>& args) {
  std::vector<std::string> storage = {"chapter-toy"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  return chapter_main<ToyChapter>(static_cast<int>(argv.size()), argv.data());
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

/// The hash a run's record says it was made under, recomputed from what it records.
std::string identity_of_for_test(const nlohmann::json& run) {
  RunIdentity id;
  id.seed = run.at("seed").get<int64_t>();
  id.dataset = run.at("dataset").at("name").get<std::string>();
  id.data_fingerprint = run.at("dataset").at("fingerprint").get<std::string>();
  id.protocol = run.at("protocol").at("name").get<std::string>();
  id.device = run.at("device").get<std::string>();
  id.profile = run.at("profile").get<std::string>();
  return id.hash({{"chapter", run.at("chapter")}, {"config", run.at("config")}});
}
}  // namespace

TEST(ChapterMain, RecordsTheConfigurationItHashesAndDoesNotRunTwice) {
  const fs::path out =
      fs::temp_directory_path() / ("vaerepro-experiment-test-" + std::to_string(::getpid()));
  fs::remove_all(out);
  const std::vector<std::string> base = {"--profile", "smoke",      "--dataset", "synthetic",
                                         "--out",     out.string(), "--threads", "1"};
  ToyChapter::fail = false;
  ASSERT_EQ(toy_main(base), 0);
  const auto run = read_json(out / "99-toy" / "run.json");
  EXPECT_EQ(run.at("status"), "complete");
  EXPECT_EQ(run.at("schema_version"), vaerepro::schema::kSchemaVersion);
  EXPECT_EQ(run.at("budget").at("profile"), "smoke");  // the run's own profile (ChapterRun::budget)
  EXPECT_EQ(run.at("config").at("width"), 1);          // the smoke profile's default
  EXPECT_EQ(run.at("config").at("derived"), 10);       // added by the chapter before begin()
  const auto id = identity_of_for_test(run);
  EXPECT_EQ(run.at("config_hash"), id);
  EXPECT_EQ(read_json(out / "99-toy" / "metrics.json").at("width"), 1);
  // A rerun of the same configuration trains nothing and keeps the result.
  const auto written = fs::last_write_time(out / "99-toy" / "run.json");
  ASSERT_EQ(toy_main(base), 0);
  EXPECT_EQ(fs::last_write_time(out / "99-toy" / "run.json"), written);
  // Another value is another configuration; a failure is recorded as failed, the complete result
  // kept.
  auto other = base;
  other.insert(other.end(), {"--width", "4"});
  ToyChapter::fail = true;
  EXPECT_EQ(toy_main(other), 1);
  EXPECT_EQ(read_json(out / "99-toy.failed" / "run.json").at("status"), "failed");
  EXPECT_EQ(read_json(out / "99-toy" / "run.json").at("config").at("width"), 1);
  ToyChapter::fail = false;
  // Usage errors exit 2 before anything is read or written.
  auto bad = base;
  bad.insert(bad.end(), {"--width", "11"});
  EXPECT_EQ(toy_main(bad), 2);
  EXPECT_EQ(toy_main({"--profile", "fulll", "--dataset", "synthetic", "--out", out.string()}), 2);
  fs::remove_all(out);
}
