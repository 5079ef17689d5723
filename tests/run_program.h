#pragma once
// Running one of the suite's programs from a test: the shell runs it with
// stderr folded into stdout, and the test gets the exit code and the text.

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "vaerepro/build_config.h"

namespace vaerepro::test {

struct ProgramRun {
  int code = -1;       ///< exit status; -1 when it did not exit (a signal) or could not start
  std::string output;  ///< stdout and stderr, interleaved as written
};

/// Runs `command` (a shell command line; "2>&1" is appended).
inline ProgramRun run_command(const std::string& command) {
  ProgramRun r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe)) r.output += buf;
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Runs build/bin/`program` with `args` (already quoted as the shell needs).
inline ProgramRun run_program(const std::string& program, const std::string& args) {
  return run_command(std::string(VAEREPRO_BIN_DIR) + "/" + program + " " + args);
}

}  // namespace vaerepro::test
