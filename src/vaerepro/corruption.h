#pragma once
/// \file corruption.h
/// The input corruption of a denoising VAE (Im, Ahn, Memisevic & Bengio
/// 2017, "Denoising criterion for variational auto-encoding framework"), as
/// seed 002 (section 4.2.5) trains it: salt-and-pepper noise of level 0.05
/// on the encoder's input, the clean image scored. The denoising bound
/// \f[ \mathcal{L}_{dvae}(x) = \mathbb{E}_{p(\tilde x|x)} \mathbb{E}_{q(z|\tilde x)}
///     \Big[\log \frac{p(x, z)}{q(z \mid \tilde x)}\Big] \f]
/// (seed 002 eq. 4) is then the ordinary one-sample ELBO of x with the
/// encoder fed \f$\tilde x\f$; each inner term is an ELBO of x with another q,
/// so it is still a lower bound on log p(x).
///
/// Shapes: B = batch, D = pixels.

#include <torch/torch.h>

namespace vaerepro {

/// Salt-and-pepper noise (Vincent et al. 2010, section 4.1): each pixel is
/// chosen with probability `level`, independently, and a chosen pixel is set
/// to 0 or 1 by a fair coin; the others keep their value. On binary images
/// a fraction level / 2 of the pixels changes, in expectation. Draws from
/// the default generator (two uniforms per pixel). x [..] in [0, 1] -> [..].
/// Throws std::invalid_argument for a level outside [0, 1].
torch::Tensor salt_and_pepper(const torch::Tensor& x, double level);

}  // namespace vaerepro
