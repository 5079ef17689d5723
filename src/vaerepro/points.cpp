#include "vaerepro/points.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "vaerepro/results.h"

namespace fs = std::filesystem;

namespace vaerepro {

std::string config_hash(const nlohmann::json& config) {
  const std::string text = config.dump();  // nlohmann sorts object keys: canonical
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string PointStore::hash(const nlohmann::json& config) const {
  if (!identity_.is_null()) return config_hash({{"config", config}, {"identity", identity_}});
  if (data_fingerprint_.empty()) return config_hash(config);
  return config_hash({{"config", config}, {"data_fingerprint", data_fingerprint_}});
}

std::string PointStore::dir(const std::string& name, const nlohmann::json& config) const {
  return (fs::path(root_) / ".points" / slug_ / (name + "-" + hash(config))).string();
}

std::optional<nlohmann::json> PointStore::load(const std::string& name,
                                               const nlohmann::json& config) const {
  const fs::path p = fs::path(dir(name, config)) / "point.json";
  std::ifstream in(p);
  if (!in) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(in);
    if (j.is_object() && j.value("status", "") == "complete" &&
        j.value("config", nlohmann::json()) == config &&
        j.value("data_fingerprint", std::string()) == data_fingerprint_ &&
        j.value("identity", nlohmann::json()) == identity_) {
      return j;
    }
  } catch (const nlohmann::json::exception&) {
  }
  return std::nullopt;
}

std::string PointStore::begin(const std::string& name, const nlohmann::json& config) const {
  const std::string staging = dir(name, config) + ".staging-" + std::to_string(::getpid());
  remove_stale_leftovers(dir(name, config), ".staging-");  // points of killed runs
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) throw std::runtime_error("cannot create " + staging + ": " + ec.message());
  return staging;
}

void PointStore::commit(const std::string& staging, const std::string& name,
                        const nlohmann::json& config, nlohmann::json point) const {
  point["status"] = "complete";
  point["config"] = config;
  if (!data_fingerprint_.empty()) point["data_fingerprint"] = data_fingerprint_;
  if (!identity_.is_null()) point["identity"] = identity_;
  write_file_atomic((fs::path(staging) / "point.json").string(), point.dump(2) + "\n");
  const std::string target = dir(name, config);
  std::error_code ec;
  fs::remove_all(target, ec);
  fs::rename(staging, target, ec);
  if (ec)
    throw std::runtime_error("cannot move " + staging + " to " + target + ": " + ec.message());
}

}  // namespace vaerepro
