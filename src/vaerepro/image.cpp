#include "vaerepro/image.h"
#include "vaerepro/time_ledger.h"

#include <png.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace vaerepro {

torch::Tensor tile_images(const torch::Tensor& images, int64_t cols, int64_t h, int64_t w,
                          int64_t pad, double pad_value) {
  auto imgs = images.detach().to(torch::kCPU).to(torch::kFloat);
  if (imgs.dim() == 2) {
    TORCH_CHECK(h > 0 && w > 0 && h * w == imgs.size(1), "tile_images: cannot view [N, ",
                imgs.size(1), "] as ", h, "x", w, " images");
    imgs = imgs.view({imgs.size(0), h, w});  // [N, H, W]
  }
  TORCH_CHECK(imgs.dim() == 3, "tile_images expects [N, H, W] or [N, H*W]");
  TORCH_CHECK(cols >= 1, "tile_images: cols must be >= 1");
  const int64_t n = imgs.size(0), ih = imgs.size(1), iw = imgs.size(2);
  const int64_t rows = std::max<int64_t>(1, (n + cols - 1) / cols);
  auto canvas = torch::full({rows * (ih + pad) + pad, cols * (iw + pad) + pad}, pad_value);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / cols, c = i % cols;
    canvas.narrow(0, pad + r * (ih + pad), ih).narrow(1, pad + c * (iw + pad), iw).copy_(imgs[i]);
  }
  return canvas;
}

void write_png(const std::string& path, const torch::Tensor& image) {
  StageTimer stage_timer(stage::kFigures);
  auto img = image.detach().to(torch::kCPU);
  TORCH_CHECK(img.dim() == 2, "write_png expects a [H, W] image");
  if (img.scalar_type() != torch::kByte) {
    img = (img.to(torch::kFloat).clamp(0.0, 1.0) * 255.0).round().to(torch::kByte);
  }
  img = img.contiguous();
  const int height = static_cast<int>(img.size(0)), width = static_cast<int>(img.size(1));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  errno = 0;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    // libpng's write error comes from fwrite: errno says why (a full disk...).
    const int err = errno;
    png_destroy_write_struct(&png, &info);
    std::fclose(fp);
    std::remove(tmp.c_str());
    throw std::runtime_error("libpng failed writing " + path +
                             (err ? ": " + std::string(std::strerror(err)) : std::string()));
  }
  png_init_io(png, fp);
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const auto* data = img.data_ptr<uint8_t>();
  for (int r = 0; r < height; ++r) {
    png_write_row(png, const_cast<png_bytep>(data + static_cast<size_t>(r) * width));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool flushed = std::fflush(fp) == 0 && !std::ferror(fp) && ::fsync(::fileno(fp)) == 0;
  int err = flushed ? 0 : errno;
  if (std::fclose(fp) != 0 && err == 0) err = errno ? errno : EIO;
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot finish writing " + path + ": " + std::strerror(err));
  }
}

void write_image_grid(const std::string& path, const torch::Tensor& images, int64_t cols, int64_t h,
                      int64_t w) {
  StageTimer stage_timer(stage::kFigures);
  write_png(path, tile_images(images, cols, h, w));
}

}  // namespace vaerepro
