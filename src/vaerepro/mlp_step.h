#pragma once
/// \file mlp_step.h
/// The MLP VAE's training step written out by hand: forward and backward
/// without autograd, every buffer allocated once.
///
/// Through autograd a step of the 784-500-20 VAE runs about 150 tensor
/// operations, most of them small, each a dispatch, a graph node and (for
/// most) an allocation; the ten matrix products that do the work are 55-70%
/// of it on a CPU. This step runs the same matrix products, at the same
/// shapes (but see binary inputs below), into buffers that live as long as
/// the step object (large ones split across threads by threaded_product,
/// small independent ones side by side), and replaces
/// the rest by two fused kernels (mlp_step_kernels.h: bias + activation, and
/// the Bernoulli head), two small loops over [B, Z] (the sample and the KL,
/// and their gradient) and a dozen small ATen calls (bias gradients,
/// activation derivatives):
///
///   forward    h_l = act(h_{l-1} W_l^T + b_l)   (addmm into h_l, activation in place)
///              mu, logvar heads; eps ~ N(0, I) (the draw autograd's path makes)
///              z = mu + exp(logvar / 2) eps and KL(q || p) in one loop
///              decoder likewise; logits = h W_out^T + b_out
///   loss       log p(x | z) = x . logits - sum softplus(logits)
///   backward   d logits = (sigmoid(logits) - x) / B
///              dW = g^T h_in,  db = sum_rows g,  g_in = (g W) * act'(h_in)
///              d mu = dz + (beta / B) mu,
///              d logvar = dz eps sd / 2 + (beta / B)(sd^2 - 1) / 2
///
/// Each gradient is written into its parameter's .grad() (the same tensor
/// every step), which the optimizer (fused or torch::optim) then reads. The
/// mathematics is training_loss()'s with beta; tests/mlp_step_test.cpp checks
/// loss terms and every gradient against autograd, with and without a
/// condition, for each supported activation and with and without hidden
/// layers, and that a run of steps stays with autograd's run.
///
/// Binary inputs (the binarised protocols: every entry 0 or 1) make the first
/// layer's two large products sums of selected rows: x W^T adds, for each
/// image, the rows of W^T of its lit pixels, and the weight gradient
/// x^T g adds, for each pixel, the rows of g of the images where it is lit.
/// With a fraction rho of pixels lit that is rho of the products' additions
/// and none of their multiplications (Fashion-MNIST binarised: rho = 0.29;
/// MNIST: 0.13). The step checks each batch on the CPU (a pass over x) and
/// takes this path when x is binary, rho is at most
/// MlpStepOptions::max_density and the first layer's weight is stored input
/// major (models.h stores it so); otherwise the dense products. The sums
/// differ from the dense products by float rounding only, with one
/// exception: a non-finite weight in the row of a pixel no image of the
/// batch lights does not reach h (the dense product would give 0 * Inf =
/// NaN); it still fails the trainer's check of the parameters at the next
/// checkpoint or the end of the run, and shows in the ELBO as soon as a batch
/// lights that pixel.
///
/// Written for: an unconditional or conditional (one-hot / raw label
/// concatenated, as models.h does) MLP VAE with a Bernoulli decoder and tanh,
/// ReLU or sigmoid hidden units, on float tensors on any device (on the CPU
/// the kernels and loops above; elsewhere the same arithmetic as ATen
/// operations, which has not yet run on a GPU).
/// Anything else (Gaussian decoders, softplus units, double precision) says
/// why in unsupported_reason() and the trainer keeps autograd's step.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "vaerepro/mlp_step_kernels.h"
#include "vaerepro/models.h"

namespace vaerepro {

/// out = a b (2-D float tensors; out may be any layout BLAS takes). On the
/// CPU with several threads and `split`, a product of at least 2^20
/// multiply-adds and 128 output columns is split by output columns, one
/// single-threaded GEMM per thread (inside the parallel region the BLAS runs
/// on the calling thread: runtime.h blas_calls_stay_on_caller(), true for
/// the libopenblas0-openmp that `make deps` installs); at the step's shapes
/// (B = 100, 500 x 784) OpenBLAS's own two-thread split of the same product
/// took 20-50% longer on the 2-vCPU machine (bench/README.md). Otherwise,
/// and elsewhere: at::mm_out.
void threaded_product(torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b,
                      bool split = true);

/// Choices of the hand-written step.
struct MlpStepOptions {
  /// Binary batches on the CPU: the first layer as sums of selected rows.
  bool sparse_binary_input = true;
  /// ... when at most this fraction of the batch's entries are 1.
  double max_density = 0.5;
  /// On the CPU with several threads: large products split by output
  /// columns, one single-threaded GEMM per thread, and small independent
  /// ones side by side; false: every product on OpenBLAS's own threads.
  bool split_products = true;
};

/// The step object of one VAE; it keeps pointers to the VAE's parameters
/// (which must not be replaced while it lives) and buffers sized for the
/// largest batch seen.
class MlpVaeStep {
 public:
  /// Why the hand-written step cannot train `vae` ("" when it can).
  static std::string unsupported_reason(VaeImpl& vae);

  /// Throws std::invalid_argument with unsupported_reason() when not "".
  explicit MlpVaeStep(VaeImpl& vae, MlpStepOptions options = {});

  /// Gradients of the minibatch loss mean_b -(log p(x_b | z_b) - beta KL_b)
  /// for x [B, D] (c [B, C] for a conditional model, else undefined) into
  /// every parameter's .grad(); writes [sum log p(x|z), sum KL] over the
  /// batch into `sums_out` [2] when it is defined. No host synchronisation
  /// on CUDA; on the CPU nothing is allocated per step except views.
  void compute_gradients(const torch::Tensor& x, const torch::Tensor& c, double beta,
                         torch::Tensor sums_out);

  /// Steps so far, and how many of them took the sparse first layer.
  int64_t steps() const { return steps_; }
  int64_t sparse_steps() const { return sparse_steps_; }

 private:
  struct Dense {
    torch::Tensor weight;  ///< [out, in], the module's own tensor
    torch::Tensor bias;    ///< [out]
    torch::Tensor weight_grad, bias_grad;
  };
  void ensure_capacity(int64_t batch);
  void bind_gradients();
  void activate_(torch::Tensor& h) const;
  void activation_backward_(torch::Tensor& g, const torch::Tensor& h) const;
  /// g [B, out], input [B, in] of layer `d`: its weight and bias gradients.
  void dense_backward(Dense& d, const torch::Tensor& g, const torch::Tensor& input) const;

  /// Whether layer d's weight [out, in] is stored input major (its
  /// transpose is contiguous), and its gradient likewise.
  static bool input_major(const Dense& d);
  void first_layer_sparse_forward(const torch::Tensor& c, kernels::Unit unit);
  void first_layer_sparse_backward(const torch::Tensor& c);

  VaeImpl& vae_;
  MlpStepOptions options_;
  Activation activation_;
  int64_t input_dim_, condition_dim_, latent_;
  std::vector<Dense> encoder_, decoder_;  ///< hidden layers
  Dense mu_head_, logvar_head_, out_head_;

  int64_t capacity_ = 0;  ///< rows the buffers hold
  int64_t batch_ = -1;    ///< rows the views below cover
  // Full-capacity buffers and their views for the current batch.
  struct Buffer {
    torch::Tensor full, view;
  };
  std::vector<Buffer*> buffers_;
  Buffer input_;  ///< [B, D + C] when conditional
  std::vector<Buffer> enc_h_, enc_g_;
  Buffer mu_, logvar_, eps_, sd_, z_in_, dz_in_, dmu_, dlogvar_;
  std::vector<Buffer> dec_h_, dec_g_;
  Buffer logits_, softplus_, dlogits_;
  torch::Tensor kl_scratch_;             ///< [] (non-CPU path)
  kernels::Pattern lit_, lit_by_pixel_;  ///< a binary batch's 1s, by image and by pixel
  int64_t steps_ = 0, sparse_steps_ = 0;
};

}  // namespace vaerepro
