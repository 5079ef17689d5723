// The time ledger's accounting on a clock it is handed, so every expected
// number is exact: nested stages are exclusive, the running stage is counted
// up to "now", and only the claiming thread charges it.
#include "vaerepro/time_ledger.h"

#include <thread>

#include <gtest/gtest.h>

using vaerepro::StageTimer;
using vaerepro::TimeLedger;
using Clock = TimeLedger::Clock;

namespace {
Clock::time_point clock_at(double seconds) {
  return Clock::time_point{} +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
}  // namespace

TEST(TimeLedger, NestedStagesAreExclusive) {
  TimeLedger ledger;
  ledger.enter("training", clock_at(0));
  ledger.enter("evaluation", clock_at(10));  // training: 10 so far
  ledger.leave(clock_at(13));                // evaluation: 3
  ledger.enter("evaluation", clock_at(20));  // training: 10 + 7
  ledger.leave(clock_at(22));                // evaluation: 3 + 2
  ledger.leave(clock_at(30));                // training: 17 + 8
  EXPECT_DOUBLE_EQ(ledger.seconds("training", clock_at(99)), 25.0);
  EXPECT_DOUBLE_EQ(ledger.seconds("evaluation", clock_at(99)), 5.0);
  EXPECT_DOUBLE_EQ(ledger.seconds("never entered", clock_at(99)), 0.0);
  const auto j = ledger.to_json(clock_at(99));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_DOUBLE_EQ(j.at("training").get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(j.at("evaluation").get<double>(), 5.0);
}

TEST(TimeLedger, TheRunningStageCountsUpToNow) {
  TimeLedger ledger;
  ledger.enter("figures", clock_at(5));
  EXPECT_DOUBLE_EQ(ledger.seconds("figures", clock_at(7.5)), 2.5);
  EXPECT_DOUBLE_EQ(ledger.to_json(clock_at(9)).at("figures").get<double>(), 4.0);
  ledger.leave(clock_at(10));
  ledger.leave(clock_at(20));  // an unmatched leave is ignored
  EXPECT_DOUBLE_EQ(ledger.seconds("figures", clock_at(50)), 5.0);
}

TEST(TimeLedger, ResetForgetsEverything) {
  TimeLedger ledger;
  ledger.enter("training", clock_at(0));
  ledger.reset();
  EXPECT_TRUE(ledger.to_json(clock_at(1)).empty());
}

TEST(TimeLedger, OnlyTheClaimingThreadCharges) {
  TimeLedger& ledger = TimeLedger::process();
  ledger.reset();
  { StageTimer t("main thread"); }
  std::thread other([] { StageTimer t("other thread"); });
  other.join();
  const auto j = ledger.to_json();
  EXPECT_TRUE(j.contains("main thread"));
  EXPECT_FALSE(j.contains("other thread"));
  ledger.reset();
}
