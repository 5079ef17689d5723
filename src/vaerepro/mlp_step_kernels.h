#pragma once
/// \file mlp_step_kernels.h
/// The hand-written step's two elementwise passes on CPU float buffers, each
/// one parallel loop instead of three to five ATen operations. With AVX2 and
/// FMA (checked at run time) they evaluate exp and log with Cephes' float
/// polynomials (as avx_mathfun / Sleef's u10 variants: about 1 ulp for exp,
/// 2 for log), elsewhere with std::exp and std::log1p; the scalar form is the
/// reference and runs every tail.

#include <cstdint>

namespace vaerepro::kernels {

/// Hidden-layer nonlinearity of the kernels (models.h's tanh, relu, sigmoid).
enum class Unit { kTanh, kRelu, kSigmoid };

/// h[r, j] <- act(h[r, j] + bias[j]) for a contiguous [rows, cols] buffer.
void bias_activation(float* h, const float* bias, int64_t rows, int64_t cols, Unit unit);

/// The Bernoulli head over contiguous [rows, cols] logits l = raw + bias
/// (bias [cols] added here) with targets x:
///   grad[r, j] = (sigmoid(l[r, j]) - x[r, j]) * scale,
/// and returns sum (x l - softplus(l)) = log p(x | l), float within a row's
/// 8 lanes, double across rows and chunks, in a fixed order.
double bernoulli_head(const float* raw, const float* bias, const float* x, float* grad, int64_t rows,
                      int64_t cols, float scale);

/// Whether the AVX2 + FMA forms run on this CPU.
bool vectorised();

}  // namespace vaerepro::kernels
