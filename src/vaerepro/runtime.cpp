#include "vaerepro/runtime.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <sched.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "vaerepro/compat.h"

namespace vaerepro {
namespace {

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("libblas.so") != std::string::npos ||
      name.find("libopenblas") != std::string::npos || name.find("libmkl") != std::string::npos) {
    char resolved[PATH_MAX];
    if (realpath(name.c_str(), resolved)) name = resolved;
    if (out->empty() || name.find("openblas") != std::string::npos ||
        name.find("mkl") != std::string::npos) {
      *out = name;
    }
  }
  return 0;
}

// The wait-policy environment as this process found it at its first call
// of wait_policy_description (use_passive_wait_policy calls it first).
std::string describe_wait_environment() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* marker = std::getenv(kWaitPolicyRestartMarker);
  if (policy != nullptr && marker != nullptr && std::string(policy) == "passive") {
    return "passive (set by the suite at start)";
  }
  std::string d;
  if (policy != nullptr) d = std::string("OMP_WAIT_POLICY=") + policy + " (environment)";
  if (spin != nullptr)
    d += (d.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spin + " (environment)";
  return d.empty() ? "libgomp default (spins about 300,000 iterations before it sleeps)" : d;
}

}  // namespace

WaitPolicyDecision decide_wait_policy(const std::function<const char*(const char*)>& lookup) {
  WaitPolicyDecision d;
  if (const char* m = lookup(kWaitPolicyRestartMarker)) {
    d.reason = std::string(kWaitPolicyRestartMarker) + "=" + m +
               " is set: this process was restarted already";
    return d;
  }
  if (const char* p = lookup("OMP_WAIT_POLICY")) {
    d.reason = std::string("OMP_WAIT_POLICY=") + p + " is set: honoured";
    return d;
  }
  if (const char* c = lookup("GOMP_SPINCOUNT")) {
    d.reason = std::string("GOMP_SPINCOUNT=") + c + " is set: honoured";
    return d;
  }
  d.restart = true;
  d.reason =
      "neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: restarting with OMP_WAIT_POLICY=passive";
  return d;
}

std::string wait_policy_description() {
  static const std::string description = describe_wait_environment();
  return description;
}

void use_passive_wait_policy(char** argv) {
  const WaitPolicyDecision d =
      decide_wait_policy([](const char* name) { return std::getenv(name); });
  if (!d.restart || argv == nullptr || argv[0] == nullptr) {
    (void)wait_policy_description();  // recorded as it is now, before anything can change it
    return;
  }
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::setenv(kWaitPolicyRestartMarker, "1", 1);
  std::cout.flush();
  std::cerr.flush();
  ::execv("/proc/self/exe", argv);
  // Still here: the restart failed. Undo, so that the record says what runs.
  const int err = errno;
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv(kWaitPolicyRestartMarker);
  (void)wait_policy_description();
  std::cerr << argv[0]
            << ": warning: could not restart with OMP_WAIT_POLICY=passive (execv /proc/self/exe: "
            << std::strerror(err)
            << "); libgomp's threads keep spinning while they wait, which is much slower "
            << "when anything else runs on the machine. Export OMP_WAIT_POLICY=passive to avoid "
               "the restart.\n";
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  int n = static_cast<int>(std::thread::hardware_concurrency());
  return n > 0 ? n : 1;
}

RuntimeInfo configure_runtime(int threads) {
  RuntimeInfo info;
  // 32 MiB is glibc's largest dynamic mmap threshold on 64-bit; a 1 GiB trim
  // threshold keeps freed step buffers in the heap instead of unmapping them.
  info.malloc_tuned = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 &&
                      mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) == 1 &&
                      mallopt(M_TOP_PAD, 64 * 1024 * 1024) == 1;
  info.available_cores = available_cores();
  info.omp_wait_policy = wait_policy_description();
  info.requested_threads = threads;
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) info.omp_num_threads_env = omp;
  int n = threads > 0 ? threads : info.available_cores;
  torch::set_num_threads(n);
  info.intra_op_threads = torch::get_num_threads();
  info.libtorch_version = compat::torch_version();

  // Force torch's BLAS to be loaded (a tiny matmul), then ask the dynamic
  // loader which libblas this process actually uses.
  (void)torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
  dl_iterate_phdr(find_blas, &info.blas_library);
  info.blas_is_openblas = info.blas_library.find("openblas") != std::string::npos;
  info.blas_is_optimized =
      info.blas_is_openblas || info.blas_library.find("mkl") != std::string::npos;
  using CoreName = char* (*)();
  if (auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) {
    if (const char* name = fn()) info.openblas_corename = name;
  }
  if (const char* env = std::getenv("OPENBLAS_CORETYPE")) info.openblas_coretype_env = env;
  info.cuda_available = torch::cuda::is_available();
  info.cuda_device_count = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  return info;
}

bool blas_calls_stay_on_caller() {
  static const bool stays = [] {
    (void)torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));  // the BLAS loaded
    using Parallel = int (*)();
    auto fn = reinterpret_cast<Parallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
    return fn == nullptr || fn() != 1;  // 0 sequential, 1 pthreads, 2 OpenMP
  }();
  return stays;
}

std::vector<std::string> runtime_warnings(const RuntimeInfo& info, const torch::Device& device) {
  std::vector<std::string> w;
  if (!info.blas_is_optimized && device.is_cpu()) {
    w.push_back(
        "the active BLAS is not OpenBLAS (" +
        (info.blas_library.empty() ? std::string("none found") : info.blas_library) +
        "): CPU training is about 18x slower. Run `make deps` (installs "
        "libopenblas0-openmp) or `update-alternatives --config libblas.so.3-x86_64-linux-gnu`.");
  }
  auto lower = [](std::string t) {
    for (auto& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return t;
  };
  if (!info.openblas_coretype_env.empty() && !info.openblas_corename.empty() &&
      lower(info.openblas_coretype_env) != lower(info.openblas_corename)) {
    w.push_back("OPENBLAS_CORETYPE=" + info.openblas_coretype_env +
                " is set in the environment but is not a core type OpenBLAS took: it uses the " +
                info.openblas_corename +
                " kernels. Unset it, or set a name OpenBLAS knows (e.g. Haswell, SkylakeX).");
  } else if (!info.openblas_coretype_env.empty()) {
    w.push_back("OPENBLAS_CORETYPE=" + info.openblas_coretype_env +
                " is set in the environment: OpenBLAS uses those kernels (" +
                info.openblas_corename +
                ") instead of the best for this CPU; on AVX-512 machines Haswell kernels run "
                "at about half speed. Unset it to let OpenBLAS choose.");
  }
  if (info.requested_threads > info.available_cores) {
    w.push_back("--threads " + std::to_string(info.requested_threads) + " is more than the " +
                std::to_string(info.available_cores) +
                " cores available: the threads take turns on the cores and each step is slower. "
                "Use --threads 0 "
                "(all cores) or at most " +
                std::to_string(info.available_cores) + ".");
  }
  if (info.requested_threads == 0 && !info.omp_num_threads_env.empty() &&
      info.omp_num_threads_env != std::to_string(info.intra_op_threads)) {
    w.push_back("OMP_NUM_THREADS=" + info.omp_num_threads_env +
                " is set, but --threads 0 (THREADS=0) uses all " +
                std::to_string(info.intra_op_threads) + " available cores; pass --threads " +
                info.omp_num_threads_env + " to honour it.");
  }
  if (info.intra_op_threads < info.available_cores) {
    w.push_back("torch uses " + std::to_string(info.intra_op_threads) + " thread(s) of " +
                std::to_string(info.available_cores) + " available cores.");
  }
  if (info.intra_op_threads >= 2 && info.omp_wait_policy.rfind("libgomp default", 0) == 0) {
    w.push_back(
        "libgomp's threads spin while they wait (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is "
        "set): "
        "with anything else running on the machine the step can be 10x slower. Export "
        "OMP_WAIT_POLICY=passive.");
  }
  if (!info.malloc_tuned) w.push_back("could not raise glibc malloc's trim/mmap thresholds.");
  return w;
}

nlohmann::json RuntimeInfo::to_json() const {
  return {{"libtorch_version", libtorch_version},
          {"blas_library", blas_library},
          {"blas_is_openblas", blas_is_openblas},
          {"blas_is_optimized", blas_is_optimized},
          {"openblas_corename", openblas_corename},
          {"openblas_coretype_env", openblas_coretype_env},
          {"intra_op_threads", intra_op_threads},
          {"requested_threads", requested_threads},
          {"omp_num_threads_env", omp_num_threads_env},
          {"available_cores", available_cores},
          {"omp_wait_policy", omp_wait_policy},
          {"malloc_tuned", malloc_tuned},
          {"cuda_available", cuda_available},
          {"cuda_device_count", cuda_device_count}};
}

torch::Device select_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error(
          "DEVICE=cuda was asked for but this LibTorch sees no CUDA GPU (Debian's libtorch "
          "is CPU-only; build against a CUDA LibTorch via CMAKE_PREFIX_PATH, or use DEVICE=auto)");
    }
    return torch::kCUDA;
  }
  throw std::invalid_argument("unknown device '" + name + "' (expected auto, cpu or cuda)");
}

}  // namespace vaerepro
