// The command line rejects bad values with a message naming the option and
// exit code 2.
#include <gtest/gtest.h>

#include "vaerepro/build_config.h"
#include <sys/wait.h>

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "vaerepro/cli.h"
#include "run_program.h"

namespace {

struct Outcome {
  int code;
  std::string output;
};

Outcome run_chapter01(const std::string& args) {
  const auto r = vaerepro::test::run_program("chapter-01", args);
  return {r.code, r.output};
}

struct BadArgs {
  const char* args;
  const char* mentions;
};

class ChapterCommandLine : public ::testing::TestWithParam<BadArgs> {};

TEST_P(ChapterCommandLine, RejectsWithExitTwoAndAMessage) {
  const auto& p = GetParam();
  auto r = run_chapter01(std::string(p.args) + " --out /tmp/vaerepro-cli-test-never-written");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(p.mentions), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("usage error"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(
    BadValues, ChapterCommandLine,
    ::testing::Values(
        BadArgs{"--samples -5", "samples"}, BadArgs{"--samples 0", "samples"},
        BadArgs{"--dataset nope", "dataset"}, BadArgs{"--nz 0", "nz"}, BadArgs{"--nz 3,x", "nz"},
        BadArgs{"--bogus-option 1", "bogus"}, BadArgs{"--lr nan", "lr"}, BadArgs{"--lr -1", "lr"},
        BadArgs{"--batch-size 0", "batch-size"}, BadArgs{"--profile fast", "profile"},
        BadArgs{"--protocol gray", "protocol"}, BadArgs{"--device tpu", "device"},
        BadArgs{"--seed -1", "seed"}, BadArgs{"--activation swish", "activation"},
        BadArgs{"--samples 1e300", "samples"}, BadArgs{"--hidden abc", "hidden"},
        BadArgs{"--config /nonexistent/file.cfg", "config"},
        // Contradictory: an option given twice, a minibatch larger than the training set.
        BadArgs{"--seed 1 --seed 2", "seed"},
        BadArgs{"--batch-size 500 --max-train 100", "batch-size"},
        // Out of range: NaN, negative, zero, absurdly large.
        BadArgs{"--checkpoint-every nan", "checkpoint-every"},
        BadArgs{"--checkpoint-every -1", "checkpoint-every"},
        BadArgs{"--checkpoint-every 1e300", "checkpoint-every"},
        BadArgs{"--threads 100000", "threads"}, BadArgs{"--eval-points 0", "eval-points"},
        BadArgs{"--max-train -3", "max-train"}, BadArgs{"--hidden 1e12", "hidden"},
        BadArgs{"--weight-decay inf", "weight-decay"}, BadArgs{"--nz 99999", "nz"},
        BadArgs{"--force=maybe", "force"},
        // Issue #17, item 12: a stray word, a folder as --config, lists with holes.
        BadArgs{"smoke", "unexpected argument 'smoke'"},
        BadArgs{"--profile smoke quick", "'quick'"}, BadArgs{"--config /tmp", "is a folder"},
        BadArgs{"--nz 3,,5", "empty entry"}, BadArgs{"--nz 3,", "empty entry"},
        BadArgs{"--nz [3", "unbalanced bracket"}, BadArgs{"--nz 3]", "unbalanced bracket"},
        BadArgs{"--nz ,3", "empty entry"}),
    [](const ::testing::TestParamInfo<BadArgs>& info) {
      std::string name = std::to_string(info.index) + "_";
      for (const char* c = info.param.args; *c; ++c) {
        if (std::isalnum(static_cast<unsigned char>(*c))) name += *c;
      }
      return name;
    });

TEST(ChapterCommandLine, HelpExitsZero) {
  auto r = run_chapter01("--help");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--profile"), std::string::npos);
  EXPECT_NE(r.output.find("--nz"), std::string::npos);
}

TEST(ChapterCommandLine, BetaListsWithHolesAreRejected) {
  for (const char* betas : {"1,,5", "1,", ",1"}) {
    const auto r = vaerepro::test::run_program(
        "chapter-03",
        std::string("--betas ") + betas + " --out /tmp/vaerepro-cli-test-never-written");
    EXPECT_EQ(r.code, 2) << betas << "\n" << r.output;
    EXPECT_NE(r.output.find("empty entry"), std::string::npos) << r.output;
  }
}

TEST(ParsePositiveList, AcceptsAndRejects) {
  EXPECT_EQ(vaerepro::parse_positive_list("3,5", "nz"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(vaerepro::parse_positive_list("[3]", "nz"), (std::vector<int64_t>{3}));
  for (const char* bad : {"3,,5", "3,", "[3", "3]", ",3", "[3,[5]]", "[]"}) {
    EXPECT_THROW(vaerepro::parse_positive_list(bad, "nz"), vaerepro::UsageError) << bad;
  }
  EXPECT_EQ(vaerepro::parse_positive_list("[3, 5,10]", "nz"), (std::vector<int64_t>{3, 5, 10}));
  EXPECT_THROW(vaerepro::parse_positive_list("", "nz"), vaerepro::UsageError);
  EXPECT_THROW(vaerepro::parse_positive_list("3,-1", "nz"), vaerepro::UsageError);
  EXPECT_THROW(vaerepro::parse_positive_list("3.5", "nz"), vaerepro::UsageError);
}

/// The message of parse_name_list's UsageError ("" when it accepts).
std::string name_list_error(const std::string& text, bool allow_empty = false) {
  try {
    vaerepro::parse_name_list(text, "settings", {"seed", "paper"}, allow_empty);
  } catch (const vaerepro::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ParseNameList, AcceptsKnownNamesOnceEachAndSaysWhatIsWrong) {
  using V = std::vector<std::string>;
  EXPECT_EQ(vaerepro::parse_name_list("paper,seed", "settings", {"seed", "paper"}),
            (V{"paper", "seed"}));
  EXPECT_EQ(vaerepro::parse_name_list(" seed , paper", "settings", {"seed", "paper"}),
            (V{"seed", "paper"}));
  EXPECT_EQ(vaerepro::parse_name_list("a,b", "variants"), (V{"a", "b"}));  // no choices: any name
  EXPECT_EQ(name_list_error("seed,huge"),
            "--settings: 'huge' is not one of: seed, paper (e.g. --settings seed,paper)");
  EXPECT_EQ(name_list_error("seed,paper,seed"), "--settings: 'seed' is given twice");
  EXPECT_EQ(name_list_error(""), "--settings is empty: give one or more of seed, paper");
  EXPECT_EQ(name_list_error("", true), "");
  EXPECT_EQ(name_list_error("  ", true), "");
  for (const char* holes : {"seed,,paper", "seed,", ",seed", ",", "seed, "}) {
    EXPECT_NE(name_list_error(holes, true).find("has an empty entry"), std::string::npos) << holes;
  }
  EXPECT_THROW(vaerepro::parse_name_list("a,a", "variants"), vaerepro::UsageError);
}

TEST(SelectByName, PicksTheNamedEntriesInTheGivenOrder) {
  struct Named {
    std::string name;
    int value;
  };
  const std::vector<Named> known = {{"seed", 10}, {"paper", 512}};
  const auto picked = vaerepro::select_by_name("paper,seed", "settings", known);
  ASSERT_EQ(picked.size(), 2u);
  EXPECT_EQ(picked[0].value, 512);
  EXPECT_EQ(picked[1].value, 10);
  EXPECT_EQ(vaerepro::select_by_name("seed", "settings", known).size(), 1u);
  EXPECT_THROW(vaerepro::select_by_name("huge", "settings", known), vaerepro::UsageError);
  EXPECT_TRUE(vaerepro::select_by_name("", "settings", known, true).empty());
}

TEST(RequireRange, RejectsNaNAndOutOfRange) {
  EXPECT_NO_THROW(vaerepro::require_range("lr", 0.1, 0, 1));
  EXPECT_THROW(vaerepro::require_range("lr", std::nan(""), 0, 1), vaerepro::UsageError);
  EXPECT_THROW(vaerepro::require_range("lr", 2, 0, 1), vaerepro::UsageError);
}

}  // namespace

namespace {

std::string program_error_line(const std::string& message, int* code) {
  std::ostringstream captured;
  auto* old = std::cerr.rdbuf(captured.rdbuf());
  *code = vaerepro::run_program("chapter-01", [&]() -> int { throw std::runtime_error(message); });
  std::cerr.rdbuf(old);
  return captured.str();
}

TEST(RunProgram, SaysTheProgramNameOnce) {
  int code = 0;
  // A run's label begins with the program's name; the line says it once.
  EXPECT_EQ(program_error_line("chapter-01 Nz=3: the training loss became non-finite", &code),
            "chapter-01: error: Nz=3: the training loss became non-finite\n");
  EXPECT_EQ(code, 1);
  EXPECT_EQ(program_error_line("chapter-01: cannot write results", &code),
            "chapter-01: error: cannot write results\n");
  // Other messages, and names that only begin alike, are left as they are.
  EXPECT_EQ(program_error_line("no such file", &code), "chapter-01: error: no such file\n");
  EXPECT_EQ(program_error_line("chapter-010 is not a chapter", &code),
            "chapter-01: error: chapter-010 is not a chapter\n");
}

}  // namespace
