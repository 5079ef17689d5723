#pragma once
/// \file format.h
/// Numbers as the chapters print them on their progress and summary lines.

#include <ios>
#include <sstream>
#include <string>

namespace vaerepro {

/// `v` in fixed notation with `digits` decimals ("-134.3").
inline std::string format_fixed(double v, int digits = 1) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(digits);
  os << v;
  return os.str();
}

/// `v` in scientific notation with `digits` decimals ("1.44e-02").
inline std::string format_sci(double v, int digits = 2) {
  std::ostringstream os;
  os.precision(digits);
  os << std::scientific << v;
  return os.str();
}

}  // namespace vaerepro
