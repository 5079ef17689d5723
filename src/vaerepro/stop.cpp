#include "vaerepro/stop.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace vaerepro {

namespace {
std::atomic<int> g_stop_signal{0};
std::string g_resume_command;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.load() != 0) {  // the second signal: stop now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_stop_signal.store(sig);
  const char msg[] =
      "\nstopping after the current training step and saving a checkpoint "
      "(a second signal stops at once, losing the work since the last checkpoint)\n";
  ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)ignored;
}
}  // namespace

void install_stop_handlers(const std::string& command) {
  g_resume_command = command;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A closed terminal stops the run as SIGTERM does (saved, resumable);
  ::sigaction(SIGHUP, &sa, nullptr);
  // a closed pipe (`| head`) must not kill it: the output is lost, the run
  // goes on and writes its results (writes to the pipe fail with EPIPE).
  ::signal(SIGPIPE, SIG_IGN);
}

const std::string& resume_command() {
  return g_resume_command;
}
int stop_signal() {
  return g_stop_signal.load();
}
void request_stop(int signal) {
  g_stop_signal.store(signal);
}
void clear_stop() {
  g_stop_signal.store(0);
}

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGHUP) return "SIGHUP";
  return "signal " + std::to_string(signal);
}

void throw_if_stopped(const std::string& where) {
  if (const int sig = stop_signal())
    throw Interrupted(sig, where + " stopped by " + signal_name(sig));
}

}  // namespace vaerepro
