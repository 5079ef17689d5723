#pragma once
/// \file mlp_step_kernels.h
/// The hand-written step's two elementwise passes on CPU float buffers, each
/// one parallel loop instead of three to five ATen operations. With AVX2 and
/// FMA (checked at run time) they evaluate exp and log with Cephes' float
/// polynomials (as avx_mathfun / Sleef's u10 variants: about 1 ulp for exp,
/// 2 for log), elsewhere with std::exp and std::log1p; the scalar form is the
/// reference and runs every tail (sum_selected_rows' vector form covers its
/// tail with a masked vector).

#include <cstdint>
#include <vector>

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
double bernoulli_head(const float* raw, const float* bias, const float* x, float* grad,
                      int64_t rows, int64_t cols, float scale);

/// Rows of a binary matrix as lists of their nonzero columns (CSR): row r's
/// columns are idx[ptr[r] .. ptr[r + 1]), ascending.
struct Pattern {
  std::vector<int32_t> ptr, idx;
};

/// The pattern of a [rows, cols] float buffer (rows `ld` apart) whose every
/// entry is exactly 0 or 1. Returns false, leaving `p` unspecified, as soon
/// as an entry is anything else (a gray level, NaN), more than
/// `max_nonzero` entries are 1, or rows x cols does not fit the int32
/// offsets; the caller then takes the dense path.
bool binary_pattern(const float* x, int64_t rows, int64_t cols, int64_t ld, int64_t max_nonzero,
                    Pattern& p);

/// The same nonzeros listed by column: t.ptr has cols + 1 entries, and
/// column j's rows are t.idx[t.ptr[j] .. t.ptr[j + 1]), ascending.
void transpose_pattern(const Pattern& p, int64_t cols, Pattern& t);

/// out[r, :n] = sum over k in pattern row r of src[k, :n], for r < rows (an
/// empty row writes zeros); rows of src are ld_src apart, of out ld_out.
/// With a binary X of pattern p this is X S (X's rows select rows of S);
/// with p transposed it is X^T S. Sums run in the pattern's order.
void sum_selected_rows(const float* src, int64_t ld_src, int64_t n, const Pattern& p, int64_t rows,
                       float* out, int64_t ld_out);

/// Whether the AVX2 + FMA forms run (the CPU has them and they are on).
bool vectorised();

/// Tests: false runs the scalar forms everywhere, true the AVX2 forms again
/// where the CPU has them; returns the previous setting.
bool set_vectorised(bool on);

}  // namespace vaerepro::kernels
