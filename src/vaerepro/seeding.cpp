#include "vaerepro/seeding.h"

namespace vaerepro {

uint64_t fnv1a64(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int64_t derive_seed(int64_t run_seed, const std::string& name) {
  const uint64_t s = splitmix64(splitmix64(static_cast<uint64_t>(run_seed)) ^ fnv1a64(name));
  return static_cast<int64_t>(s >> 1);
}

}  // namespace vaerepro
