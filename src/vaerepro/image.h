#pragma once
/// \file image.h
/// Image grids as 8-bit gray PNG files (reconstructions, samples, manifolds,
/// traversals).
///
/// Shapes: N = images, H x W = one image.

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace vaerepro {

/// Tiles N images [N, H, W] (or [N, H*W] with h, w given) with values in
/// [0, 1] into one [rows*(H+pad)+pad, cols*(W+pad)+pad] image, row-major,
/// `cols` per row, with `pad` pixels of `pad_value` between and around.
/// Missing cells at the end are left at pad_value.
torch::Tensor tile_images(const torch::Tensor& images, int64_t cols, int64_t h = 0, int64_t w = 0,
                          int64_t pad = 1, double pad_value = 0.5);

/// Writes a [H, W] image with values in [0, 1] (clamped) or uint8 as an 8-bit
/// gray PNG, atomically. Throws std::runtime_error naming the path on failure.
void write_png(const std::string& path, const torch::Tensor& image);

/// tile_images + write_png.
void write_image_grid(const std::string& path, const torch::Tensor& images, int64_t cols,
                      int64_t h = 28, int64_t w = 28);

}  // namespace vaerepro
