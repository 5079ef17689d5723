/// \file idx.cpp
/// Reading and writing idx files (LeCun's MNIST format), raw or gzip, with
/// validation that turns every malformed file into a DataError naming the
/// file, what was expected and what was found.

#include <zlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "vaerepro/datasets.h"

namespace vaerepro {
namespace {

namespace fs = std::filesystem;

/// The only element type accepted: unsigned byte.
constexpr unsigned char kTypeUByte = 0x08;
/// Dimensions accepted by the reader (and produced by the writer).
constexpr int kMaxDims = 4;
/// Read and write in chunks that fit zlib's unsigned lengths comfortably.
constexpr size_t kChunk = size_t{1} << 20;

std::string hex_byte(unsigned char b) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  s += digits[b >> 4];
  s += digits[b & 0xf];
  return s;
}

std::string hex_bytes(const unsigned char* b, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += hex_byte(b[i]);
  }
  return s;
}

/// Names the known idx element types, for error messages.
std::string type_name(unsigned char t) {
  switch (t) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an idx type";
  }
}

/// "60000 x 28 x 28".
std::string dims_text(const std::vector<int64_t>& dims) {
  std::ostringstream os;
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? " x " : "") << dims[i];
  return os.str();
}

/// "[60000, 28, 28]".
std::string shape_text(const torch::Tensor& t) {
  std::ostringstream os;
  os << '[';
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << ']';
  return os.str();
}

/// What the body of an idx file holds, by its rank (for messages only).
std::string body_noun(size_t ndim) {
  if (ndim == 1) return "labels";
  if (ndim == 3) return "pixels";
  return "data";
}

/// A sequential byte source over a raw file or a gzip stream.
class ByteSource {
 public:
  ByteSource(const std::string& path, bool gzip) : path_(path), gzip_(gzip) {
    if (gzip_) {
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) fail_open();
      gzbuffer(gz_, 1 << 16);
    } else {
      file_ = std::fopen(path.c_str(), "rb");
      if (!file_) fail_open();
    }
  }
  ~ByteSource() {
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  /// Reads up to n bytes; returns how many were read (fewer only at the end
  /// of the data). Throws DataError on a read error or corrupt gzip data.
  size_t read(void* buf, size_t n) {
    auto* out = static_cast<unsigned char*>(buf);
    size_t done = 0;
    while (done < n) {
      size_t want = std::min(n - done, kChunk);
      size_t got = 0;
      if (gzip_) {
        int r = gzread(gz_, out + done, static_cast<unsigned>(want));
        if (r < 0) {
          int err = 0;
          const char* msg = gzerror(gz_, &err);
          throw DataError(path_ + ": corrupt gzip data (" + (msg ? msg : "unknown zlib error") +
                          ")");
        }
        got = static_cast<size_t>(r);
        if (got == 0) {
          // A gzip stream cut short reads as end of data; zlib flags it.
          int err = 0;
          const char* msg = gzerror(gz_, &err);
          if (err != Z_OK && err != Z_BUF_ERROR) {
            throw DataError(path_ + ": corrupt gzip data (" + (msg ? msg : "unknown zlib error") +
                            ")");
          }
        }
      } else {
        got = std::fread(out + done, 1, want, file_);
        if (got < want && std::ferror(file_)) {
          throw DataError(path_ + ": read error: " + std::strerror(errno));
        }
      }
      done += got;
      if (got < want) break;
    }
    return done;
  }

  /// True when a gzip stream ended before its end marker and checksum.
  bool cut_short() {
    if (!gzip_) return false;
    int err = Z_OK;
    gzerror(gz_, &err);
    return err == Z_BUF_ERROR;
  }

  /// Counts the bytes left until the end of the data.
  uint64_t count_rest() {
    std::vector<unsigned char> buf(kChunk);
    uint64_t total = 0;
    for (;;) {
      size_t got = read(buf.data(), buf.size());
      total += got;
      if (got < buf.size()) return total;
    }
  }

 private:
  [[noreturn]] void fail_open() {
    throw DataError(path_ + ": cannot open: " + std::strerror(errno));
  }

  std::string path_;
  bool gzip_ = false;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
};

/// True when the file starts with the gzip magic bytes 0x1f 0x8b.
bool starts_with_gzip_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    throw DataError(path + ": cannot open: " + std::strerror(errno));
  }
  unsigned char b[2] = {0, 0};
  size_t got = std::fread(b, 1, 2, f);
  std::fclose(f);
  return got == 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/// The bytes after the last gzip member of the file at `path` that are not
/// another gzip member (gzread skips them silently: "trailing garbage").
/// Decompresses into a scratch buffer; throws DataError on corrupt data.
uint64_t gzip_trailing_garbage(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw DataError(path + ": cannot open: " + std::strerror(errno));
  std::vector<unsigned char> in(kChunk), out(kChunk);
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw DataError(path + ": zlib could not start");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  bool eof = false;
  auto refill = [&]() {
    if (z.avail_in == 0 && !eof) {
      const size_t n = std::fread(in.data(), 1, in.size(), f.get());
      if (n < in.size()) eof = true;
      z.next_in = in.data();
      z.avail_in = static_cast<uInt>(n);
    }
  };
  for (;;) {
    refill();
    if (z.avail_in == 0 && eof) return 0;  // ended inside a member: read_idx reports "cut short"
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    const int r = inflate(&z, Z_NO_FLUSH);
    if (r == Z_STREAM_END) {
      // Another member may follow (gzip concatenates them); anything else is garbage.
      refill();
      if (z.avail_in == 0 && eof) return 0;
      unsigned char two[2] = {z.next_in[0], 0};
      if (z.avail_in >= 2) {
        two[1] = z.next_in[1];
      } else {
        const uInt keep = z.avail_in;
        std::memmove(in.data(), z.next_in, keep);
        const size_t n = eof ? 0 : std::fread(in.data() + keep, 1, in.size() - keep, f.get());
        if (keep + n < in.size()) eof = true;
        z.next_in = in.data();
        z.avail_in = static_cast<uInt>(keep + n);
        if (z.avail_in >= 2) two[1] = z.next_in[1];
      }
      if (z.avail_in >= 2 && two[0] == 0x1f && two[1] == 0x8b) {
        inflateReset(&z);
        continue;
      }
      uint64_t garbage = z.avail_in;
      while (!eof) {
        const size_t n = std::fread(in.data(), 1, in.size(), f.get());
        if (n < in.size()) eof = true;
        garbage += n;
      }
      return garbage;
    }
    if (r != Z_OK && r != Z_BUF_ERROR) {
      throw DataError(path + ": corrupt gzip data (" + (z.msg ? z.msg : "unknown zlib error") +
                      ")");
    }
    if (r == Z_BUF_ERROR && z.avail_in == 0 && eof) return 0;
  }
}

/// True when the file's last 4 bytes (a gzip member's ISIZE, little-endian)
/// are `total` modulo 2^32: a single member ending the file, holding all.
bool gzip_ends_with_size(const std::string& path, uint64_t total) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  unsigned char b[4];
  if (!f || std::fseek(f.get(), -4, SEEK_END) != 0 || std::fread(b, 1, 4, f.get()) != 4)
    return false;
  const uint32_t isize =
      uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
  return isize == static_cast<uint32_t>(total);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Writes everything or throws; used on the temporary file. Messages name
/// the final path (`shown`), which is what the user asked for.
class ByteSink {
 public:
  ByteSink(const std::string& path, const std::string& shown, bool gzip)
      : path_(shown), gzip_(gzip) {
    if (gzip_) {
      gz_ = gzopen(path.c_str(), "wb6");
      if (!gz_) fail("cannot create");
    } else {
      file_ = std::fopen(path.c_str(), "wb");
      if (!file_) fail("cannot create");
    }
  }
  ~ByteSink() {
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
  }
  ByteSink(const ByteSink&) = delete;
  ByteSink& operator=(const ByteSink&) = delete;

  void write(const void* buf, size_t n) {
    const auto* in = static_cast<const unsigned char*>(buf);
    size_t done = 0;
    while (done < n) {
      size_t want = std::min(n - done, kChunk);
      if (gzip_) {
        int r = gzwrite(gz_, in + done, static_cast<unsigned>(want));
        if (r <= 0) fail("write error");
      } else {
        if (std::fwrite(in + done, 1, want, file_) != want) fail("write error");
      }
      done += want;
    }
  }

  /// Flushes and closes; throws when the data did not reach the disk.
  void close() {
    if (gzip_) {
      int r = gzclose(gz_);
      gz_ = nullptr;
      if (r != Z_OK) fail("write error on close");
    } else {
      bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
      ok = (std::fclose(file_) == 0) && ok;
      file_ = nullptr;
      if (!ok) fail("write error on close");
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw DataError(path_ + ": " + what + ": " + std::strerror(errno));
  }

  std::string path_;
  bool gzip_ = false;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
};

}  // namespace

torch::Tensor read_idx(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec && ec.value() == ELOOP) throw DataError(path + ": a symbolic link loop, not an idx file");
  if (!fs::exists(status)) {
    if (fs::is_symlink(fs::symlink_status(path, ec))) {
      throw DataError(path + ": a dangling symbolic link (to " +
                      fs::read_symlink(path, ec).string() + ")");
    }
    throw DataError(path + ": no such file");
  }
  if (!fs::is_regular_file(status)) {
    const char* kind = fs::is_directory(status)        ? "a directory"
                       : fs::is_fifo(status)           ? "a FIFO (named pipe)"
                       : fs::is_character_file(status) ? "a character device"
                       : fs::is_block_file(status)     ? "a block device"
                       : fs::is_socket(status)         ? "a socket"
                                                       : "not a regular file";
    throw DataError(path + ": " + kind +
                    ", not an idx file (an idx file is a regular file, raw or gzip)");
  }
  const bool gzip = starts_with_gzip_magic(path);
  const std::string where = gzip ? " (after gzip decompression)" : "";
  ByteSource src(path, gzip);

  unsigned char magic[4] = {0, 0, 0, 0};
  size_t got = src.read(magic, 4);
  if (got < 4) {
    throw DataError(path + ": truncated: an idx header needs 4 magic bytes, file has " +
                    std::to_string(got) + where);
  }
  if (magic[0] != 0 || magic[1] != 0 || magic[3] < 1 || magic[3] > kMaxDims) {
    throw DataError(path +
                    ": wrong magic number: expected 0x00 0x00 0x08 0x0N "
                    "(unsigned bytes, N = 1..4 dimensions), found " +
                    hex_bytes(magic, 4) + "; not an idx file" +
                    (gzip ? " inside the gzip stream" : ""));
  }
  if (magic[2] != kTypeUByte) {
    throw DataError(path + ": unsupported idx data type " + hex_byte(magic[2]) + " (" +
                    type_name(magic[2]) + "): only unsigned bytes (0x08) are accepted");
  }

  const size_t ndim = magic[3];
  unsigned char dim_bytes[4 * kMaxDims];
  got = src.read(dim_bytes, 4 * ndim);
  if (got < 4 * ndim) {
    throw DataError(path + ": truncated: the idx header declares " + std::to_string(ndim) +
                    " dimensions (" + std::to_string(4 * ndim) + " bytes), file has " +
                    std::to_string(got) + where);
  }
  std::vector<int64_t> dims(ndim);
  uint64_t expected = 1;
  bool overflow = false;
  for (size_t i = 0; i < ndim; ++i) {
    const unsigned char* b = dim_bytes + 4 * i;
    uint64_t d =
        (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | uint64_t{b[3]};
    dims[i] = static_cast<int64_t>(d);
    if (d != 0 && expected > std::numeric_limits<uint64_t>::max() / d) {
      overflow = true;
    }
    expected *= d;
  }
  const uint64_t header_bytes = 4 + 4 * ndim;
  if (overflow) {
    throw DataError(path + ": implausible idx header: dimensions " + dims_text(dims) +
                    " overflow 64 bits");
  }
  // A raw file's size is known: reject a short or long one before allocating.
  if (!gzip) {
    uint64_t file_size = fs::file_size(path, ec);
    if (!ec) {
      uint64_t body = file_size >= header_bytes ? file_size - header_bytes : 0;
      if (body < expected) {
        throw DataError(path + ": truncated: header promises " + std::to_string(expected) +
                        " bytes of " + body_noun(ndim) + " (" + dims_text(dims) + "), file has " +
                        std::to_string(body));
      }
      if (body > expected) {
        throw DataError(path + ": " + std::to_string(body - expected) +
                        " trailing bytes after the " + std::to_string(expected) + " bytes of " +
                        body_noun(ndim) + " the header describes (" + dims_text(dims) + ")");
      }
    }
  }

  // Read the body in chunks, so a corrupt gzip header that promises
  // terabytes fails as "truncated" instead of exhausting memory.
  std::vector<unsigned char> body;
  body.reserve(static_cast<size_t>(std::min<uint64_t>(expected, uint64_t{1} << 28)));
  std::vector<unsigned char> buf(kChunk);
  while (body.size() < expected) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, expected - body.size()));
    size_t n = src.read(buf.data(), want);
    body.insert(body.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < want) break;
  }
  if (body.size() < expected) {
    throw DataError(path + ": truncated: header promises " + std::to_string(expected) +
                    " bytes of " + body_noun(ndim) + " (" + dims_text(dims) + "), file has " +
                    std::to_string(body.size()) + where);
  }
  uint64_t trailing = src.count_rest();
  if (trailing > 0) {
    throw DataError(path + ": " + std::to_string(trailing) + " trailing bytes after the " +
                    std::to_string(expected) + " bytes of " + body_noun(ndim) +
                    " the header describes (" + dims_text(dims) + ")" + where);
  }
  if (src.cut_short()) {
    throw DataError(path +
                    ": truncated: the gzip stream ends before its "
                    "checksum (all " +
                    std::to_string(expected) + " bytes of " + body_noun(ndim) +
                    " present, unverified)");
  }

  if (gzip && !gzip_ends_with_size(path, header_bytes + expected)) {
    // gzread skips bytes after the last member without a word; a raw file
    // with trailing bytes is rejected above, so a gzip one is too. (A file
    // that ends with its member's size field, as nearly every one does, needs
    // no second pass: garbage would have to end in exactly those 4 bytes.)
    if (const uint64_t garbage = gzip_trailing_garbage(path)) {
      throw DataError(path + ": " + std::to_string(garbage) +
                      " bytes of trailing garbage after the gzip stream (the file was damaged or "
                      "appended to; fetch it again)");
    }
  }

  torch::Tensor out = torch::empty(dims, torch::kUInt8);
  if (expected > 0) std::memcpy(out.data_ptr<uint8_t>(), body.data(), body.size());
  return out;
}

void write_idx(const std::string& path, const torch::Tensor& data) {
  if (!data.defined()) {
    throw std::invalid_argument("write_idx(" + path + "): undefined tensor");
  }
  if (data.scalar_type() != torch::kUInt8) {
    throw std::invalid_argument("write_idx(" + path + "): only uint8 tensors can be written, got " +
                                std::string(c10::toString(data.scalar_type())));
  }
  if (data.dim() < 1 || data.dim() > kMaxDims) {
    throw std::invalid_argument("write_idx(" + path + "): tensor has " +
                                std::to_string(data.dim()) +
                                " dimensions, idx files here have 1 to 4");
  }
  unsigned char header[4 + 4 * kMaxDims] = {0, 0, kTypeUByte,
                                            static_cast<unsigned char>(data.dim())};
  for (int64_t i = 0; i < data.dim(); ++i) {
    int64_t d = data.size(i);
    if (d > int64_t{0xffffffff}) {
      throw std::invalid_argument("write_idx(" + path + "): dimension " + std::to_string(i) +
                                  " is " + std::to_string(d) +
                                  ", more than an idx header can hold");
    }
    auto u = static_cast<uint32_t>(d);
    unsigned char* b = header + 4 + 4 * i;
    b[0] = static_cast<unsigned char>(u >> 24);
    b[1] = static_cast<unsigned char>(u >> 16);
    b[2] = static_cast<unsigned char>(u >> 8);
    b[3] = static_cast<unsigned char>(u);
  }
  torch::Tensor flat = data.to(torch::kCPU).contiguous();

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    ByteSink sink(tmp, path, ends_with(path, ".gz"));
    sink.write(header, 4 + 4 * static_cast<size_t>(data.dim()));
    if (flat.numel() > 0) {
      sink.write(flat.data_ptr<uint8_t>(), static_cast<size_t>(flat.numel()));
    }
    sink.close();
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      throw DataError(path + ": cannot move " + tmp + " into place: " + ec.message());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

ImageSet read_idx_pair(const std::string& images_path, const std::string& labels_path, int64_t rows,
                       int64_t cols, int64_t num_classes) {
  const std::string pair = " (images " + images_path + ", labels " + labels_path + ")";
  torch::Tensor images = read_idx(images_path);
  torch::Tensor labels = read_idx(labels_path);
  if (images.dim() != 3) {
    throw DataError(images_path + ": images must be 3-d [N, " + std::to_string(rows) + ", " +
                    std::to_string(cols) + "], found " + std::to_string(images.dim()) + "-d " +
                    shape_text(images) + pair);
  }
  if (images.size(1) != rows || images.size(2) != cols) {
    throw DataError(images_path + ": images must be " + std::to_string(rows) + "x" +
                    std::to_string(cols) + ", found " + std::to_string(images.size(1)) + "x" +
                    std::to_string(images.size(2)) + " " + shape_text(images) + pair);
  }
  if (labels.dim() != 1) {
    throw DataError(labels_path + ": labels must be 1-d [N], found " +
                    std::to_string(labels.dim()) + "-d " + shape_text(labels) + pair);
  }
  if (images.size(0) != labels.size(0)) {
    throw DataError("image/label count mismatch: " + images_path + " has " +
                    std::to_string(images.size(0)) + " images, " + labels_path + " has " +
                    std::to_string(labels.size(0)) + " labels");
  }
  if (labels.numel() > 0) {
    int64_t max_label = labels.max().item<int64_t>();
    if (max_label >= num_classes) {
      int64_t bad = (labels >= num_classes).sum().item<int64_t>();
      int64_t first = (labels >= num_classes).nonzero()[0][0].item<int64_t>();
      throw DataError(labels_path + ": label out of range: " + std::to_string(bad) +
                      " labels are >= " + std::to_string(num_classes) + " classes (largest " +
                      std::to_string(max_label) + ", first at index " + std::to_string(first) +
                      ")" + pair);
    }
  }
  return ImageSet{images, labels.to(torch::kInt64)};
}

}  // namespace vaerepro
