#pragma once
/// \file points.h
/// Sweep points that run on their own and are reused: a chapter's sweep is
/// data (one point per beta, per probe...), each point cached under
/// OUT/.points/SLUG/NAME-HASH/ where HASH is a digest of the point's effective
/// configuration. `chapter-03 --only-point beta=5` runs one point (so that
/// `make -j` or a scheduler runs points in parallel); the chapter run then
/// assembles the cached points and trains only what is missing. A changed
/// configuration gives another hash, so stale points are never mixed in.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace vaerepro {

/// A stable 64-bit FNV-1a digest of the canonical JSON text, as 16 hex digits.
std::string config_hash(const nlohmann::json& config);

/// One point's folder.
class PointStore {
 public:
  /// `data_fingerprint` (Dataset::fingerprint) enters every point's hash, so
  /// that a point trained on other data is never reused.
  PointStore(std::string out_root, std::string slug, std::string data_fingerprint = "")
      : root_(std::move(out_root)),
        slug_(std::move(slug)),
        data_fingerprint_(std::move(data_fingerprint)) {}
  /// A store whose every point is keyed by `identity` (a RunIdentity's JSON,
  /// experiment.h: seed, data and its fingerprint, protocol, device, profile)
  /// with the point's own configuration: a point trained under another
  /// identity is never reused.
  static PointStore keyed_by(std::string out_root, std::string slug, nlohmann::json identity) {
    PointStore s(std::move(out_root), std::move(slug));
    s.identity_ = std::move(identity);
    return s;
  }
  /// The point's hash: of `config` and the identity (or the data fingerprint).
  std::string hash(const nlohmann::json& config) const;
  /// OUT/.points/SLUG/NAME-HASH
  std::string dir(const std::string& name, const nlohmann::json& config) const;
  /// The point's point.json when it is complete, else nothing.
  std::optional<nlohmann::json> load(const std::string& name, const nlohmann::json& config) const;
  /// A fresh staging folder for the point (files go there), then commit().
  std::string begin(const std::string& name, const nlohmann::json& config) const;
  /// Writes point.json (status complete, the config) into the staging folder
  /// and moves it into place atomically.
  void commit(const std::string& staging, const std::string& name, const nlohmann::json& config,
              nlohmann::json point) const;

 private:
  std::string root_, slug_, data_fingerprint_;
  nlohmann::json identity_;
};

}  // namespace vaerepro
