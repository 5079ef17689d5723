#include "vaerepro/verdicts.h"

#include <cmath>

#include "vaerepro/format.h"

namespace vaerepro {

Estimate estimate_from_json(const nlohmann::json& e) {
  return Estimate{e["mean"].get<double>(), e.value("standard_error_data", 0.0)};
}

double root_sum_square(std::initializer_list<double> se) {
  double s2 = 0;
  for (double v : se) s2 += v * v;
  return std::sqrt(s2);
}

Estimate difference(const Estimate& a, const Estimate& b) {
  return Estimate{a.mean - b.mean, root_sum_square({a.se, b.se})};
}

Estimate difference_of_gaps(const Estimate& a_x, const Estimate& a_y, const Estimate& b_x,
                            const Estimate& b_y) {
  return Estimate{(a_x.mean - a_y.mean) - (b_x.mean - b_y.mean),
                  root_sum_square({a_x.se, a_y.se, b_x.se, b_y.se})};
}

std::string plus_minus(const Estimate& e) {
  return format_fixed(e.mean) + " +- " + format_fixed(e.se);
}

bool strictly_increasing(const std::vector<double>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] <= v[i - 1]) return false;
  }
  return true;
}

bool strictly_decreasing(const std::vector<double>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] >= v[i - 1]) return false;
  }
  return true;
}

std::string arrow_chain(const std::vector<double>& v, int digits) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? " -> " : "") + format_fixed(v[i], digits);
  return out;
}

}  // namespace vaerepro
