#include "vaerepro/cli.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <iostream>

#include "vaerepro/datasets.h"

namespace po = boost::program_options;

namespace vaerepro {

po::options_description generic_options(CommonOptions& o) {
  po::options_description d("Generic");
  d.add_options()
      ("help,h", "print this help and exit")
      ("config", po::value(&o.config), "read options from FILE (key = value lines); the command line wins")
      ("profile", po::value(&o.profile)->default_value(o.profile),
       "smoke (seconds, for tests) | quick (minutes on 2 CPU cores) | full (the paper's budget)")
      ("dataset", po::value(&o.dataset)->default_value(o.dataset),
       "auto (real MNIST if in data/mnist, else Fashion-MNIST) | mnist | fashion-mnist | mnist-10k | synthetic")
      ("protocol", po::value(&o.protocol),
       "binarized (dynamic binarisation, proper nats) | gray-bce (seed 000: gray levels in BCE, not a likelihood)")
      ("device", po::value(&o.device)->default_value(o.device), "auto | cpu | cuda")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed (runs are deterministic on CPU)")
      ("out", po::value(&o.out)->default_value(o.out), "results root folder")
      ("data-dir", po::value(&o.data_dir)->default_value(o.data_dir), "the data/ folder")
      ("threads", po::value(&o.threads)->default_value(o.threads), "CPU threads (0 = all available cores)");
  return d;
}

bool parse_command_line(int argc, char** argv, const std::string& synopsis,
                        const po::options_description& all, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(argc, argv).options(all).run(), vm);
    if (vm.count("help")) {
      std::cout << synopsis << "\n\n" << all << "\n";
      return false;
    }
    if (vm.count("config")) {
      const auto file = vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!in) throw UsageError("--config: cannot read '" + file + "'");
      po::store(po::parse_config_file(in, all), vm);
    }
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  return true;
}

void notify_options(po::variables_map& vm) {
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
}

namespace {
void require_one_of(const std::string& option, const std::string& value,
                    const std::vector<std::string>& allowed) {
  for (const auto& a : allowed) {
    if (value == a) return;
  }
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw UsageError("--" + option + " '" + value + "' is not one of: " + list);
}
}  // namespace

void validate_common(const CommonOptions& o) {
  require_one_of("profile", o.profile, {"smoke", "quick", "full"});
  std::vector<std::string> datasets = dataset_names();
  if (std::find(datasets.begin(), datasets.end(), "auto") == datasets.end()) {
    datasets.insert(datasets.begin(), "auto");
  }
  require_one_of("dataset", o.dataset, datasets);
  if (!o.protocol.empty()) require_one_of("protocol", o.protocol, {"binarized", "gray-bce"});
  require_one_of("device", o.device, {"auto", "cpu", "cuda"});
  if (o.seed < 0 || o.seed > 1000000000) {
    throw UsageError("--seed must be between 0 and 1e9, got " + std::to_string(o.seed));
  }
  if (o.threads < 0 || o.threads > 1024) {
    throw UsageError("--threads must be between 0 (all cores) and 1024, got " +
                     std::to_string(o.threads));
  }
  if (o.out.empty()) throw UsageError("--out must not be empty");
}

std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> values;
  std::string token;
  auto flush = [&]() {
    if (token.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size() || v <= 0 || v > 1000000000LL) {
      throw UsageError("--" + option + ": '" + token +
                       "' is not a positive integer (write e.g. 3,5,10)");
    }
    values.push_back(v);
    token.clear();
  };
  for (char ch : text) {
    if (ch == ',' || ch == '[' || ch == ']' || ch == ' ') {
      flush();
    } else {
      token.push_back(ch);
    }
  }
  flush();
  if (values.empty()) throw UsageError("--" + option + " is empty");
  for (size_t i = 0; i < values.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (values[i] == values[j]) {
        throw UsageError("--" + option + ": " + std::to_string(values[i]) + " is given twice");
      }
    }
  }
  return values;
}

void require_range(const std::string& option, double value, double lo, double hi) {
  if (!std::isfinite(value) || value < lo || value > hi) {
    std::ostringstream os;
    os << "--" << option << " must be between " << lo << " and " << hi << ", got " << value;
    throw UsageError(os.str());
  }
}

int run_program(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << program << ": usage error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace vaerepro
