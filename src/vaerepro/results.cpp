#include "vaerepro/results.h"

#include "vaerepro/build_config.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace vaerepro {

void write_file_atomic(const std::string& path, const std::string& text) {
  fs::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      throw std::runtime_error("cannot create folder " + target.parent_path().string() + ": " +
                               ec.message());
    }
  }
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
  const char* p = text.data();
  size_t left = text.size();
  const char* fault = std::getenv("VAEREPRO_FAULT_WRITE");
  const char* fault_text = std::getenv("VAEREPRO_FAULT_WRITE_CONTAINS");
  auto text_matches = [&]() {
    if (!fault_text || !*fault_text) return true;
    std::stringstream alternatives(fault_text);  // "A|B": either
    std::string one;
    while (std::getline(alternatives, one, '|')) {
      if (!one.empty() && text.find(one) != std::string::npos) return true;
    }
    return false;
  };
  if (fault && *fault && path.find(fault) != std::string::npos && text_matches()) {
    // As a disk that fills up half-way: some bytes land, then the write fails.
    ssize_t ignored = ::write(fd, p, left / 2);
    (void)ignored;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(
        "write to " + path +
        " failed half-way: injected fault (VAEREPRO_FAULT_WRITE=" + std::string(fault) + ")");
  }
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error("write to " + path + " failed: " + std::strerror(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot flush " + path + ": " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot move " + tmp + " to " + path + ": " + std::strerror(err));
  }
  // The rename itself survives a power loss only once the folder is flushed.
  const std::string folder =
      target.has_parent_path() ? target.parent_path().string() : std::string(".");
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void remove_stale_leftovers(const std::string& path, const std::string& marker) {
  const fs::path target(path);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + marker;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(e.path(), ignored);
    }
  }
}

void fault_point(const std::string& name) {
  const char* kill_at = std::getenv("VAEREPRO_FAULT_KILL");
  if (kill_at && name == kill_at) ::raise(SIGKILL);
}

std::string format_number(double v) {
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

namespace {

std::string run_command(const std::string& cmd) {
  std::array<char, 256> buf{};
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return "";
  while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string utc_now() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

nlohmann::json Provenance::to_json() const {
  return {{"git_commit", git_commit},
          {"date_utc", date_utc},
          {"host", host},
          {"command_line", command_line}};
}

Provenance collect_provenance(int argc, char** argv) {
  Provenance p;
  const std::string src = VAEREPRO_SOURCE_DIR;
  p.git_commit =
      run_command("git -C '" + src + "' describe --always --dirty --abbrev=12 2>/dev/null");
  if (p.git_commit.empty()) p.git_commit = "unknown (not a git checkout)";
  p.date_utc = utc_now();
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) == 0) p.host = host;
  for (int i = 0; i < argc; ++i) {
    if (i) p.command_line += ' ';
    p.command_line += argv[i];
  }
  return p;
}

RunWriter::RunWriter(std::string results_root, std::string slug)
    : root_(std::move(results_root)), slug_(std::move(slug)) {
  staging_ = (fs::path(root_) / ".staging" / (slug_ + "-" + std::to_string(::getpid()))).string();
  final_ = (fs::path(root_) / slug_).string();
  std::error_code ec;
  // Staging folders of killed runs of this chapter (their process is gone),
  // and an old result set aside by a replacement that was killed.
  remove_stale_leftovers((fs::path(root_) / ".staging" / slug_).string(), "-");
  remove_stale_leftovers((fs::path(root_) / ".staging" / slug_).string(), ".old-");
  fs::remove_all(staging_, ec);
  fs::create_directories(staging_, ec);
  if (ec) {
    throw std::runtime_error("cannot create the results folder " + staging_ + ": " + ec.message() +
                             " (choose a writable --out / OUT=)");
  }
  write_json("run.json", {{"status", "running"}, {"chapter", slug_}});
}

RunWriter::~RunWriter() {
  // A run that neither finished nor failed (an exception escaped) keeps its
  // staging folder with status "running": readers ignore it.
}

std::string RunWriter::path(const std::string& relative) const {
  fs::path p = fs::path(staging_) / relative;
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create folder " + p.parent_path().string());
  return p.string();
}

void RunWriter::write_json(const std::string& relative, const nlohmann::json& j) const {
  write_file_atomic(path(relative), j.dump(2) + "\n");
}

void RunWriter::write_csv(const std::string& relative, const std::vector<std::string>& header,
                          const std::vector<std::vector<double>>& rows) const {
  std::ostringstream os;
  for (size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << header[i];
  os << '\n';
  for (const auto& row : rows) {
    if (row.size() != header.size()) {
      throw std::logic_error("CSV " + relative + ": a row has " + std::to_string(row.size()) +
                             " cells, the header " + std::to_string(header.size()));
    }
    for (size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << format_number(row[i]);
    os << '\n';
  }
  write_file_atomic(path(relative), os.str());
}

namespace {

/// Swaps two paths atomically (renameat2 RENAME_EXCHANGE). False, with
/// errno, when the file system or kernel cannot (EINVAL, ENOSYS).
bool exchange_paths(const std::string& a, const std::string& b) {
#if defined(SYS_renameat2) && defined(RENAME_EXCHANGE)
  return ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0;
#elif defined(SYS_renameat2)
  return ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), 1u << 1) == 0;
#else
  (void)a;
  (void)b;
  errno = ENOSYS;
  return false;
#endif
}

void fsync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string RunWriter::move_to(const std::string& target) {
  std::error_code ec;
  const bool had_old = fs::exists(fs::symlink_status(target, ec));
  if (had_old) {
    // One atomic swap: the new result takes the old one's name, the old one
    // the staging folder's; a kill at any moment leaves one complete result
    // at `target`, and what is left at the staging name (its process dead)
    // is removed by the next run (remove_stale_leftovers).
    if (exchange_paths(staging_, target)) {
      fsync_folder(fs::path(target).parent_path());
      fault_point("swap");
      fs::remove_all(staging_, ec);
      done_ = true;
      return target;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
      throw std::runtime_error("cannot replace " + target + " by " + staging_ + ": " +
                               std::strerror(errno));
    }
    // A file system without the swap: set the old one aside under a name
    // the next run cleans up, move the new one in, put the old one back if
    // that fails. (Between the two renames there is no result.)
    const fs::path old =
        fs::path(root_) / ".staging" / (slug_ + ".old-" + std::to_string(::getpid()));
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) throw std::runtime_error("cannot replace " + target + ": " + ec.message());
    fault_point("swap");
    fs::rename(staging_, target, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(old, target, ignored);
      throw std::runtime_error("cannot move " + staging_ + " to " + target + ": " + ec.message());
    }
    fs::remove_all(old, ec);
    done_ = true;
    return target;
  }
  fs::rename(staging_, target, ec);
  if (ec)
    throw std::runtime_error("cannot move " + staging_ + " to " + target + ": " + ec.message());
  fsync_folder(fs::path(target).parent_path());
  done_ = true;
  return target;
}

std::string RunWriter::finish(nlohmann::json run) {
  run["status"] = "complete";
  write_json("run.json", run);
  std::error_code ec;
  fs::remove_all(final_ + ".failed", ec);  // a newer complete run supersedes an old failure
  return move_to(final_);
}

void RunWriter::abandon() {
  std::error_code ec;
  fs::remove_all(staging_, ec);
  done_ = true;
}

std::string RunWriter::fail(nlohmann::json run, const std::string& message) {
  run["status"] = "failed";
  run["error"] = message;
  std::string write_error;
  try {
    write_json("run.json", run);
  } catch (const std::exception& e) {
    // A full disk may still take a short record; if not, no run.json at all
    // rather than one saying "running".
    write_error = e.what();
    try {
      write_json("run.json", {{"status", "failed"}, {"chapter", slug_}, {"error", message}});
      write_error.clear();
    } catch (const std::exception&) {
      std::error_code ec;
      fs::remove(fs::path(staging_) / "run.json", ec);
    }
  }
  const std::string where = move_to(final_ + ".failed");
  if (!write_error.empty()) {
    throw std::runtime_error("the failure could not be recorded in " + where +
                             "/run.json either (" + write_error + "); " + where +
                             " holds the partial output");
  }
  return where;
}

}  // namespace vaerepro
