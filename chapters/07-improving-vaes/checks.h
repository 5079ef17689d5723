#pragma once
/// \file checks.h
/// Chapter 7's verdicts on seed 002's claims, computed from the fresh grid,
/// and its composite figures (seed 002 Figs. 5-6). Header-only, included by
/// main.cpp alone.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "vaerepro/format.h"
#include "vaerepro/image.h"
#include "vaerepro/protocol.h"
#include "vaerepro/results.h"

namespace chapter07 {

/// A point's number: "elbo" (the test ELBO, seed 002's quantity) or "log_px"
/// (the importance-sampled estimate; for a CVAE its label-marginal log p(x)
/// when `marginal_cvae`, else log p(x | y)). NaN when the point lacks it.
inline double point_value(const nlohmann::json& p, const std::string& quantity,
                          bool marginal_cvae) {
  try {
    if (quantity == "elbo") return p.at("test").at("elbo").get<double>();
    const auto& m = p.at("marginal");
    if (marginal_cvae && m.contains("label_marginal"))
      return m.at("label_marginal").at("mean").get<double>();
    return m.at("log_px").at("mean").get<double>();
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

/// The grid of one protocol: variant -> nz -> point.
using Table = std::map<std::string, std::map<int64_t, nlohmann::json>>;

inline Table table_of(const std::vector<nlohmann::json>& grid, const std::string& protocol) {
  Table t;
  for (const auto& p : grid) {
    if (p.value("protocol", "") == protocol)
      t[p.at("variant").get<std::string>()][p.at("nz").get<int64_t>()] = p;
  }
  return t;
}

inline bool has(const Table& t, const std::string& v, int64_t nz) {
  auto it = t.find(v);
  return it != t.end() && it->second.count(nz) > 0;
}

/// "DVAE best at low latent capacity" and its kin: at each of `nzs` present,
/// is `variant`'s number the highest of the unconditional variants?
inline nlohmann::json best_at(const Table& t, const std::string& variant,
                              const std::vector<int64_t>& nzs, const std::string& quantity,
                              const std::string& claim, const std::string& where) {
  bool holds = true;
  int tested = 0;
  std::string detail;
  for (int64_t nz : nzs) {
    if (!has(t, variant, nz)) continue;
    std::string best, second;
    double best_value = -std::numeric_limits<double>::infinity(), second_value = best_value;
    for (const auto& [name, row] : t) {
      if (name == "cvae" || !row.count(nz))
        continue;  // a CVAE's numbers are conditional: not ranked here
      const double v = point_value(row.at(nz), quantity, false);
      if (v > best_value) {
        second_value = best_value;
        second = best;
        best_value = v;
        best = name;
      } else if (v > second_value) {
        second_value = v;
        second = name;
      }
    }
    ++tested;
    const double mine = point_value(t.at(variant).at(nz), quantity, false);
    if (best != variant) holds = false;
    detail += (detail.empty() ? "" : "; ") + std::string("N_z = ") + std::to_string(nz) + ": " +
              variant + " " + vaerepro::format_fixed(mine) + ", best " + best + " " +
              vaerepro::format_fixed(best_value);
    // How far ahead the leader is: a margin within the noise decides nothing (run several seeds).
    if (!second.empty()) {
      detail += ", next " + second + " " + vaerepro::format_fixed(second_value) + " (margin " +
                vaerepro::format_fixed(best_value - second_value) + ")";
    }
  }
  if (tested == 0) return nullptr;
  const std::string q = quantity == "elbo" ? "test ELBO" : "log p(x)";
  return {{"claim", claim + " (" + q + ")"},
          {"criterion", "at " + where + " the " + variant + "'s " + q +
                            " is the highest of the unconditional variants (the CVAE's conditional "
                            "numbers left out)"},
          {"holds", holds},
          {"quantity", quantity},
          {"detail", detail}};
}

/// Means over the latent sizes every variant of `t` has.
inline std::map<std::string, double> means_over_nz(const Table& t, const std::string& quantity,
                                                   bool marginal_cvae,
                                                   std::vector<int64_t>* common_nz) {
  std::vector<int64_t> nzs;
  if (!t.empty()) {
    for (const auto& [nz, p] : t.begin()->second) {
      bool everywhere = true;
      for (const auto& [name, row] : t) everywhere = everywhere && row.count(nz);
      if (everywhere) nzs.push_back(nz);
    }
  }
  std::map<std::string, double> means;
  for (const auto& [name, row] : t) {
    double sum = 0;
    for (int64_t nz : nzs) sum += point_value(row.at(nz), quantity, marginal_cvae);
    if (!nzs.empty()) means[name] = sum / static_cast<double>(nzs.size());
  }
  if (common_nz) *common_nz = nzs;
  return means;
}

inline nlohmann::json cvae_best_overall(const Table& t, const std::string& quantity) {
  if (!t.count("cvae") || t.size() < 2) return nullptr;
  std::vector<int64_t> nzs;
  const bool marginal = quantity != "elbo";
  auto means = means_over_nz(t, quantity, marginal, &nzs);
  if (nzs.empty()) return nullptr;
  std::string best, detail;
  double best_value = -std::numeric_limits<double>::infinity();
  for (const auto& [name, m] : means) {
    if (m > best_value) {
      best_value = m;
      best = name;
    }
    detail += (detail.empty() ? "" : ", ") + name + " " + vaerepro::format_fixed(m);
  }
  const std::string q = quantity == "elbo"
                            ? "test ELBO (the CVAE's is of log p(x | y), as the seed's)"
                            : "log p(x) (the CVAE's label-marginal log (1/10) sum_y p(x | y))";
  return {
      {"claim",
       std::string("CVAE best overall (") + (quantity == "elbo" ? "test ELBO" : "log p(x)") + ")"},
      {"criterion", "the CVAE has the highest mean over N_z of the " + q + " of all variants"},
      {"holds", best == "cvae"},
      {"quantity", quantity},
      {"detail", "means over N_z = " + vaerepro::format_fixed(static_cast<double>(nzs.size()), 0) +
                     " sizes: " + detail}};
}

inline nlohmann::json tuned_slightly_better(const Table& t, const std::string& quantity) {
  if (!t.count("vae") || !t.count("vae-tuned")) return nullptr;
  double sum = 0;
  int n = 0;
  std::string detail;
  for (const auto& [nz, p] : t.at("vae")) {
    if (!has(t, "vae-tuned", nz)) continue;
    const double d =
        point_value(t.at("vae-tuned").at(nz), quantity, false) - point_value(p, quantity, false);
    sum += d;
    ++n;
    detail += (detail.empty() ? "" : ", ") + std::string("N_z = ") + std::to_string(nz) + ": " +
              vaerepro::format_fixed(d);
  }
  if (n == 0) return nullptr;
  const double mean = sum / n;
  const std::string q = quantity == "elbo" ? "test ELBO" : "log p(x)";
  return {{"claim", "the tuned VAE is slightly better than the baseline (" + q + ")"},
          {"criterion", "the mean over N_z of (tuned VAE - VAE) " + q +
                            " is above 0 and at most 10 nats (seed 002: +4.6)"},
          {"holds", mean > 0 && mean <= 10},
          {"quantity", quantity},
          {"detail", "tuned - baseline " + detail + "; mean " + vaerepro::format_fixed(mean)}};
}

inline nlohmann::json iwae_objective_helps(const Table& t) {
  if (!t.count("iwae") || !t.count("iwae-elbo")) return nullptr;
  bool holds = true;
  int n = 0;
  std::string detail;
  for (const auto& [nz, p] : t.at("iwae")) {
    if (!has(t, "iwae-elbo", nz)) continue;
    const double d =
        point_value(p, "log_px", false) - point_value(t.at("iwae-elbo").at(nz), "log_px", false);
    holds = holds && d > 0;
    ++n;
    detail += (detail.empty() ? "" : ", ") + std::string("N_z = ") + std::to_string(nz) + ": " +
              vaerepro::format_fixed(d, 2);
  }
  if (n == 0) return nullptr;
  const std::string k = t.at("iwae").begin()->second.at("objective").at("k").dump();
  return {{"claim", "the k = " + k +
                        " objective gives a better log p(x) than the ELBO on the same network "
                        "(Burda et al. 2015)"},
          {"criterion",
           "at every N_z the IWAE's log p(x) is above that of the same two-layer network trained "
           "with the ELBO"},
          {"holds", holds},
          {"quantity", "log_px"},
          {"detail", "IWAE - IWAE network with the ELBO: " + detail}};
}

/// Every verdict, on the points of `protocol` (the run's --protocol).
inline nlohmann::json compute_checks(const std::vector<nlohmann::json>& grid,
                                     const std::string& protocol) {
  const Table t = table_of(grid, protocol);
  nlohmann::json checks = nlohmann::json::array();
  auto add = [&](nlohmann::json c) {
    if (!c.is_null()) checks.push_back(std::move(c));
  };
  for (const std::string q : {"elbo", "log_px"}) {
    add(best_at(t, "dvae", {3, 5}, q, "DVAE best at low latent capacity", "N_z = 3 and 5"));
    add(best_at(t, "cnn", {20, 200}, q, "CNN best at high latent capacity", "N_z = 20 and 200"));
    add(cvae_best_overall(t, q));
    add(tuned_slightly_better(t, q));
  }
  add(iwae_objective_helps(t));
  return checks;
}

/// Seed 002 Figs. 5-6 from the points at N_z = picture_nz under `protocol`:
/// the first ten test images above one row of reconstructions per variant,
/// and ten samples per variant, in the seed's row order.
inline nlohmann::json write_composites(const vaerepro::RunWriter& writer,
                                       const std::vector<nlohmann::json>& grid, int64_t picture_nz,
                                       const vaerepro::TensorData& data,
                                       vaerepro::Protocol protocol) {
  namespace fs = std::filesystem;
  const Table t = table_of(grid, vaerepro::to_string(protocol));
  const std::vector<std::string> order = {"vae",  "vae-tuned", "cnn",      "iwae",
                                          "dvae", "cvae",      "beta-vae", "iwae-elbo"};
  std::vector<torch::Tensor> recon_rows, sample_rows;
  std::vector<std::string> names;
  for (const auto& v : order) {
    if (!has(t, v, picture_nz)) continue;
    const fs::path dir = writer.path(t.at(v).at(picture_nz).at("dir").get<std::string>());
    if (!fs::exists(dir / "reconstructions.pt") || !fs::exists(dir / "samples.pt")) continue;
    torch::Tensor r, s;
    torch::load(r, (dir / "reconstructions.pt").string());
    torch::load(s, (dir / "samples.pt").string());
    recon_rows.push_back(r);
    sample_rows.push_back(s);
    names.push_back(v);
  }
  nlohmann::json images = nlohmann::json::object();
  if (names.empty()) return images;
  const int64_t n = recon_rows.front().size(0);
  auto originals = data.test.narrow(0, 0, n).to(torch::kCPU);
  recon_rows.insert(recon_rows.begin(), originals);
  vaerepro::write_image_grid(writer.path("images/fig5-reconstructions.png"), torch::cat(recon_rows),
                             n, data.height, data.width);
  vaerepro::write_image_grid(writer.path("images/fig6-samples.png"), torch::cat(sample_rows),
                             sample_rows.front().size(0), data.height, data.width);
  images["reconstructions"] = "images/fig5-reconstructions.png";
  images["samples"] = "images/fig6-samples.png";
  images["nz"] = picture_nz;
  images["reconstruction_rows"] = nlohmann::json(names);
  images["reconstruction_rows"].insert(images["reconstruction_rows"].begin(), "test images");
  images["sample_rows"] = names;
  return images;
}

}  // namespace chapter07
