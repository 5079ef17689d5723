#pragma once
/// \file compat.h
/// The few LibTorch calls whose spelling or behaviour is tied to a LibTorch
/// version, in one place: the suite builds against Debian's CPU LibTorch
/// 1.13 (CI, `make`) and against python3's CUDA LibTorch 2.x
/// (scripts/gpu-check.sh). Everything else in src/ uses the API common to
/// both.
///
/// What differs, and how it is handled here:
///  - generator state: get_state()/set_state() are members of at::Generator
///    in both; Context::defaultGenerator() returns `Generator&` in 1.13 and
///    `const Generator&` in 2.x, so default_generator() returns a copy (a
///    handle to the same generator) that both accept.
///  - the CPU generator's mt19937 (protocol.cpp's Bernoulli loop):
///    at::check_generator<CPUGeneratorImpl> takes c10::optional<Generator>
///    in 1.13 (c10's own optional) and std::optional<Generator> in current
///    2.x (c10/util/Optional.h is `using std::optional;` there); it is
///    called with a Generator, which converts to either.
///  - optional values: the suite's own interfaces use std::optional only;
///    nothing passes a c10::optional or c10::nullopt to LibTorch.
///  - the version macros: TORCH_VERSION (a string) exists in 2.x; 1.13 has
///    only the three numbers.
///  - waiting for the GPU: torch::cuda::synchronize (in both since 1.13; a
///    no-op path for the CPU).
/// No CUDA header (ATen/cuda, c10/cuda, CUDA graphs) is included anywhere in
/// the suite: CUDA is reached through the device-generic API only, so the
/// same sources compile against a CPU-only LibTorch.

#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace vaerepro::compat {

/// LibTorch's version, e.g. "1.13.1" or "2.11.0".
inline std::string torch_version() {
#ifdef TORCH_VERSION
  return TORCH_VERSION;
#else
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
#endif
}

/// The default generator of `device` (the CPU's, or that CUDA device's; a
/// CUDA device without an index: the current one). A handle: setting its
/// state sets the global generator's.
inline at::Generator default_generator(const torch::Device& device) {
  if (device.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(device);
}

/// A generator's state as a byte tensor (what checkpoints store).
inline at::Tensor generator_state(const at::Generator& gen) {
  return gen.get_state();
}

/// Restores a state that generator_state() returned for a generator of the
/// same kind.
inline void set_generator_state(at::Generator gen, const at::Tensor& state) {
  gen.set_state(state);
}

/// The CPU generator's implementation (its mt19937 engine and mutex).
inline at::CPUGeneratorImpl* cpu_generator_impl(const at::Generator& gen) {
  return at::check_generator<at::CPUGeneratorImpl>(gen);
}

/// Waits until the work queued on `device` has finished (timings); nothing
/// on the CPU.
inline void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

}  // namespace vaerepro::compat
