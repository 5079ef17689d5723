#include "vaerepro/corruption.h"

#include <stdexcept>
#include <string>

namespace vaerepro {

torch::Tensor salt_and_pepper(const torch::Tensor& x, double level) {
  if (!(level >= 0.0 && level <= 1.0)) {
    throw std::invalid_argument("salt-and-pepper level must be in [0, 1], got " +
                                std::to_string(level));
  }
  if (level == 0.0) return x;
  auto chosen = torch::rand_like(x).lt(level);             // [..] bool: the pixels to replace
  auto value = torch::rand_like(x).lt(0.5).to(x.dtype());  // [..] the fair coin: 0 or 1
  return torch::where(chosen, value, x);
}

}  // namespace vaerepro
