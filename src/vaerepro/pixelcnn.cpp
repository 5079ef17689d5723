#include "vaerepro/pixelcnn.h"
#include "vaerepro/time_ledger.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "vaerepro/loop.h"

namespace vaerepro {

namespace F = torch::nn::functional;

torch::Tensor causal_mask(CausalMask type, int64_t kh, int64_t kw) {
  if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0) {
    throw std::invalid_argument("causal_mask: kernel sizes must be odd and positive (got " +
                                std::to_string(kh) + "x" + std::to_string(kw) + ")");
  }
  const int64_t cr = kh / 2, cc = kw / 2;
  auto m = torch::zeros({kh, kw});
  auto a = m.accessor<float, 2>();
  for (int64_t r = 0; r < kh; ++r) {
    for (int64_t c = 0; c < kw; ++c) {
      bool on = false;
      switch (type) {
        case CausalMask::kRasterA:
          on = r < cr || (r == cr && c < cc);
          break;
        case CausalMask::kRasterB:
          on = r < cr || (r == cr && c <= cc);
          break;
        case CausalMask::kVerticalA:
          on = r < cr;
          break;
        case CausalMask::kVerticalB:
          on = r <= cr;
          break;
        case CausalMask::kHorizontalA:
          on = r == cr && c < cc;
          break;
        case CausalMask::kHorizontalB:
          on = r == cr && c <= cc;
          break;
      }
      a[r][c] = on ? 1.0f : 0.0f;
    }
  }
  return m;
}

MaskedConv2dImpl::MaskedConv2dImpl(const MaskedConv2dOptions& o) : options(o) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in(), o.out(), {o.kh(), o.kw()})
                                    .padding({o.kh() / 2, o.kw() / 2})));
  mask =
      register_buffer("mask", causal_mask(o.mask(), o.kh(), o.kw()).view({1, 1, o.kh(), o.kw()}));
}

torch::Tensor MaskedConv2dImpl::forward(const torch::Tensor& x) {
  const auto& o = options;
  return torch::conv2d(x, conv->weight * mask.to(conv->weight.dtype()), conv->bias,
                       /*stride=*/{1, 1},
                       /*padding=*/{o.kh() / 2, o.kw() / 2});
}

torch::Tensor gated_activation(const torch::Tensor& x) {
  auto halves = x.chunk(2, 1);
  return torch::tanh(halves[0]) * torch::sigmoid(halves[1]);
}

GatedBlockImpl::GatedBlockImpl(const GatedBlockOptions& o) : options(o) {
  const int64_t c = o.channels(), k = o.kernel();
  vertical = register_module(
      "vertical",
      MaskedConv2d(MaskedConv2dOptions(
          o.in(), 2 * c, k, k, o.first() ? CausalMask::kVerticalA : CausalMask::kVerticalB)));
  horizontal = register_module(
      "horizontal",
      MaskedConv2d(MaskedConv2dOptions(
          o.in(), 2 * c, 1, k, o.first() ? CausalMask::kHorizontalA : CausalMask::kHorizontalB)));
  vertical_to_horizontal = register_module(
      "vertical_to_horizontal", torch::nn::Conv2d(torch::nn::Conv2dOptions(2 * c, 2 * c, 1)));
  horizontal_out =
      register_module("horizontal_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 1)));
}

Stacks GatedBlockImpl::forward(const Stacks& in) {
  auto v = vertical->forward(in.vertical);  // [B, 2C, H, W], sees rows above only
  auto h =
      horizontal->forward(in.horizontal) + vertical_to_horizontal->forward(v);  // [B, 2C, H, W]
  auto h_out = horizontal_out->forward(gated_activation(h));                    // [B, C, H, W]
  if (!options.first()) h_out = h_out + in.horizontal;
  return {gated_activation(v), h_out};
}

GatedPixelCnnImpl::GatedPixelCnnImpl(const GatedPixelCnnOptions& o) : options(o) {
  if (o.codes() < 2) throw std::invalid_argument("GatedPixelCnn: need at least 2 codes");
  const int64_t c = o.channels();
  embedding = register_module("embedding", torch::nn::Embedding(o.codes(), c));
  blocks = register_module("blocks", torch::nn::ModuleList());
  blocks->push_back(GatedBlock(GatedBlockOptions(c, c, o.first_kernel(), true)));
  for (int64_t i = 0; i < o.blocks(); ++i)
    blocks->push_back(GatedBlock(GatedBlockOptions(c, c, o.kernel(), false)));
  head1 = register_module("head1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 1)));
  head2 = register_module("head2", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, o.codes(), 1)));
}

torch::Tensor GatedPixelCnnImpl::forward_embedded(const torch::Tensor& x) {
  Stacks s{x, x};
  for (auto& block : *blocks) s = block->as<GatedBlock>()->forward(s);
  return head2(torch::relu(head1(torch::relu(s.horizontal))));  // [B, K, H, W]
}

torch::Tensor GatedPixelCnnImpl::forward(const torch::Tensor& codes) {
  auto x = embedding(codes).permute({0, 3, 1, 2});  // [B, C, H, W]
  return forward_embedded(x);
}

torch::Tensor GatedPixelCnnImpl::nll(const torch::Tensor& codes) {
  auto logits = forward(codes);  // [B, K, H, W]
  return F::cross_entropy(logits, codes, F::CrossEntropyFuncOptions().reduction(torch::kNone))
      .flatten(1)
      .sum(1);  // [B]
}

torch::Tensor GatedPixelCnnImpl::sample(int64_t n, torch::Device device, double temperature) {
  StageTimer stage_timer(stage::kSampling);
  torch::NoGradGuard no_grad;
  const int64_t h = options.height(), w = options.width();
  auto codes = torch::zeros({n, h, w}, torch::TensorOptions().dtype(torch::kInt64).device(device));
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t c = 0; c < w; ++c) {
      auto logits = forward(codes).select(3, c).select(2, r) / temperature;     // [n, K]
      auto next = torch::multinomial(torch::softmax(logits, 1), 1).squeeze(1);  // [n]
      codes.select(2, c).select(1, r).copy_(next);
    }
  }
  return codes;
}

int64_t GatedPixelCnnImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

nlohmann::json PriorMetrics::to_json() const {
  return {{"nats_per_map", nats_per_map}, {"bits_per_dim", bits_per_dim}, {"maps", maps}};
}

PriorMetrics PriorMetrics::from_json(const nlohmann::json& j) {
  PriorMetrics m;
  m.nats_per_map = j.at("nats_per_map").get<double>();
  m.bits_per_dim = j.at("bits_per_dim").get<double>();
  m.maps = j.at("maps").get<int64_t>();
  return m;
}

nlohmann::json PriorCurvePoint::to_json() const {
  return {{"epochs", epochs},
          {"train", train.to_json()},
          {"test", test.to_json()},
          {"wall_seconds", wall_seconds}};
}

PriorCurvePoint PriorCurvePoint::from_json(const nlohmann::json& j) {
  PriorCurvePoint p;
  p.epochs = j.at("epochs").get<double>();
  p.train = PriorMetrics::from_json(j.at("train"));
  p.test = PriorMetrics::from_json(j.at("test"));
  p.wall_seconds = j.at("wall_seconds").get<double>();
  return p;
}

namespace {
PriorMetrics finish_metrics(double nats_sum, int64_t maps, int64_t positions) {
  PriorMetrics m;
  m.maps = maps;
  if (maps > 0) {
    m.nats_per_map = nats_sum / static_cast<double>(maps);
    m.bits_per_dim = m.nats_per_map / (static_cast<double>(positions) * std::log(2.0));
  }
  return m;
}
}  // namespace

PriorMetrics evaluate_prior(GatedPixelCnnImpl& prior, const torch::Tensor& codes,
                            int64_t batch_size) {
  StageTimer stage_timer(stage::kEvaluation);
  torch::NoGradGuard no_grad;
  const bool was_training = prior.is_training();
  prior.eval();
  double sum = 0;
  const int64_t n = codes.size(0);
  for (int64_t i = 0; i < n; i += batch_size) {
    sum += prior.nll(codes.narrow(0, i, std::min(batch_size, n - i)))
               .to(torch::kFloat64)
               .sum()
               .item<double>();
  }
  prior.train(was_training);
  return finish_metrics(sum, n, codes.size(1) * codes.size(2));
}

namespace {

/// The prior's side of the training loop: maximum likelihood on code maps.
class PriorStep : public TrainStep {
 public:
  PriorStep(GatedPixelCnnImpl& prior, const torch::Tensor& train, const torch::Tensor& test,
            const PriorTrainOptions& o)
      : prior_(prior),
        train_(train),
        test_(test),
        options_(o),
        optimizer_(prior.parameters(), torch::optim::AdamOptions(o.lr)),
        positions_(train.size(1) * train.size(2)) {}

  std::vector<std::string> terms() const override { return {"NLL"}; }
  // float64 sums, added on the host in step order: the epoch's mean is what
  // a read after every step gives.
  torch::Dtype history_dtype() const override { return torch::kFloat64; }
  nlohmann::json identity() const override { return {{"lr", options_.lr}}; }
  torch::nn::Module& model() override { return prior_; }
  torch::optim::Optimizer& optimizer() override { return optimizer_; }
  std::string advice() const override { return "Try a smaller --prior-lr."; }

  void step(const torch::Tensor& idx, torch::Tensor sums) override {
    prior_.train();
    auto batch = train_.index_select(0, idx);  // [B, H, W]
    auto nll = prior_.nll(batch);              // [B]
    auto loss = nll.mean();
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();
    at::stack_out(sums, {nll.detach().to(torch::kFloat64).sum()});
  }

  void check(const StepRow& row) override {
    // Guessing uniformly costs log K nats per position; a prior many times
    // worse than that has diverged.
    const double per_map = row.sums[0] / static_cast<double>(row.batch);
    const double uniform =
        static_cast<double>(positions_) * std::log(static_cast<double>(prior_.options.codes()));
    if (options_.divergence_factor > 0 &&
        per_map > options_.divergence_factor * std::max(uniform, 1.0)) {
      std::ostringstream os;
      os << options_.label << ": the prior diverged in epoch " << row.epoch << " (step " << row.step
         << "): its NLL is " << per_map << " nats per map, more than " << options_.divergence_factor
         << " times a uniform guess's " << uniform << "; Adam learning rate " << options_.lr
         << ": try a smaller --prior-lr";
      throw std::runtime_error(os.str());
    }
  }

  nlohmann::json evaluate(const Mark& mark) override {
    PriorCurvePoint p;
    p.train = finish_metrics(mark.window[0], mark.window_examples, positions_);
    p.test = evaluate_prior(prior_, test_);
    return {{"train", p.train.to_json()}, {"test", p.test.to_json()}};
  }

  std::string describe(const std::vector<double>& m) const override {
    char line[64];
    std::snprintf(line, sizeof(line), "minibatch NLL %.2f nats/map", m[0]);
    return line;
  }

 private:
  GatedPixelCnnImpl& prior_;
  const torch::Tensor& train_;
  const torch::Tensor& test_;
  const PriorTrainOptions& options_;
  torch::optim::Adam optimizer_;
  const int64_t positions_;
};

}  // namespace

PriorTrainResult train_prior(GatedPixelCnnImpl& prior, const torch::Tensor& train,
                             const torch::Tensor& test, const PriorTrainOptions& o) {
  const int64_t n = train.size(0);
  if (n < 1 || o.epochs < 1 || o.batch_size < 1) {
    throw std::invalid_argument("train_prior: need at least one map, epoch and batch element");
  }
  LoopOptions lo;
  lo.total_samples = n * o.epochs;
  lo.batch_size = o.batch_size;
  lo.drop_last = false;  // every map once an epoch, the last minibatch smaller
  for (int64_t e = 1; e <= o.epochs; ++e) lo.marks.push_back(e * n);  // after every epoch
  lo.label = o.label;
  lo.progress_seconds = o.progress_seconds;
  lo.checkpoint = o.checkpoint;
  PriorStep step(prior, train, test, o);
  TrainingLoop loop(step, n, train.device(), lo);
  const LoopState& s = loop.run();
  prior.eval();
  PriorTrainResult result;
  for (const auto& row : s.curve) result.curve.push_back(PriorCurvePoint::from_json(row));
  result.samples_seen = s.samples_seen;
  result.train_seconds = s.train_seconds();
  result.eval_seconds = s.eval_seconds;
  result.resumed_at = s.resumed_at;
  return result;
}

}  // namespace vaerepro
