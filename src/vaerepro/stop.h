#pragma once
/// \file stop.h
/// Stopping a run cleanly: SIGINT, SIGTERM and SIGHUP set a flag that every
/// training loop (loop.h) and long evaluation checks; the loop then saves a
/// checkpoint and throws Interrupted, which run_program (cli.h) turns into
/// exit code 128 + the signal and the command that resumes.

#include <stdexcept>
#include <string>

namespace vaerepro {

/// The run was stopped by SIGINT, SIGTERM or SIGHUP after saving its state;
/// nothing was marked complete. Exit code 128 + the signal (130, 143, 129).
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal, const std::string& what) : std::runtime_error(what), signal_(signal) {}
  /// The signal that stopped the run.
  int signal() const { return signal_; }
  /// 128 + signal(), the shell's convention for a process ended by a signal.
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

/// Installs SIGINT, SIGTERM and SIGHUP handlers: the first signal sets a flag
/// that the training loops and long evaluations check (a training loop then
/// saves a checkpoint; Interrupted is thrown); a second one terminates at
/// once. SIGPIPE is ignored: a closed pipe on stdout loses the output, not
/// the run. `resume_command` is what run_program prints as the way to resume.
void install_stop_handlers(const std::string& resume_command);
/// The command given to install_stop_handlers ("" before).
const std::string& resume_command();
/// The signal that asked the run to stop, or 0.
int stop_signal();
/// Sets the flag as the signal would (tests, or a program's own stop).
void request_stop(int signal);
/// Clears the flag (tests; a program that handled the stop).
void clear_stop();
/// Throws Interrupted when a stop was asked; `where` names what stopped.
void throw_if_stopped(const std::string& where);
/// "SIGINT", "SIGTERM", "SIGHUP", or "signal N".
std::string signal_name(int signal);

}  // namespace vaerepro
