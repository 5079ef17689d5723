#include "vaerepro/time_ledger.h"

namespace vaerepro {

TimeLedger& TimeLedger::process() {
  static TimeLedger ledger;
  return ledger;
}

TimeLedger::Entry& TimeLedger::entry(const std::string& stage) {
  for (auto& e : entries_) {
    if (e.stage == stage) return e;
  }
  entries_.push_back({stage, 0.0});
  return entries_.back();
}

void TimeLedger::charge(Clock::time_point now) {
  if (!stack_.empty()) {
    entries_[stack_.back()].seconds += std::chrono::duration<double>(now - since_).count();
  }
  since_ = now;
}

void TimeLedger::enter(const std::string& stage, Clock::time_point now) {
  charge(now);
  Entry& e = entry(stage);
  stack_.push_back(static_cast<size_t>(&e - entries_.data()));
}

void TimeLedger::leave(Clock::time_point now) {
  if (stack_.empty()) return;
  charge(now);
  stack_.pop_back();
}

double TimeLedger::seconds(const std::string& stage, Clock::time_point now) const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].stage != stage) continue;
    double s = entries_[i].seconds;
    if (!stack_.empty() && stack_.back() == i) {
      s += std::chrono::duration<double>(now - since_).count();
    }
    return s;
  }
  return 0.0;
}

nlohmann::json TimeLedger::to_json(Clock::time_point now) const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& e : entries_) out[e.stage] = seconds(e.stage, now);
  return out;
}

void TimeLedger::reset() {
  entries_.clear();
  stack_.clear();
  has_owner_ = false;
}

bool TimeLedger::claim() {
  const auto me = std::this_thread::get_id();
  if (!has_owner_) {
    owner_ = me;
    has_owner_ = true;
  }
  return owner_ == me;
}

StageTimer::StageTimer(const std::string& stage) : active_(false) {
  TimeLedger& ledger = TimeLedger::process();
  active_ = ledger.claim();
  if (active_) ledger.enter(stage);
}

StageTimer::~StageTimer() {
  if (active_) TimeLedger::process().leave();
}

}  // namespace vaerepro
