// The arithmetic of the verdicts, on numbers worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "vaerepro/verdicts.h"

namespace {
using namespace vaerepro;

TEST(Verdicts, StandardErrorsOfDifferencesAddInQuadrature) {
  EXPECT_DOUBLE_EQ(root_sum_square({3, 4}), 5);
  EXPECT_DOUBLE_EQ(root_sum_square({1, 2, 2, 4}), 5);
  EXPECT_EQ(root_sum_square({}), 0);
  const Estimate d = difference({-100, 3}, {-110, 4});
  EXPECT_DOUBLE_EQ(d.mean, 10);
  EXPECT_DOUBLE_EQ(d.se, 5);
  // (10 - 4) - (7 - 5) = 4, sqrt(1 + 4 + 4 + 16) = 5.
  const Estimate g = difference_of_gaps({10, 1}, {4, 2}, {7, 2}, {5, 4});
  EXPECT_DOUBLE_EQ(g.mean, 4);
  EXPECT_DOUBLE_EQ(g.se, 5);
  EXPECT_DOUBLE_EQ((-g).mean, -4);
  EXPECT_DOUBLE_EQ((-g).se, 5);
}

TEST(Verdicts, TwoStandardErrorsIsTheBar) {
  EXPECT_TRUE(exceeds_two_se({10.1, 5}));
  EXPECT_FALSE(exceeds_two_se({10, 5}));  // exactly two: not more
  EXPECT_FALSE(exceeds_two_se({-20, 1}));
  EXPECT_TRUE(exceeds_two_se({1e-9, 0}));
  EXPECT_EQ(plus_minus({-12.34, 1.46}), "-12.3 +- 1.5");
}

TEST(Verdicts, EstimatesReadAsTheEstimatorsWriteThem) {
  const auto e = estimate_from_json({{"mean", -88.5}, {"standard_error_data", 1.25}});
  EXPECT_EQ(e.mean, -88.5);
  EXPECT_EQ(e.se, 1.25);
  EXPECT_EQ(estimate_from_json({{"mean", 2.0}}).se, 0);  // no standard error recorded
  EXPECT_THROW(estimate_from_json(nlohmann::json::object()), nlohmann::json::exception);
}

TEST(Verdicts, SequencesRiseOrFallStrictly) {
  EXPECT_TRUE(strictly_increasing({1, 2, 3}));
  EXPECT_FALSE(strictly_increasing({1, 2, 2}));
  EXPECT_FALSE(strictly_increasing({3, 1}));
  EXPECT_TRUE(strictly_decreasing({3, 2, 1}));
  EXPECT_FALSE(strictly_decreasing({3, 3}));
  EXPECT_TRUE(strictly_increasing({}));
  EXPECT_TRUE(strictly_decreasing({7}));
  EXPECT_EQ(arrow_chain({25.04, 12.5, 3}), "25.0 -> 12.5 -> 3.0");
  EXPECT_EQ(arrow_chain({1.234}, 2), "1.23");
  EXPECT_EQ(arrow_chain({}), "");
}

}  // namespace
