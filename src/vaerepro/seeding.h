#pragma once
/// \file seeding.h
/// One seed derivation for every model the suite trains: the run's seed
/// (--seed) and the model's name ("nz-20", "beta-4", "probe-500-500-3") give
/// the model's seed, the same on every platform and standard library, so that
/// `--nz 20` alone reproduces the Nz = 20 model of a sweep and a sweep point
/// run as a separate job reproduces the one trained in process.
///
/// The derivation (documented so that another implementation can match it):
///   h = FNV-1a-64(name)                      (offset 14695981039346656037,
///                                              prime 1099511628211, over the
///                                              name's bytes)
///   s = splitmix64(splitmix64(seed) ^ h)     (Steele, Lea & Flood 2014; the
///                                              finaliser of java.util.SplittableRandom)
///   model seed = s >> 1                       (non-negative as int64)
/// Torch-free.

#include <cstdint>
#include <string>

namespace vaerepro {

/// FNV-1a, 64 bits, over the bytes of `text`.
uint64_t fnv1a64(const std::string& text);

/// One step of SplitMix64's output function on `x` (x + golden gamma, then
/// the two xor-shift-multiply rounds).
uint64_t splitmix64(uint64_t x);

/// The seed of the model `name` in a run with seed `run_seed` (see the file
/// comment); always in [0, 2^63).
int64_t derive_seed(int64_t run_seed, const std::string& name);

}  // namespace vaerepro
