#include "vaerepro/vq_record.h"

#include <algorithm>
#include <cmath>

#include "vaerepro/image.h"

namespace vaerepro {

VqMeasured measure_vqvae(VqVaeImpl& model, const TensorData& data, int64_t n_fixed) {
  VqMeasured m;
  n_fixed = std::min(n_fixed, data.test.size(0));
  m.train_codes = encode_all(model, data.train_eval);  // [N, 7, 7]
  m.test_codes = encode_all(model, data.test);         // [M, 7, 7]
  m.test = evaluate_vqvae(model, data.test);
  m.train = evaluate_vqvae(
      model, data.train_eval.narrow(0, 0, std::min<int64_t>(10000, data.train.size(0))));
  m.gray_fixed = data.test_gray.narrow(0, 0, n_fixed);
  m.recon_fixed = vq_reconstruct(model, data.test.narrow(0, 0, n_fixed));
  m.table1 = table1_metrics(m.recon_fixed, m.gray_fixed);
  const int64_t k = model.options.codes();
  m.usage_test = codebook_usage(m.test_codes, k);
  m.usage_train = codebook_usage(m.train_codes, k);
  return m;
}

nlohmann::json record_vqvae(const RunWriter& writer, const std::string& name, const VqSetting& s,
                            const VqArm& arm, VqVaeImpl& model, const VqTrainResult& trained,
                            const VqMeasured& m) {
  nlohmann::json r = {{"name", name},
                      {"setting", s.name},
                      {"arm", arm.name},
                      {"arm_title", arm.title},
                      {"codes", s.codes},
                      {"dim", s.dim},
                      {"lr", s.lr},
                      {"source", s.source},
                      {"quantizer", arm.codebook.to_json()}};
  const CsvTable curve = vq_curve_table(trained.curve);
  const std::string curve_csv = "curves/vqvae-" + name + ".csv";
  writer.write_csv(curve_csv, curve.header, curve.rows);
  const int64_t n = m.gray_fixed.size(0), n_show = std::min<int64_t>(10, n),
                rest = std::min(n_show, n - n_show);
  const std::string rec_png = "images/reconstructions-" + name + ".png";
  write_image_grid(
      writer.path(rec_png),
      torch::cat({m.gray_fixed.narrow(0, 0, n_show), m.recon_fixed.narrow(0, 0, n_show),
                  m.gray_fixed.narrow(0, n_show, rest), m.recon_fixed.narrow(0, n_show, rest)}),
      n_show);
  r["images"]["reconstructions"] = rec_png;
  const std::string usage_png = "images/codebook-usage-" + name + ".png";
  write_png(writer.path(usage_png), usage_bars(m.usage_test.counts));
  r["images"]["codebook_usage"] = usage_png;
  r["parameters"] = model.parameter_count();
  r["vqvae"] = {
      {"samples_seen", trained.samples_seen},
      {"train_seconds", trained.train_seconds},
      {"final", {{"train", m.train.to_json()}, {"test", m.test.to_json()}}},
      {"table1", m.table1.to_json()},
      {"restarts", model.quantizer->restarts()},
      {"dead_codes", model.quantizer->codes_below(std::max(1.0, arm.codebook.restart_threshold))},
      {"curve", trained.curve},
      {"curve_csv", curve_csv}};
  r["usage"] = {{"train", m.usage_train.to_json()}, {"test", m.usage_test.to_json()}};
  return r;
}

void record_prior(const RunWriter& writer, const std::string& name, const VqPriorOutcome& p,
                  Reconstruction reconstruction, Protocol protocol, nlohmann::json& r) {
  const auto k = static_cast<int64_t>(p.usage.counts.size());
  const int64_t samples = p.prior_images.size(0), cols = std::min<int64_t>(10, samples);
  const CsvTable curve = prior_curve_table(p.curve);
  const std::string prior_csv = "curves/prior-" + name + ".csv";
  writer.write_csv(prior_csv, curve.header, curve.rows);
  const std::string prior_png = "images/prior-samples-" + name + ".png";
  write_image_grid(writer.path(prior_png), p.prior_images, cols);
  r["images"]["prior_samples"] = prior_png;
  const std::string uniform_png = "images/uniform-samples-" + name + ".png";
  write_image_grid(writer.path(uniform_png), p.uniform_images, cols);
  r["images"]["uniform_samples"] = uniform_png;
  r["usage"]["prior_samples"] = p.usage.to_json();
  r["prior"] = {
      {"parameters", p.parameters},
      {"final", {{"train", p.curve.back().train.to_json()}, {"test", p.test.to_json()}}},
      {"uniform", {{"nats_per_map", p.bound.uniform_nats}, {"bits_per_dim", std::log2(double(k))}}},
      {"nll_of_uniform_maps", p.uniform_maps.to_json()},
      {"train_seconds", p.curve.back().wall_seconds},
      {"sample_seconds", p.sample_seconds},
      {"samples", samples},
      {"curve", p.curve},
      {"curve_csv", prior_csv}};
  r["bound"] = vq_bound_record(p.bound, reconstruction, protocol, p.sigma2);
}

void record_codebook(const RunWriter& writer, const std::string& name, const VqMeasured& m,
                     const CodebookUsage* prior_samples, nlohmann::json& r) {
  const CsvTable t = codebook_table(m.usage_train, m.usage_test, prior_samples);
  const std::string csv = "codebook/" + name + ".csv";
  writer.write_csv(csv, t.header, t.rows);
  r["usage"]["codebook_csv"] = csv;
}

}  // namespace vaerepro
