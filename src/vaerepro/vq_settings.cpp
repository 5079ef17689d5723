#include "vaerepro/vq_settings.h"

#include <algorithm>
#include <stdexcept>

#include "vaerepro/cli.h"

namespace vaerepro {

void to_json(nlohmann::json& j, const VqSetting& s) {
  j = {{"name", s.name}, {"codes", s.codes}, {"dim", s.dim}, {"lr", s.lr}, {"source", s.source}};
}

void to_json(nlohmann::json& j, const VqArm& a) {
  j = {
      {"name", a.name}, {"title", a.title}, {"codebook", a.codebook.to_json()}, {"prior", a.prior}};
}

std::vector<VqArm> parse_vq_arms(const std::string& arms, const std::string& prior_arms,
                                 const std::string& fixed_init, const CodebookOptions& fixed) {
  const std::vector<std::string> names = {"faithful", "fixed"};
  std::vector<VqArm> out;
  for (const auto& name : parse_name_list(arms, "arms", names)) {
    if (name == "faithful") {
      out.push_back({name, "as written", CodebookOptions::as_written()});
      continue;
    }
    CodebookOptions c = fixed;
    try {
      c.init = parse_codebook_init(fixed_init);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--fixed-init: ") + e.what());
    }
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--ema-decay, --ema-epsilon or --restart-threshold: ") +
                       e.what());
    }
    out.push_back({name, "with the usual fixes", c});
  }
  const auto with_prior = parse_name_list(prior_arms, "prior-arms", names, true);
  for (auto& a : out) {
    a.prior = std::find(with_prior.begin(), with_prior.end(), a.name) != with_prior.end();
  }
  return out;
}

}  // namespace vaerepro
