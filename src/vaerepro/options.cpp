#include "vaerepro/options.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "vaerepro/cli.h"

namespace po = boost::program_options;

namespace vaerepro {

Profile parse_profile(const std::string& name) {
  if (name == "smoke") return Profile::kSmoke;
  if (name == "quick") return Profile::kQuick;
  if (name == "full") return Profile::kFull;
  throw UsageError("--profile '" + name + "' is not one of: smoke, quick, full");
}

std::string to_string(Profile p) {
  switch (p) {
    case Profile::kSmoke:
      return "smoke";
    case Profile::kQuick:
      return "quick";
    case Profile::kFull:
      return "full";
  }
  return "?";
}

std::string compact_number(double v) {
  if (!std::isfinite(v)) return v > 0 ? "inf" : v < 0 ? "-inf" : "nan";
  const double a = std::fabs(v);
  if (a >= 1e4 && a < 1e16 && v == std::floor(v)) {
    // Mantissa with the fewest digits that gives back the number.
    int exponent = static_cast<int>(std::floor(std::log10(a)));
    for (int digits = 0; digits <= 15; ++digits) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.*f", digits, v / std::pow(10.0, exponent));
      if (std::llround(std::stod(buf) * std::pow(10.0, exponent)) == std::llround(v)) {
        return std::string(buf) + "e" + std::to_string(exponent);
      }
    }
  }
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

namespace {

std::string text_of(int64_t v) {
  return compact_number(static_cast<double>(v));
}
std::string text_of(double v) {
  return compact_number(v);
}
std::string text_of(const std::string& v) {
  return v.empty() ? "none" : v;
}
std::string text_of(bool v) {
  return v ? "on" : "off";
}

std::string config_key_of(const std::string& name) {
  std::string k = name;
  for (auto& c : k) {
    if (c == '-') c = '_';
  }
  return k;
}

template <class T>
class TypedEntry : public OptionTable::Entry {
 public:
  TypedEntry(const std::string& name, T& target, PerProfile<T> defaults, const std::string& help)
      : target_(target), defaults_(std::move(defaults)) {
    name_ = name;
    help_ = help;
    key_ = config_key_of(name);
  }

 protected:
  void apply(Profile p) override { target_ = defaults_.at(p); }

  void describe(po::options_description& d) const override {
    std::string text = help_;
    if (defaults_.uniform()) {
      text += " (" + text_of(defaults_.quick) + ")";
    } else {
      text += " (smoke " + text_of(defaults_.smoke) + ", quick " + text_of(defaults_.quick) +
              ", full " + text_of(defaults_.full) + ")";
    }
    if constexpr (std::is_same_v<T, bool>) {
      d.add_options()(name_.c_str(), po::bool_switch(&target_), help_.c_str());
    } else {
      d.add_options()(name_.c_str(), po::value(&target_), text.c_str());
    }
  }

  void validate() const override {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      if (ranged_) require_range(name_, static_cast<double>(target_), lo_, hi_);
    }
    if constexpr (std::is_same_v<T, std::string>) {
      if (!choices_.empty()) {
        bool known = false;
        std::string list;
        for (const auto& c : choices_) {
          known = known || c == target_;
          list += (list.empty() ? "" : ", ") + c;
        }
        if (!known) throw UsageError("--" + name_ + " '" + target_ + "' is not one of: " + list);
      }
    }
    for (const auto& c : checks_) {
      try {
        c();
      } catch (const std::invalid_argument& e) {
        throw UsageError("--" + name_ + ": " + e.what());
      }
    }
  }

  nlohmann::json value() const override { return target_; }

 private:
  T& target_;
  PerProfile<T> defaults_;
};

}  // namespace

OptionTable::Entry& OptionTable::Entry::range(double lo, double hi) {
  lo_ = lo;
  hi_ = hi;
  ranged_ = true;
  return *this;
}

OptionTable::Entry& OptionTable::Entry::one_of(std::vector<std::string> choices) {
  choices_ = std::move(choices);
  return *this;
}

OptionTable::Entry& OptionTable::Entry::check(std::function<void()> check) {
  checks_.push_back(std::move(check));
  return *this;
}

OptionTable::Entry& OptionTable::Entry::key(std::string key) {
  key_ = std::move(key);
  return *this;
}

OptionTable::OptionTable(std::string caption) : caption_(std::move(caption)) {}

template <class T>
OptionTable::Entry& OptionTable::add_entry(const std::string& name, T& target,
                                           PerProfile<T> defaults, const std::string& help) {
  for (const auto& e : entries_) {
    if (e->name() == name) throw std::logic_error("option --" + name + " is declared twice");
  }
  entries_.push_back(std::make_unique<TypedEntry<T>>(name, target, std::move(defaults), help));
  return *entries_.back();
}

OptionTable::Entry& OptionTable::add(const std::string& name, int64_t& target,
                                     PerProfile<int64_t> defaults, const std::string& help) {
  return add_entry(name, target, std::move(defaults), help);
}
OptionTable::Entry& OptionTable::add(const std::string& name, double& target,
                                     PerProfile<double> defaults, const std::string& help) {
  return add_entry(name, target, std::move(defaults), help);
}
OptionTable::Entry& OptionTable::add(const std::string& name, std::string& target,
                                     PerProfile<std::string> defaults, const std::string& help) {
  return add_entry(name, target, std::move(defaults), help);
}
OptionTable::Entry& OptionTable::flag(const std::string& name, bool& target,
                                      const std::string& help) {
  return add_entry(name, target, PerProfile<bool>(false), help);
}

void OptionTable::check(std::function<void()> check) {
  checks_.push_back(std::move(check));
}

void OptionTable::record(std::function<void(nlohmann::json&)> recorder) {
  recorders_.push_back(std::move(recorder));
}

void OptionTable::apply(Profile p) {
  for (auto& e : entries_) e->apply(p);
}

po::options_description OptionTable::description() const {
  po::options_description d(caption_);
  for (const auto& e : entries_) e->describe(d);
  return d;
}

void OptionTable::validate() const {
  for (const auto& e : entries_) e->validate();
  for (const auto& c : checks_) c();
}

nlohmann::json OptionTable::config() const {
  nlohmann::json c = nlohmann::json::object();
  for (const auto& e : entries_) {
    if (!e->config_key().empty()) c[e->config_key()] = e->value();
  }
  for (const auto& r : recorders_) r(c);
  return c;
}

void add_training_options(OptionTable& options, TrainingFlags& f, bool subsets,
                          int64_t smoke_max_train, int64_t smoke_max_test) {
  options.add("activation", f.activation, f.activation, "hidden units' nonlinearity")
      .one_of({"tanh", "relu", "softplus", "sigmoid"});
  options.add("optimizer", f.optimizer, f.optimizer, "the optimizer")
      .one_of({"adagrad", "adam", "sgd"})
      .key("");
  options.add("lr", f.lr, f.lr, "learning rate").range(1e-12, 10).key("");
  options.add("batch-size", f.batch_size, f.batch_size, "minibatch size").range(1, 1e6);
  if (subsets) {
    options
        .add("max-train", f.max_train, {smoke_max_train, int64_t{0}, int64_t{0}},
             "use only the first N training examples (0 = all)")
        .range(0, 1e9);
    options
        .add("max-test", f.max_test, {smoke_max_test, int64_t{0}, int64_t{0}},
             "use only the first N test examples (0 = all)")
        .range(0, 1e9);
  }
  options.check([&f] {
    if (f.max_train > 0 && f.batch_size > f.max_train) {
      throw UsageError("--batch-size " + std::to_string(f.batch_size) +
                       " contradicts --max-train " + std::to_string(f.max_train) +
                       ": a minibatch cannot be larger than the training set " +
                       "(lower --batch-size or raise --max-train)");
    }
  });
  options.record([&f](nlohmann::json& c) {
    c["optimizer"] = {{"name", f.optimizer}, {"lr", f.lr}};
  });
}

OptionTable::Entry& add_weight_decay_option(OptionTable& options, double& target) {
  return options
      .add("weight-decay", target, -1.0, "L2 weight decay; -1 = KW2013's N(0,I) weight prior, 1/N")
      .check([&target] {
        if (target != -1) require_range("weight-decay", target, 0, 1);
      });
}

}  // namespace vaerepro
