// Seed 002's variant table (variants.h): each row's settings and learning
// rates as its sections give them, the models and optimizers built from a
// row (parameter counts in closed form), the grid's point names, and what a
// trained variant reports.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <unistd.h>

#include "vaerepro/variants.h"

#include "toy_data.h"

using namespace vaerepro;

namespace {

double lr_of(torch::optim::Optimizer& o) {
  return o.param_groups().front().options().get_lr();
}

TEST(Variants, TheTableHasSeed002sRowsInOrder) {
  ASSERT_EQ(variant_names().size(), 8u);
  EXPECT_EQ(all_variants(), "vae,vae-tuned,cnn,iwae,iwae-elbo,dvae,beta-vae,cvae");
  const VariantSettings s{7, 0.1, 3};
  const Variant vae = make_variant("vae", s);
  EXPECT_EQ(vae.family, VariantFamily::kMlp);
  EXPECT_EQ(vae.activation, Activation::kTanh);  // KW2013
  EXPECT_EQ(vae.optimizer, "adagrad");
  EXPECT_DOUBLE_EQ(vae.init_std, 0.01);
  for (const char* tuned : {"vae-tuned", "cnn", "dvae", "cvae"}) {  // section 4.2.1's settings
    const Variant v = make_variant(tuned, s);
    EXPECT_EQ(v.activation, Activation::kRelu) << tuned;
    EXPECT_EQ(v.optimizer, "adam") << tuned;
    EXPECT_EQ(v.init_std, 0.0) << tuned;
  }
  EXPECT_EQ(make_variant("cnn", s).family, VariantFamily::kCnn);
  const Variant iwae = make_variant("iwae", s), iwae_elbo = make_variant("iwae-elbo", s);
  EXPECT_EQ(iwae.family, VariantFamily::kTwoLayer);
  EXPECT_EQ(iwae.objective.objective, Objective::kIwae);
  EXPECT_EQ(iwae.objective.k, 7);  // the settings' k
  EXPECT_EQ(iwae_elbo.family, VariantFamily::kTwoLayer);
  EXPECT_EQ(iwae_elbo.objective.objective, Objective::kElbo);
  EXPECT_DOUBLE_EQ(make_variant("dvae", s).corruption, 0.1);
  EXPECT_DOUBLE_EQ(make_variant("beta-vae", s).objective.beta, 3.0);
  EXPECT_EQ(make_variant("beta-vae", s).optimizer, "adagrad");  // "the original VAE's settings"
  EXPECT_EQ(make_variant("cvae", s).condition, ConditionEncoding::kOneHot);
  EXPECT_TRUE(make_variant("cvae", s).conditional());
  EXPECT_FALSE(make_variant("dvae", s).conditional());
  // The defaults are the seed's: k = 50, noise 0.05, beta 4.
  const VariantSettings d;
  EXPECT_EQ(make_variant("iwae", d).objective.k, 50);
  EXPECT_DOUBLE_EQ(make_variant("dvae", d).corruption, 0.05);
  EXPECT_DOUBLE_EQ(make_variant("beta-vae", d).objective.beta, 4.0);
}

TEST(Variants, LearningRatesAreTheSeeds) {
  const VariantSettings s;
  auto lr = [&](const char* name, int64_t nz) { return learning_rate(make_variant(name, s), nz); };
  for (int64_t nz : {3, 5, 200}) {
    EXPECT_DOUBLE_EQ(lr("vae", nz), 0.02);       // Adagrad, section 4.1
    EXPECT_DOUBLE_EQ(lr("beta-vae", nz), 0.02);  // the original VAE's
    EXPECT_DOUBLE_EQ(lr("iwae", nz), 1e-3);      // section 4.2.4
    EXPECT_DOUBLE_EQ(lr("iwae-elbo", nz), 1e-3);
  }
  for (const char* tuned : {"vae-tuned", "dvae", "cvae"}) {  // section 4.2.1
    EXPECT_DOUBLE_EQ(lr(tuned, 3), 1e-2) << tuned;
    EXPECT_DOUBLE_EQ(lr(tuned, 5), 1e-3) << tuned;
    EXPECT_DOUBLE_EQ(lr(tuned, 200), 1e-3) << tuned;
  }
  EXPECT_DOUBLE_EQ(lr("cnn", 3), 1e-2);  // section 4.2.2
  EXPECT_DOUBLE_EQ(lr("cnn", 20), 1e-2);
  EXPECT_DOUBLE_EQ(lr("cnn", 200), 1e-3);
}

TEST(Variants, ParsesAListAndRejectsMistakes) {
  const auto v = parse_variants("iwae,vae", {});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].name, "iwae");
  EXPECT_EQ(v[1].name, "vae");
  for (const char* bad : {"", "vae,", ",vae", "vae,,cnn", "vae,vae", "vae,wae"}) {
    EXPECT_THROW(parse_variants(bad, {}), std::invalid_argument) << bad;
  }
  try {
    make_variant("wae", {});
    FAIL() << "an unknown variant is accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("wae"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(all_variants()), std::string::npos) << "names the choices";
  }
}

TEST(Variants, TheGridNamesItsPoints) {
  const auto grid = variant_grid(parse_variants("vae,iwae", {}), {3, 10},
                                 {Protocol::kThreshold, Protocol::kBinarized});
  ASSERT_EQ(grid.size(), 8u);
  EXPECT_EQ(grid[0].name(), "vae-nz3");
  EXPECT_EQ(grid[1].name(), "vae-nz10");
  EXPECT_EQ(grid[3].name(), "iwae-nz10");
  EXPECT_EQ(grid[4].name(), "vae-nz3-binarized");  // the second protocol's points say it
  EXPECT_FALSE(grid[4].primary);
  EXPECT_TRUE(grid[3].primary);
}

TEST(Variants, BuildsTheModelAndOptimizerOfARow) {
  auto data = test::four_prototypes();  // D = 64, 4 classes
  const int64_t d = data.dim(), h = 8, z = 2, c = data.num_classes;
  torch::manual_seed(1);
  // One hidden layer each way: encoder (D + C)H + H + 2(HZ + Z), decoder (Z + C)H + H + HD + D.
  auto vae = build_variant(make_variant("vae", {}), z, data, h, 5, torch::kCPU);
  EXPECT_EQ(vae.model->parameter_count(), d * h + h + 2 * (h * z + z) + z * h + h + h * d + d);
  auto cvae = build_variant(make_variant("cvae", {}), z, data, h, 5, torch::kCPU);
  EXPECT_EQ(cvae.model->parameter_count(),
            (d + c) * h + h + 2 * (h * z + z) + (z + c) * h + h + h * d + d);
  EXPECT_EQ(cvae.model->condition_dim(), c);
  ASSERT_NE(dynamic_cast<torch::optim::Adagrad*>(vae.optimizer.get()), nullptr);
  EXPECT_DOUBLE_EQ(lr_of(*vae.optimizer), 0.02);
  auto* adam = dynamic_cast<torch::optim::Adam*>(cvae.optimizer.get());
  ASSERT_NE(adam, nullptr);
  const auto& o = static_cast<torch::optim::AdamOptions&>(adam->param_groups().front().options());
  EXPECT_DOUBLE_EQ(std::get<1>(o.betas()), 0.99);  // section 4.2.1
  EXPECT_DOUBLE_EQ(o.lr(), 1e-2);                  // N_z <= 3
  auto iwae = build_variant(make_variant("iwae", {}), z, data, h, 5, torch::kCPU);
  EXPECT_EQ(iwae.model->latent_sizes(), (std::vector<int64_t>{5, z}));  // iwae_z1, then N_z
  const auto& oi = static_cast<torch::optim::AdamOptions&>(
      dynamic_cast<torch::optim::Adam&>(*iwae.optimizer).param_groups().front().options());
  EXPECT_DOUBLE_EQ(std::get<1>(oi.betas()), 0.999);  // Burda et al. 2015 section 5
  EXPECT_DOUBLE_EQ(oi.eps(), 1e-4);
  const auto cfg = variant_config(make_variant("iwae", {}), z, h, 5);
  EXPECT_EQ(cfg["family"], "two-layer");
  EXPECT_EQ(cfg["iwae_z1"], 5);
  EXPECT_EQ(cfg["optimizer"]["lr"], 1e-3);
  EXPECT_EQ(cfg["objective"]["k"], 50);
  EXPECT_TRUE(variant_config(make_variant("vae", {}), z, h, 5)["iwae_z1"].is_null());
}

TEST(Variants, ATrainedVariantReportsItsBoundsAndEstimates) {
  auto data = test::four_prototypes();
  const VariantEvaluation e{20, 16, 5};
  for (const char* name : {"vae", "iwae", "dvae", "cvae"}) {
    const Variant v = make_variant(name, {});
    torch::manual_seed(2);
    auto built = build_variant(v, 2, data, 16, 4, torch::kCPU);
    LatentTrainOptions t = variant_training(v);
    EXPECT_EQ(t.objective.objective, v.objective.objective) << name;
    EXPECT_EQ(t.condition, v.condition) << name;
    t.total_samples = 512;
    t.batch_size = 32;
    t.progress_seconds = 0;
    t.label = name;
    const auto r = train_latent_model(*built.model, *built.optimizer, data, t);
    const auto rec = describe_trained(v, *built.model, r);
    EXPECT_EQ(rec["samples_seen"], 512) << name;
    EXPECT_EQ(rec["curve"].size(), 1u) << name;  // the end, always
    const auto out = evaluate_variant(v, *built.model, data, e);
    EXPECT_EQ(out["marginal"]["examples"], 16) << name;
    EXPECT_EQ(out["marginal"]["k"], 20) << name;
    EXPECT_EQ(out["marginal"]["points"], "the first 16 test points") << name;
    // log p(x) >= the ELBO in expectation; with K = 20 it is not below it by much.
    EXPECT_GT(out["marginal"]["log_px"]["mean"].get<double>(),
              out["elbo_same_points"]["elbo"].get<double>() - 1.0)
        << name;
    EXPECT_EQ(out.contains("iwae_bound"), v.family == VariantFamily::kTwoLayer) << name;
    EXPECT_EQ(out["marginal"].contains("label_marginal"), v.conditional()) << name;
    EXPECT_EQ(out.contains("denoising_elbo"), v.corruption > 0) << name;
    EXPECT_EQ(out["layers"].size(), v.family == VariantFamily::kTwoLayer ? 2u : 1u) << name;
    if (v.conditional()) EXPECT_EQ(out["marginal"]["label_marginal"]["k_per_label"], 5) << name;
  }
  // The pictures: PNGs and the tensors of the composite figures.
  const auto dir =
      std::filesystem::temp_directory_path() / ("vaerepro-variants-" + std::to_string(::getpid()));
  torch::manual_seed(3);
  const Variant cvae = make_variant("cvae", {});
  auto built = build_variant(cvae, 2, data, 16, 4, torch::kCPU);
  const auto pics = write_variant_pictures(cvae, *built.model, data, dir.string());
  EXPECT_TRUE(std::filesystem::exists(dir / "images/samples.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "images/reconstructions.png"));
  torch::Tensor samples;
  torch::load(samples, (dir / "samples.pt").string());
  EXPECT_EQ(samples.sizes(), (std::vector<int64_t>{10, data.dim()}));
  EXPECT_EQ(pics["samples_condition"], "the digit 1 (seed 002 Fig. 6)");
  std::filesystem::remove_all(dir);
}

}  // namespace
