#pragma once
/// \file verdicts.h
/// The arithmetic of a chapter's verdicts (schema::Check): estimates with
/// their standard errors, differences judged against two standard errors,
/// and sequences that must rise or fall, with the words that show them.

#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vaerepro {

/// A mean with its standard error.
struct Estimate {
  double mean = 0;
  double se = 0;
};

/// An estimate as estimators.h writes it ({"mean", "standard_error_data"}); a
/// missing standard error is 0.
Estimate estimate_from_json(const nlohmann::json& e);

/// sqrt(sum of squares): the standard error of a sum or difference of
/// estimates taken as independent (which overstates it for estimates on the
/// same points: conservative). Summed in the order given.
double root_sum_square(std::initializer_list<double> se);

/// a - b, with the standard error root_sum_square({a.se, b.se}).
Estimate difference(const Estimate& a, const Estimate& b);

/// The same estimate with the sign of its mean flipped (exact).
inline Estimate operator-(const Estimate& e) {
  return Estimate{-e.mean, e.se};
}

/// The gap a_x - a_y against the gap b_x - b_y: (a_x - a_y) - (b_x - b_y),
/// with the standard error root_sum_square({a_x.se, a_y.se, b_x.se, b_y.se}).
Estimate difference_of_gaps(const Estimate& a_x, const Estimate& a_y, const Estimate& b_x,
                            const Estimate& b_y);

/// The criterion "larger than zero by more than two standard errors".
inline bool exceeds_two_se(const Estimate& e) {
  return e.mean > 2 * e.se;
}

/// "-12.3 +- 1.4" (format_fixed, one decimal).
std::string plus_minus(const Estimate& e);

/// Each value larger (smaller) than the one before; true for fewer than two.
bool strictly_increasing(const std::vector<double>& v);
bool strictly_decreasing(const std::vector<double>& v);

/// "1.0 -> 2.5 -> 3.1" (format_fixed with `digits` decimals).
std::string arrow_chain(const std::vector<double>& v, int digits = 1);

}  // namespace vaerepro
