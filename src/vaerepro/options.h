#pragma once
/// \file options.h
/// A chapter's options declared once: each option is bound to its variable,
/// given its default for every profile, range-checked, and recorded into the
/// run's effective configuration, all in one declaration. The help texts are
/// generated from the same profile table, so they cannot drift from it, and
/// the profile is parsed into an enum before anything uses it.
///
/// \code
///   options.add("samples", o.samples, {3e3, 1.5e6, 1e8}, "training samples per model")
///       .range(1, 1e12).key("samples_per_model");
/// \endcode
/// gives `--samples` with the help "training samples per model (smoke 3e3,
/// quick 1.5e6, full 1e8)", sets o.samples from the profile unless the
/// command line or --config names it, rejects values outside [1, 1e12] as a
/// usage error naming --samples, and records "samples_per_model" in run.json's
/// config (the object the run's hash is taken of).

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

namespace vaerepro {

/// The run's budget class: smoke (seconds, for the tests), quick (minutes on
/// two CPU cores), full (the paper's budget).
enum class Profile { kSmoke, kQuick, kFull };
/// "smoke" | "quick" | "full"; anything else is a UsageError listing them
/// (so `--profile fulll` stops instead of running as something else).
Profile parse_profile(const std::string& name);
std::string to_string(Profile p);

/// One value per profile; a single value applies to all three.
template <class T>
struct PerProfile {
  PerProfile(T all)
      : smoke(all), quick(all), full(std::move(all)) {}  // NOLINT: implicit on purpose
  PerProfile(T s, T q, T f) : smoke(std::move(s)), quick(std::move(q)), full(std::move(f)) {}
  T smoke, quick, full;
  const T& at(Profile p) const {
    return p == Profile::kSmoke ? smoke : p == Profile::kQuick ? quick : full;
  }
  bool uniform() const { return smoke == quick && quick == full; }
};

/// A number as a person writes it in an option: 3000 -> "3e3", 1500000 ->
/// "1.5e6", 0.02 -> "0.02", 500 -> "500".
std::string compact_number(double v);

/// The experiment options of one chapter (the "Experiment" group of --help).
class OptionTable {
 public:
  /// One declared option; the setters refine it and return it for chaining.
  class Entry {
   public:
    virtual ~Entry() = default;
    /// Accepts only values in [lo, hi] (numbers; finite). UsageError otherwise.
    Entry& range(double lo, double hi);
    /// Accepts only one of `choices` (strings).
    Entry& one_of(std::vector<std::string> choices);
    /// A check of its own: throws UsageError (or std::invalid_argument, whose
    /// message is prefixed with the option's name) for a bad value.
    Entry& check(std::function<void()> check);
    /// The key in the recorded configuration ("" = not recorded: a mode such
    /// as --list-points, which does not change what is trained). Default: the
    /// name with '-' as '_'.
    Entry& key(std::string key);

    const std::string& name() const { return name_; }
    const std::string& config_key() const { return key_; }

   protected:
    friend class OptionTable;
    virtual void apply(Profile p) = 0;
    virtual void describe(boost::program_options::options_description& d) const = 0;
    virtual void validate() const = 0;
    virtual nlohmann::json value() const = 0;
    std::string name_, help_, key_;
    double lo_ = 0, hi_ = 0;
    bool ranged_ = false;
    std::vector<std::string> choices_;
    std::vector<std::function<void()>> checks_;
  };

  explicit OptionTable(std::string caption = "Experiment (defaults depend on --profile)");

  /// A numeric or string option bound to `target`, set to `defaults.at(profile)`
  /// unless given; its help ends with the defaults.
  Entry& add(const std::string& name, int64_t& target, PerProfile<int64_t> defaults,
             const std::string& help);
  Entry& add(const std::string& name, double& target, PerProfile<double> defaults,
             const std::string& help);
  Entry& add(const std::string& name, std::string& target, PerProfile<std::string> defaults,
             const std::string& help);
  /// A switch (false unless given).
  Entry& flag(const std::string& name, bool& target, const std::string& help);

  /// A check across options (e.g. "--batch-size cannot exceed --max-train"),
  /// run after every option's own check.
  void check(std::function<void()> check);
  /// Records a derived entry into the configuration (after the declared ones;
  /// the same key overrides), e.g. the optimizer as one object.
  void record(std::function<void(nlohmann::json&)> recorder);

  /// Sets every target to its default for `p` (before the given values are stored).
  void apply(Profile p);
  /// The group for --help.
  boost::program_options::options_description description() const;
  /// Every option's own check, then the cross checks.
  void validate() const;
  /// The recorded configuration: every option with a key, then the derived entries.
  nlohmann::json config() const;

 private:
  template <class T>
  Entry& add_entry(const std::string& name, T& target, PerProfile<T> defaults,
                   const std::string& help);
  std::string caption_;
  std::deque<std::unique_ptr<Entry>> entries_;
  std::vector<std::function<void()>> checks_;
  std::vector<std::function<void(nlohmann::json&)>> recorders_;
};

/// The training options every MLP chapter shares (--activation, --optimizer,
/// --lr, --batch-size and, with `subsets`, --max-train and --max-test: the
/// smoke profile's 1000 / 500 examples, the whole sets otherwise). Each
/// chapter passes its paper's choices.
struct TrainingFlags {
  std::string activation = "tanh";    ///< KW2013 appendix C
  std::string optimizer = "adagrad";  ///< KW2013 section 5
  double lr = 0.02;
  int64_t batch_size = 100;  ///< KW2013 section 5
  int64_t max_train = 0;     ///< 0: the whole training set
  int64_t max_test = 0;      ///< 0: the whole test set
};

/// Declares the training flags bound to `flags` with `flags`' current values
/// as the defaults (and, with `subsets`, the smoke profile's subsets of
/// `smoke_max_train` / `smoke_max_test` examples); records
/// them as "activation", "optimizer" {"name", "lr"}, "batch_size",
/// "max_train", "max_test"; checks the activation and optimizer names and that
/// a minibatch fits the training subset.
void add_training_options(OptionTable& options, TrainingFlags& flags, bool subsets = true,
                          int64_t smoke_max_train = 1000, int64_t smoke_max_test = 500);

/// --weight-decay bound to `target` (default -1): an L2 weight decay in
/// [0, 1], or -1 for KW2013's N(0, I) prior on the weights, which is 1/N for
/// N training examples (weight_decay_for). Returns the entry (e.g. for key("")).
OptionTable::Entry& add_weight_decay_option(OptionTable& options, double& target);
/// The weight decay `option` (add_weight_decay_option) means for `n` training examples.
inline double weight_decay_for(double option, int64_t n) {
  return option < 0 ? 1.0 / n : option;
}

}  // namespace vaerepro
