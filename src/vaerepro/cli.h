#pragma once
/// \file cli.h
/// Command lines shared by every chapter (Boost.Program_options): the generic
/// options, profile-dependent defaults, validation, and exit codes (2 for a
/// usage error, 1 for a runtime failure).

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

// The stop flag moved to stop.h; included here so that code which found it
// in cli.h still compiles.
#include "vaerepro/stop.h"

namespace vaerepro {

/// A mistake on the command line or in a config file: exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// argv as one shell command line (arguments quoted where needed), leaving
/// out the switches named in `drop` (e.g. "--force"; "--force-since=" drops
/// that option and its value).
std::string shell_command(int argc, char** argv, const std::vector<std::string>& drop = {});

/// Options every chapter takes ("Generic").
struct CommonOptions {
  std::string profile = "quick";  ///< smoke | quick | full
  std::string dataset = "auto";   ///< auto | mnist | fashion-mnist | mnist-10k | synthetic
  std::string protocol;         ///< binarized | gray-bce | threshold; empty = the chapter's default
  std::string device = "auto";  ///< auto | cpu | cuda
  int64_t seed = 1;
  std::string out = "results";  ///< results root
  std::string data_dir = "data";
  int threads = 0;     ///< 0 = the cores available
  std::string config;  ///< optional config file (key = value)
  bool force = false;  ///< train again even when a complete result of this configuration exists
  /// With --force: what was finished before this moment (seconds since the
  /// epoch; 0 = the program's start) trains again; what finished after it (a
  /// point job of the same `make` run) is kept.
  double force_since = 0;
  double checkpoint_every = 60;  ///< seconds between checkpoints of the model in training
};

/// Where the suite's own folder `name` ("data", "results") is when a run
/// leaves --data-dir / --out at that default: `value` itself when it is not
/// the default or exists relative to the working directory; otherwise the
/// checkout's folder (VAEREPRO_SOURCE_DIR/name, build_config.h) when the
/// checkout is there, so a program run from elsewhere uses the suite's data
/// and results, not an empty folder of the working directory.
std::string locate_suite_folder(const std::string& value, const std::string& name);

/// The "Generic" option group bound to `opts`. --out and --data-dir left at
/// their defaults are resolved by locate_suite_folder when notified.
boost::program_options::options_description generic_options(CommonOptions& opts);

/// Parses argv (command line first, so it wins over --config FILE) into `vm`
/// without notifying. Returns false when --help was asked (the help has been
/// printed). Throws UsageError for unknown options, bad values, a missing
/// config file.
bool parse_command_line(int argc, char** argv, const std::string& synopsis,
                        const boost::program_options::options_description& all,
                        boost::program_options::variables_map& vm);

/// Stores parsed values into their bound variables; converts Boost's errors
/// into UsageError.
void notify_options(boost::program_options::variables_map& vm);

/// Checks the generic options (known profile, dataset, protocol, device;
/// seed and threads non-negative). Throws UsageError naming the option.
void validate_common(const CommonOptions& opts);

/// "3,5,10" or "[3, 5, 10]" -> {3, 5, 10}; every entry a positive integer, none twice.
/// Throws UsageError naming `option`.
std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& option);

/// "0.5,1,2" -> {0.5, 1, 2}, sorted; every entry a number in (0, max], none
/// twice, none left out ("1,,5", "1,"). Throws UsageError naming `option`.
std::vector<double> parse_positive_reals(const std::string& text, const std::string& option,
                                         double max);

/// "seed,paper" -> {"seed", "paper"}: names separated by commas (spaces
/// around each trimmed), each one of `choices` (any name when `choices` is
/// empty), none twice, none left out ("a,,b", "a,"). An empty `text` is an
/// empty list when `allow_empty`, a usage error otherwise. Throws UsageError
/// naming `option` (without its dashes: "settings").
std::vector<std::string> parse_name_list(const std::string& text, const std::string& option,
                                         const std::vector<std::string>& choices = {},
                                         bool allow_empty = false);

/// The entries of `known` (anything with a string member `name`) that `text`
/// names, in the order `text` names them: parse_name_list with the known
/// names as the choices.
template <class T>
std::vector<T> select_by_name(const std::string& text, const std::string& option,
                              const std::vector<T>& known, bool allow_empty = false) {
  std::vector<std::string> names;
  for (const auto& k : known) names.push_back(k.name);
  std::vector<T> out;
  for (const auto& n : parse_name_list(text, option, names, allow_empty)) {
    for (const auto& k : known) {
      if (k.name == n) out.push_back(k);
    }
  }
  return out;
}

/// Throws UsageError unless lo <= value <= hi and value is finite.
void require_range(const std::string& option, double value, double lo, double hi);

/// Runs a chapter's body, turning exceptions into a one-line message on
/// stderr ("<program>: error: ...") and an exit code: 2 for UsageError,
/// 128 + signal for Interrupted (with the command that resumes), 1 for
/// anything else.
int run_program(const std::string& program, const std::function<int()>& body);

/// The output root of seed `seed` in a run of several seeds (`--seeds`):
/// the first seed's results land in `out` as a single run's would, every
/// other seed's in `out`/seeds/SEED/, where the report finds them and shows
/// each fresh number as a mean with its spread over the seeds.
std::string seed_out(const std::string& out, int64_t seed, bool first);

/// run_program for a chapter's command line, with `--seeds 1,2,3`: runs
/// `body` once per seed (each a complete, resumable run of its own with
/// `--seed S --out seed_out(...)`), one after another, and returns the first
/// non-zero exit code (at once for a stop by SIGINT/SIGTERM). Without
/// `--seeds` it is run_program(program, body(argc, argv)). `--out` is read
/// from the command line (not from --config) to place the seeds' results.
/// First of all it calls use_passive_wait_policy(argv) (runtime.h), which
/// restarts the program with OMP_WAIT_POLICY=passive when the environment
/// sets no OpenMP wait policy: call it first thing in main.
int run_program(const std::string& program, int argc, char** argv,
                const std::function<int(int, char**)>& body);

}  // namespace vaerepro
