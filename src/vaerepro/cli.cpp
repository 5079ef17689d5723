#include "vaerepro/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>

#include "vaerepro/build_config.h"
#include "vaerepro/datasets.h"
#include "vaerepro/runtime.h"

namespace po = boost::program_options;

namespace vaerepro {

std::string shell_command(int argc, char** argv, const std::vector<std::string>& drop) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (std::find(drop.begin(), drop.end(), a) != drop.end()) continue;
    // A dropped option that takes a value ("--force-since=" in `drop`) goes with it.
    const auto valued = std::find_if(drop.begin(), drop.end(), [&](const std::string& d) {
      return !d.empty() && d.back() == '=' &&
             (a == d.substr(0, d.size() - 1) || a.rfind(d, 0) == 0);
    });
    if (valued != drop.end()) {
      if (a.find('=') == std::string::npos) ++i;  // its value is the next argument
      continue;
    }
    const bool plain =
        !a.empty() && a.find_first_not_of(
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                          "-_./=,:+@%") == std::string::npos;
    std::string q = a;
    if (!plain) {
      q = "'";
      for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      q += "'";
    }
    out += (out.empty() ? "" : " ") + q;
  }
  return out;
}

std::string locate_suite_folder(const std::string& value, const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (value != name || fs::exists(value, ec)) return value;
  const fs::path checkout(VAEREPRO_SOURCE_DIR);
  // The checkout is recognised by its own files, not merely by a folder of that name.
  if (!fs::exists(checkout / "chapters" / "README.md", ec)) return value;
  return (checkout / name).string();
}

po::options_description generic_options(CommonOptions& o) {
  po::options_description d("Generic");
  d.add_options()("help,h", "print this help and exit")(
      "config", po::value(&o.config),
      "read options from FILE (key = value lines); the command line wins")(
      "profile", po::value(&o.profile)->default_value(o.profile),
      "smoke (seconds, for tests) | quick (minutes on 2 CPU cores) | full (the paper's budget)")(
      "dataset", po::value(&o.dataset)->default_value(o.dataset),
      "auto (real MNIST if in data/mnist, else Fashion-MNIST) | mnist | fashion-mnist | mnist-10k "
      "| synthetic")(
      "protocol", po::value(&o.protocol),
      "binarized (dynamic binarisation, proper nats) | gray-bce (seed 000: gray levels in BCE, not "
      "a likelihood) | threshold (seed 002: pixels above zero set to one, once)")(
      "device", po::value(&o.device)->default_value(o.device), "auto | cpu | cuda")(
      "seed", po::value(&o.seed)->default_value(o.seed),
      "random seed (runs are deterministic on CPU)")(
      "seeds", po::value<std::string>(),
      "several seeds, e.g. 1,2,3: one complete run each, the first into --out, the others into "
      "OUT/seeds/SEED/ (the report shows their mean and spread)")(
      "out", po::value(&o.out)->default_value(o.out)->notifier([&o](const std::string&) {
        o.out = locate_suite_folder(o.out, "results");
      }),
      "results root folder (default: ./results, else the checkout's results/)")(
      "data-dir",
      po::value(&o.data_dir)->default_value(o.data_dir)->notifier([&o](const std::string&) {
        o.data_dir = locate_suite_folder(o.data_dir, "data");
      }),
      "the data/ folder (default: ./data, else the checkout's data/)")(
      "threads", po::value(&o.threads)->default_value(o.threads),
      "CPU threads (0 = all available cores)")(
      "force", po::bool_switch(&o.force),
      "train again from scratch even when OUT/SLUG is complete for this configuration (ignores its "
      "checkpoints and cached points)")("force-since", po::value(&o.force_since),
                                        "with --force: keep what finished after this moment "
                                        "(seconds since the epoch; default: the program's start)")(
      "checkpoint-every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every),
      "seconds between checkpoints of the model in training (0 = only when a model ends and on "
      "SIGINT/SIGTERM)");
  return d;
}

bool parse_command_line(int argc, char** argv, const std::string& synopsis,
                        const po::options_description& all, po::variables_map& vm) {
  try {
    const auto parsed = po::command_line_parser(argc, argv).options(all).run();
    // A word that is no option (`chapter-01 smoke`) would be dropped without a
    // word and the run go on with the defaults.
    for (const auto& opt : parsed.options) {
      if (opt.position_key >= 0 || opt.string_key.empty()) {
        const std::string word =
            opt.original_tokens.empty() ? std::string("?") : opt.original_tokens.front();
        throw UsageError("unexpected argument '" + word +
                         "': every setting is an option (e.g. --profile " + word + "); see --help");
      }
    }
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << synopsis << "\n\n" << all << "\n";
      return false;
    }
    if (vm.count("config")) {
      const auto file = vm["config"].as<std::string>();
      std::error_code ec;
      if (std::filesystem::is_directory(file, ec)) {
        throw UsageError("--config: '" + file + "' is a folder; name a file of key = value lines");
      }
      std::ifstream in(file);
      if (!in) throw UsageError("--config: cannot read '" + file + "': " + std::strerror(errno));
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
  if (!o.protocol.empty())
    require_one_of("protocol", o.protocol, {"binarized", "gray-bce", "threshold"});
  require_one_of("device", o.device, {"auto", "cpu", "cuda"});
  if (o.seed < 0 || o.seed > 1000000000) {
    throw UsageError("--seed must be between 0 and 1e9, got " + std::to_string(o.seed));
  }
  if (o.threads < 0 || o.threads > 1024) {
    throw UsageError("--threads must be between 0 (all cores) and 1024, got " +
                     std::to_string(o.threads));
  }
  if (o.out.empty()) throw UsageError("--out must not be empty");
  require_range("checkpoint-every", o.checkpoint_every, 0, 1e7);
}

std::vector<double> parse_positive_reals(const std::string& text, const std::string& option,
                                         double max) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string tok;
  // "1,,5" and "1," are mistakes (an entry left out), not lists.
  if (!text.empty() && (text.back() == ',' || text.front() == ',')) {
    throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 0.5,1,2)");
  }
  while (std::getline(ss, tok, ',')) {
    if (tok.empty())
      throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 0.5,1,2)");
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || !std::isfinite(v) || v <= 0 || v > max) {
      std::ostringstream range;
      range << "(0, " << max << "]";
      throw UsageError("--" + option + ": '" + tok + "' is not a number in " + range.str());
    }
    for (double w : out) {
      if (w == v) throw UsageError("--" + option + ": " + tok + " is given twice");
    }
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--" + option + " is empty");
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> parse_name_list(const std::string& text, const std::string& option,
                                         const std::vector<std::string>& choices,
                                         bool allow_empty) {
  auto join = [&](const char* sep) {
    std::string all;
    for (const auto& c : choices) all += (all.empty() ? "" : sep) + c;
    return all;
  };
  const std::string example = choices.empty() ? "" : " (e.g. --" + option + " " + join(",") + ")";
  auto trim = [](std::string t) {
    const auto first = t.find_first_not_of(' ');
    if (first == std::string::npos) return std::string();
    return t.substr(first, t.find_last_not_of(' ') - first + 1);
  };
  std::vector<std::string> out;
  if (trim(text).empty()) {
    if (allow_empty) return out;
    throw UsageError("--" + option + " is empty" +
                     (choices.empty() ? std::string() : ": give one or more of " + join(", ")));
  }
  // Every comma separates two entries: "a,,b" and "a," have an empty one.
  const std::string holes = "--" + option + ": '" + text + "' has an empty entry" + example;
  if (text.back() == ',') throw UsageError(holes);
  std::stringstream ss(text);
  std::string token;
  while (std::getline(ss, token, ',')) {
    const std::string name = trim(token);
    if (name.empty()) throw UsageError(holes);
    if (!choices.empty() && std::find(choices.begin(), choices.end(), name) == choices.end()) {
      throw UsageError("--" + option + ": '" + name + "' is not one of: " + join(", ") + example);
    }
    if (std::find(out.begin(), out.end(), name) != out.end()) {
      throw UsageError("--" + option + ": '" + name + "' is given twice");
    }
    out.push_back(name);
  }
  return out;
}

std::vector<int64_t> parse_positive_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> values;
  std::string token;
  // Brackets only around the whole list, commas only between entries: "3,,5",
  // "3," and "[3" are mistakes, not lists.
  std::string body = text;
  while (!body.empty() && body.front() == ' ') body.erase(body.begin());
  while (!body.empty() && body.back() == ' ') body.pop_back();
  const bool open = !body.empty() && body.front() == '[',
             close = !body.empty() && body.back() == ']';
  if (open != close || (open && body.size() < 2)) {
    throw UsageError("--" + option + ": '" + text +
                     "' has an unbalanced bracket (write e.g. 3,5,10 or [3,5,10])");
  }
  if (open) body = body.substr(1, body.size() - 2);
  if (body.find_first_of("[]") != std::string::npos) {
    throw UsageError("--" + option + ": '" + text +
                     "': brackets only around the whole list (write e.g. 3,5,10)");
  }
  {
    std::string entry;
    std::stringstream ss(body);
    size_t entries = 0, commas = static_cast<size_t>(std::count(body.begin(), body.end(), ','));
    while (std::getline(ss, entry, ',')) {
      if (entry.find_first_not_of(' ') == std::string::npos) {
        throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 3,5,10)");
      }
      ++entries;
    }
    if (commas > 0 && entries != commas + 1) {
      throw UsageError("--" + option + ": '" + text + "' has an empty entry (write e.g. 3,5,10)");
    }
  }
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

namespace {
// Messages from the library often begin with a run's label, which begins with
// the program's name ("chapter-01 Nz=3: ..."); the line already starts with
// it, so it is said once.
std::string without_program(const std::string& message, const std::string& program) {
  if (message.size() > program.size() + 1 && message.compare(0, program.size(), program) == 0 &&
      (message[program.size()] == ' ' || message[program.size()] == ':')) {
    size_t i = program.size();
    while (i < message.size() && (message[i] == ' ' || message[i] == ':')) ++i;
    return message.substr(i);
  }
  return message;
}
}  // namespace

int run_program(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << program << ": usage error: " << without_program(e.what(), program) << "\n";
    return 2;
  } catch (const Interrupted& e) {
    std::cerr << program << ": " << without_program(e.what(), program)
              << ". The run is not complete and nothing was marked complete.\n";
    if (!resume_command().empty())
      std::cerr << program << ": to resume, run: " << resume_command() << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << without_program(e.what(), program) << "\n";
    return 1;
  }
}

std::string seed_out(const std::string& out, int64_t seed, bool first) {
  if (first) return out;
  std::string root = out;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root + "/seeds/" + std::to_string(seed);
}

int run_program(const std::string& program, int argc, char** argv,
                const std::function<int(int, char**)>& body) {
  // Before anything else (libgomp reads its wait policy when it loads): may
  // restart the program with OMP_WAIT_POLICY=passive (runtime.h).
  use_passive_wait_policy(argv);
  // Find --seeds (and --out) before the chapter parses its command line.
  std::vector<std::string> rest;
  std::string seeds_text, out = CommonOptions{}.out;
  bool have_seeds = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value_of = [&](const std::string& name, std::string& into) {
      if (a == name) {
        if (i + 1 >= argc) return false;
        into = argv[++i];
        return true;
      }
      if (a.rfind(name + "=", 0) == 0) {
        into = a.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    std::string ignored;
    if (value_of("--seeds", seeds_text)) {
      have_seeds = true;
    } else if (value_of("--out", out)) {
      continue;
    } else if (value_of("--seed", ignored)) {
      continue;
    } else {
      rest.push_back(a);
    }
  }
  if (!have_seeds) return run_program(program, [&] { return body(argc, argv); });
  // Every seed's folder under the same root, wherever the program runs from.
  out = locate_suite_folder(out, "results");
  std::vector<int64_t> seeds;
  try {
    seeds = parse_positive_list(seeds_text, "seeds");
  } catch (const UsageError& e) {
    std::cerr << program << ": usage error: " << without_program(e.what(), program) << "\n";
    return 2;
  }
  int result = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::vector<std::string> args = {argv[0]};
    args.insert(args.end(), rest.begin(), rest.end());
    const std::string dir = seed_out(out, seeds[i], i == 0);
    args.insert(args.end(), {"--seed", std::to_string(seeds[i]), "--out", dir});
    std::vector<char*> cargv;
    for (auto& s : args) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    std::cout << program << ": seed " << seeds[i] << " (" << i + 1 << " of " << seeds.size()
              << "), results in " << dir << "\n";
    const int code =
        run_program(program, [&] { return body(static_cast<int>(args.size()), cargv.data()); });
    if (code == 130 || code == 143) return code;
    if (code != 0 && result == 0) result = code;
  }
  return result;
}

}  // namespace vaerepro
