/// \file wait_policy_probe.cpp
/// A program for runtime_test: prints one line before it calls
/// use_passive_wait_policy (so a restart shows as a second such line, with the
/// same process id), then what the restarted process sees: its arguments, the
/// environment, the threads running at that point, and libgomp's own view of
/// its settings (omp_display_env, on stderr).

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "vaerepro/runtime.h"

namespace {

int threads_now() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "(unset)";
}

}  // namespace

int main(int argc, char** argv) {
  std::cout << "before pid=" << ::getpid() << " threads=" << threads_now() << std::endl;
  vaerepro::use_passive_wait_policy(argv);
  std::cout << "after pid=" << ::getpid() << " argc=" << argc;
  for (int i = 1; i < argc; ++i) std::cout << " [" << argv[i] << "]";
  std::cout << "\nOMP_WAIT_POLICY=" << env("OMP_WAIT_POLICY")
            << "\nmarker=" << env(vaerepro::kWaitPolicyRestartMarker)
            << "\ndescription=" << vaerepro::wait_policy_description() << std::endl;
  // libgomp's settings as it parsed them when it loaded (OpenMP 5.1).
  using Display = void (*)(int);
  if (auto fn = reinterpret_cast<Display>(dlsym(RTLD_DEFAULT, "omp_display_env"))) {
    fn(1);
  } else {
    std::cout << "omp_display_env: not found" << std::endl;
  }
  return 0;
}
