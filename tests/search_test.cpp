// Seed 000's Algorithm 1 against mock oracles whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <random>

#include "vaerepro/search.h"

namespace {
using namespace vaerepro;

// A monotone mock: reconstruction falls with every width, KL rises slightly
// with the latent size; good iff h_n >= 3 and h_1 + h_2 >= 600 (for [a, b, c]).
ProbeMeasure monotone(const std::vector<int64_t>& w) {
  double width_sum = 0;
  for (size_t i = 0; i + 1 < w.size(); ++i) width_sum += static_cast<double>(w[i]);
  const double rec = 100.0 + 40.0 * (w.back() < 3) +
                     (w.size() > 1 ? std::max(0.0, 600.0 - width_sum) / 10.0 : 0.0);
  return {rec, 5.0 + w.back(), 1.0};
}

TEST(Search, FindsTheKnownMinimumOfAMonotoneOracle) {
  int calls = 0;
  Oracle oracle = [&](const std::vector<int64_t>& w, int) {
    ++calls;
    return monotone(w);
  };
  SearchOptions o;  // R = 120, K = 10
  auto r = minimal_architecture_search(oracle, {500, 500, 3}, o);
  ASSERT_TRUE(r.found) << r.outcome;
  // h3: smallest latent that is good: 3. h2: smallest in [3, 500] with 500 + h2 >= 400 (rec <= 120
  // <=> sum >= 400): 3. h1: smallest in [3, 500] with h1 + 3 >= 400: 397.
  EXPECT_EQ(r.widths, (std::vector<int64_t>{397, 3, 3}));
  EXPECT_EQ(static_cast<int>(r.log.size()), calls);
  EXPECT_TRUE(r.log.front().good);  // the upper bound is probed first
  auto [pairs, bad] = monotonicity_violations(r.log);
  EXPECT_GT(pairs, 0);
  EXPECT_EQ(bad, 0);
}

TEST(Search, UpperBoundNotGoodMeansNothingAtThisDepth) {
  Oracle oracle = [](const std::vector<int64_t>& w, int) { return monotone(w); };
  auto r = minimal_architecture_search(oracle, {500, 2}, SearchOptions{});
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.log.size(), 1u);
  EXPECT_NE(r.outcome.find("not a good model"), std::string::npos);
}

TEST(Search, WidthOneIsReachable) {
  // Everything is good: the search walks down to width 1 everywhere allowed.
  Oracle oracle = [](const std::vector<int64_t>&, int) { return ProbeMeasure{100, 5, 0}; };
  auto r = minimal_architecture_search(oracle, {8, 4}, SearchOptions{});
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.widths, (std::vector<int64_t>{1, 1}));
}

TEST(Search, RejectsAnUpperBoundThatWidens) {
  Oracle oracle = [](const std::vector<int64_t>&, int) { return ProbeMeasure{}; };
  EXPECT_THROW(minimal_architecture_search(oracle, {100, 200, 3}, SearchOptions{}),
               std::invalid_argument);
}

TEST(Search, NoiseAwareModeRepeatsNearTheThresholdAndRecoversTheAnswer) {
  // Monotone plus noise of sd 2 on the reconstruction: single probes near R
  // flip; with 25 repeats decided on the mean, the search lands near the truth.
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 2.0);
  auto noisy = [&](const std::vector<int64_t>& w, int) {
    auto m = monotone(w);
    m.reconstruction += noise(rng);
    return m;
  };
  SearchOptions exact;
  SearchOptions aware;
  aware.noise_aware = true;
  aware.repeats = 25;
  aware.margin_reconstruction = 6;
  auto a = minimal_architecture_search(noisy, {500, 500, 3}, aware);
  ASSERT_TRUE(a.found);
  EXPECT_NEAR(static_cast<double>(a.widths[0]), 397.0, 15.0);
  int repeated = 0;
  for (const auto& p : a.log) repeated += p.repeats > 1;
  EXPECT_GT(repeated, 0);
  for (const auto& p : a.log) {
    if (p.repeats > 1) {
      EXPECT_GT(p.reconstruction_se, 0.0);
      EXPECT_LT(p.reconstruction_se, 1.0);  // 2 / sqrt(25) = 0.4
    }
  }
  auto e = minimal_architecture_search(noisy, {500, 500, 3}, exact);
  for (const auto& p : e.log) EXPECT_EQ(p.repeats, 1);
}

TEST(Monotonicity, CountsViolations) {
  std::vector<Probe> probes(3);
  probes[0].widths = {500, 282, 3};
  probes[0].reconstruction = 141.4;  // seed Table 3: the smaller model did worse ...
  probes[1].widths = {500, 283, 3};
  probes[1].reconstruction = 124.7;
  probes[2].widths = {500, 285, 3};
  probes[2].reconstruction = 117.6;
  EXPECT_EQ(monotonicity_violations(probes), std::make_pair(3, 0));
  probes[1].reconstruction = 150;  // ... now 283 is worse than 282: one violation
  EXPECT_EQ(monotonicity_violations(probes), std::make_pair(3, 1));
}

TEST(Monotonicity, DistinctProbesKeepTheFirstOfEachArchitectureInWidthOrder) {
  std::vector<Probe> probes(4);
  probes[0].widths = {500, 3};
  probes[0].reconstruction = 1;
  probes[1].widths = {250, 3};
  probes[1].reconstruction = 2;
  probes[2].widths = {500, 3};  // the same architecture again (another search): dropped
  probes[2].reconstruction = 3;
  probes[3].widths = {250, 2};
  const auto d = distinct_probes(probes);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].widths, (std::vector<int64_t>{250, 2}));
  EXPECT_EQ(d[1].widths, (std::vector<int64_t>{250, 3}));
  EXPECT_EQ(d[2].widths, (std::vector<int64_t>{500, 3}));
  EXPECT_EQ(d[2].reconstruction, 1);
}

TEST(Thresholds, RelativeToTheRunsReferenceAsTheSeedsWereToItsOwn) {
  // Seed 000: [500, 500, 3] measured 115.5 / 9.1 under R = 120, K = 10. A run whose
  // reference measures 231 / 18.2 (twice the seed's) gets R = 240, K = 20.
  const auto g = relative_good_model({231, 18.2, 0}, GoodModel{120, 10}, {115.5, 9.1, 0});
  EXPECT_DOUBLE_EQ(g.max_reconstruction, 240);
  EXPECT_DOUBLE_EQ(g.max_kl, 20);
  const auto same = relative_good_model({115.5, 9.1, 0}, GoodModel{120, 10}, {115.5, 9.1, 0});
  EXPECT_DOUBLE_EQ(same.max_reconstruction, 120);
  EXPECT_DOUBLE_EQ(same.max_kl, 10);
  EXPECT_EQ(GoodModel({115, 11}).to_json(),
            nlohmann::json({{"max_reconstruction", 115.0}, {"max_kl", 11.0}}));
}

TEST(ProbeMeasure, RoundTripsThroughJson) {
  const ProbeMeasure m{123.456789012345678, 9.87654321, 0.1};
  const auto back = ProbeMeasure::from_json(nlohmann::json::parse(m.to_json().dump()));
  EXPECT_EQ(back.reconstruction, m.reconstruction);
  EXPECT_EQ(back.kl, m.kl);
  EXPECT_EQ(back.seconds, m.seconds);
}

// The probes of a search trained in rounds (plan, train what is pending, plan
// again) end with the same search as asking the oracle one probe at a time.
TEST(ProbeRounds, PlannedRoundsReachTheSequentialSearch) {
  using Key = std::pair<std::vector<int64_t>, int>;
  std::map<Key, ProbeMeasure> cache;
  auto measure = [](const std::vector<int64_t>& w, int r) {
    auto m = monotone(w);
    m.reconstruction += 0.5 * r;  // the repeats differ a little
    return m;
  };
  SearchOptions o;
  o.noise_aware = true;
  o.repeats = 3;
  o.margin_reconstruction = 6;
  int trained_directly = 0;
  ProbeRounds rounds(
      [&](const std::vector<int64_t>& w, int r) -> std::optional<ProbeMeasure> {
        auto it = cache.find({w, r});
        if (it == cache.end()) return std::nullopt;
        return it->second;
      },
      [&](const std::vector<int64_t>& w, int r) {
        ++trained_directly;
        return cache[{w, r}] = measure(w, r);
      },
      o.repeats);
  rounds.planning = true;
  int round_count = 0;
  size_t pending_before = 0;
  bool repeats_together = false;
  for (;;) {
    const bool complete = attempt([&] {
      minimal_architecture_search(rounds.oracle(), {500, 500, 3}, o);
    });
    const auto& pending = rounds.pending();
    if (complete) break;
    ASSERT_GT(pending.size(), pending_before) << "a round that plans nothing new";
    for (size_t i = pending_before; i < pending.size(); ++i) {
      const auto [w, r] = parse_probe_token(pending[i]);
      cache[{w, r}] = measure(w, r);  // the round's jobs
      if (r == 1 && i + 1 < pending.size() && parse_probe_token(pending[i + 1]).second == 2) {
        repeats_together = true;
      }
    }
    pending_before = pending.size();
    ASSERT_LT(++round_count, 200);
  }
  EXPECT_TRUE(repeats_together) << "a pending repeat brings the repeats after it into its round";
  EXPECT_EQ(trained_directly, 0);  // planning never trains
  EXPECT_GT(rounds.reused(), 0);
  rounds.planning = false;
  const auto assembled = minimal_architecture_search(rounds.oracle(), {500, 500, 3}, o);
  EXPECT_EQ(rounds.trained(), 0);  // every probe came from the rounds
  const auto sequential = minimal_architecture_search(measure, {500, 500, 3}, o);
  EXPECT_EQ(assembled.widths, sequential.widths);
  EXPECT_EQ(assembled.log.size(), sequential.log.size());
  // Not planning, an uncached probe trains.
  EXPECT_EQ(rounds({7, 3}, 0).reconstruction, measure({7, 3}, 0).reconstruction);
  EXPECT_EQ(rounds.trained(), 1);
  EXPECT_EQ(trained_directly, 1);
}

TEST(ProbeRounds, AttemptSaysWhetherAPartRanThrough) {
  EXPECT_TRUE(attempt([] {}));
  EXPECT_FALSE(attempt([] { throw PendingProbe{}; }));
  EXPECT_THROW(attempt([] { throw std::runtime_error("not a pending probe"); }),
               std::runtime_error);
}

}  // namespace
