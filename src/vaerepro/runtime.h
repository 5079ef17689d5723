#pragma once
/// \file runtime.h
/// The machine a run executes on: threads, allocator, BLAS, device. These
/// decide an epoch's speed by up to 18x on a CPU, so every run configures them
/// at start and records them beside its numbers.

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace vaerepro {

/// What was found and set.
struct RuntimeInfo {
  std::string libtorch_version;       ///< e.g. "1.13.1"
  std::string blas_library;           ///< resolved path of the libblas.so.3 in this process
  bool blas_is_openblas = false;      ///< OpenBLAS (Debian) is the libblas in use
  bool blas_is_optimized = false;     ///< OpenBLAS or MKL; false: reference BLAS, ~18x slower
  std::string openblas_corename;      ///< the kernel OpenBLAS picked ("Haswell", "SkylakeX", ...)
  std::string openblas_coretype_env;  ///< OPENBLAS_CORETYPE as set in the environment
  int intra_op_threads = 0;
  int requested_threads = 0;        ///< --threads as given (0: all available cores)
  std::string omp_num_threads_env;  ///< OMP_NUM_THREADS as set in the environment
  int available_cores = 0;
  std::string omp_wait_policy;  ///< libgomp's wait policy as this process loaded it
                                ///< (wait_policy_description)
  bool malloc_tuned = false;    ///< glibc trim/mmap thresholds raised
  bool cuda_available = false;
  int cuda_device_count = 0;
  nlohmann::json to_json() const;
};

/// The environment variable that marks a process restarted by
/// use_passive_wait_policy (its value: "1"). A process that has it never
/// restarts again, whatever the rest of its environment says.
inline constexpr const char* kWaitPolicyRestartMarker = "VAEREPRO_WAIT_POLICY_RESTARTED";

/// What use_passive_wait_policy does, decided from the environment alone.
struct WaitPolicyDecision {
  bool restart = false;  ///< set OMP_WAIT_POLICY=passive and start the program again
  std::string reason;    ///< why, in words ("OMP_WAIT_POLICY=active is set: honoured", ...)
};

/// The decision of use_passive_wait_policy; `lookup` returns an environment
/// variable's value, nullptr when it is unset. Restart when neither
/// OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set (both are honoured as given,
/// even empty) and the process was not restarted already
/// (kWaitPolicyRestartMarker).
WaitPolicyDecision decide_wait_policy(const std::function<const char*(const char*)>& lookup);

/// Makes libgomp's threads sleep at once when they wait (OMP_WAIT_POLICY=
/// passive) unless the environment chose otherwise. libgomp spins at each
/// barrier for about 300,000 iterations (a few ms) before it sleeps; on a
/// machine where anything else runs, the step's threads then burn their time
/// slices waiting on a descheduled partner and a training step collapses
/// 8-14x (README, *Speed*). libgomp reads the variable once, when it loads,
/// so setting it inside the process is too late: when decide_wait_policy
/// says so this sets OMP_WAIT_POLICY=passive and kWaitPolicyRestartMarker=1
/// and replaces the process by a fresh start of the same program
/// (execv of /proc/self/exe, the same argv). Call it first thing in main,
/// before anything is written, read or started: run_program(program, argc,
/// argv, body) calls it, so every chapter does. Returns when no restart is
/// needed; when the restart fails it says so on stderr and returns (the run
/// goes on with libgomp's default).
void use_passive_wait_policy(char** argv);

/// libgomp's wait policy for this process as its environment set it when
/// the process started: "passive (set by the suite at start)",
/// "OMP_WAIT_POLICY=active (environment)", "GOMP_SPINCOUNT=10000
/// (environment)", "libgomp default (spins about 300,000 iterations)".
std::string wait_policy_description();

/// Sets up the process for fast training: raises glibc malloc's trim and mmap
/// thresholds (otherwise each step's buffers are returned to the kernel and
/// re-faulted) and sets torch's intra-op threads to `threads` (0: the cores
/// this process may use). Call first thing in main.
RuntimeInfo configure_runtime(int threads = 0);

/// Whether a BLAS call made on one thread of an OpenMP parallel region runs
/// on that thread alone, so that two threads can each run their own GEMM
/// (mlp_step.h threaded_product): OpenBLAS's OpenMP build (it checks
/// omp_in_parallel) or sequential build, and BLAS libraries other than
/// OpenBLAS; not OpenBLAS's pthreads build, whose calls from two threads
/// each want all its threads and queue on its lock.
bool blas_calls_stay_on_caller();

/// One line per problem that slows the run down or a setting that is not
/// honoured: reference BLAS active while training on the CPU, a forced slower
/// OpenBLAS kernel, an OPENBLAS_CORETYPE OpenBLAS does not know (ignored),
/// fewer threads than cores, more threads than cores, OMP_NUM_THREADS
/// overridden by --threads 0, libgomp left spinning (OMP_WAIT_POLICY=active,
/// or its default in a program that did not call use_passive_wait_policy).
std::vector<std::string> runtime_warnings(const RuntimeInfo& info, const torch::Device& device);

/// "auto" (CUDA when present, else CPU), "cpu" or "cuda". Throws
/// std::invalid_argument for an unknown name, std::runtime_error for "cuda"
/// without a usable GPU.
torch::Device select_device(const std::string& name);

/// The number of cores this process may run on (sched_getaffinity).
int available_cores();

}  // namespace vaerepro
