// The seed derivation against values computed independently (the published
// FNV-1a test vectors, SplitMix64's first output for seed 0) and its
// properties: deterministic, distinct across names and seeds, non-negative.
#include <set>

#include <gtest/gtest.h>

#include "vaerepro/seeding.h"

using namespace vaerepro;

TEST(Seeding, Fnv1aMatchesPublishedVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Seeding, SplitMixMatchesItsFirstOutputForSeedZero) {
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
}

TEST(Seeding, DerivedSeedsAreFixedPortableNumbers) {
  // Computed with arbitrary-precision integers outside C++ (the file comment's formula).
  EXPECT_EQ(derive_seed(1, "nz-20"), 5334283484636722804ll);
  EXPECT_EQ(derive_seed(2, "nz-20"), 1717828164455998481ll);
}

TEST(Seeding, DistinctAcrossNamesAndSeedsAndNonNegative) {
  std::set<int64_t> seen;
  for (int64_t seed : {0, 1, 2, 3, 1000003}) {
    for (const char* name : {"nz-3", "nz-5", "nz-10", "nz-20", "nz-200", "beta-4", "probe"}) {
      const int64_t s = derive_seed(seed, name);
      EXPECT_GE(s, 0);
      EXPECT_EQ(s, derive_seed(seed, name));
      seen.insert(s);
    }
  }
  EXPECT_EQ(seen.size(), 35u);
}
