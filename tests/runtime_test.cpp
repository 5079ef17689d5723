// use_passive_wait_policy (runtime.h): the decision from the environment,
// and the restart itself, run on a probe program (wait_policy_probe.cpp) in
// controlled environments. No timings.

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <string>

#include "run_program.h"
#include "vaerepro/runtime.h"

namespace {

using vaerepro::decide_wait_policy;
using vaerepro::kWaitPolicyRestartMarker;

vaerepro::WaitPolicyDecision decide(const std::map<std::string, std::string>& env) {
  return decide_wait_policy([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(WaitPolicyDecision, RestartsOnlyWhenNothingIsSet) {
  EXPECT_TRUE(decide({}).restart);
  EXPECT_TRUE(decide({{"OMP_NUM_THREADS", "2"}, {"OPENBLAS_CORETYPE", "Haswell"}}).restart);
}

TEST(WaitPolicyDecision, HonoursTheUsersSettings) {
  for (const char* value : {"active", "passive", "ACTIVE", ""}) {
    const auto d = decide({{"OMP_WAIT_POLICY", value}});
    EXPECT_FALSE(d.restart) << value;
    EXPECT_NE(d.reason.find("OMP_WAIT_POLICY"), std::string::npos) << d.reason;
  }
  const auto d = decide({{"GOMP_SPINCOUNT", "300000"}});
  EXPECT_FALSE(d.restart);
  EXPECT_NE(d.reason.find("GOMP_SPINCOUNT=300000"), std::string::npos) << d.reason;
}

TEST(WaitPolicyDecision, TheMarkerStopsAnyLoop) {
  // Whatever else the environment says, a restarted process never restarts.
  EXPECT_FALSE(decide({{kWaitPolicyRestartMarker, "1"}}).restart);
  EXPECT_FALSE(decide({{kWaitPolicyRestartMarker, ""}}).restart);
}

TEST(WaitPolicyWarning, OnlyWhenSeveralThreadsSpinByDefault) {
  vaerepro::RuntimeInfo info;
  info.blas_is_optimized = true;
  info.malloc_tuned = true;
  info.available_cores = 2;
  info.intra_op_threads = 2;
  auto spinning = [&] {
    for (const auto& w : vaerepro::runtime_warnings(info, torch::kCPU)) {
      if (w.find("libgomp's threads spin") != std::string::npos) return true;
    }
    return false;
  };
  info.omp_wait_policy = "libgomp default (spins about 300,000 iterations before it sleeps)";
  EXPECT_TRUE(spinning());
  info.intra_op_threads = 1;  // no barriers to spin at
  info.available_cores = 1;
  EXPECT_FALSE(spinning());
  info.intra_op_threads = 2;
  info.available_cores = 2;
  for (const char* chosen :
       {"passive (set by the suite at start)", "OMP_WAIT_POLICY=active (environment)",
        "GOMP_SPINCOUNT=10000 (environment)"}) {
    info.omp_wait_policy = chosen;
    EXPECT_FALSE(spinning()) << chosen;
  }
}

/// The probe run with OMP_WAIT_POLICY, GOMP_SPINCOUNT and the marker unset,
/// then `assignments` (e.g. "OMP_WAIT_POLICY=active").
vaerepro::test::ProgramRun probe(const std::string& assignments, const std::string& args) {
  return vaerepro::test::run_command(std::string("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u ") +
                                     kWaitPolicyRestartMarker + " " + assignments + " " +
                                     WAIT_POLICY_PROBE + " " + args);
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(WaitPolicyRestart, UnsetRestartsOnceWithTheSameArgumentsAndProcess) {
  const auto r = probe("", "one 'two words' --x=3");
  ASSERT_EQ(r.code, 0) << r.output;
  // Two starts (the restart), one process id, then never again.
  EXPECT_EQ(count(r.output, "before pid="), 2) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("before pid=(\\d+)"))) << r.output;
  EXPECT_EQ(count(r.output, "pid=" + m[1].str()), 3) << r.output;
  EXPECT_NE(r.output.find("argc=4 [one] [two words] [--x=3]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY=passive\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("marker=1\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("description=passive (set by the suite at start)"), std::string::npos)
      << r.output;
  // libgomp itself loaded with the passive policy (omp_display_env).
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY = 'PASSIVE'"), std::string::npos) << r.output;
  // Nothing had started a thread before the call: the restart lost nothing.
  EXPECT_EQ(count(r.output, "threads=1\n"), 2) << r.output;
}

TEST(WaitPolicyRestart, AUserSettingIsKeptWithoutARestart) {
  const auto active = probe("OMP_WAIT_POLICY=active", "a");
  ASSERT_EQ(active.code, 0) << active.output;
  EXPECT_EQ(count(active.output, "before pid="), 1) << active.output;
  EXPECT_NE(active.output.find("OMP_WAIT_POLICY = 'ACTIVE'"), std::string::npos) << active.output;
  EXPECT_NE(active.output.find("description=OMP_WAIT_POLICY=active (environment)"),
            std::string::npos)
      << active.output;
  const auto spin = probe("GOMP_SPINCOUNT=300000", "a");
  ASSERT_EQ(spin.code, 0) << spin.output;
  EXPECT_EQ(count(spin.output, "before pid="), 1) << spin.output;
  EXPECT_NE(spin.output.find("OMP_WAIT_POLICY=(unset)"), std::string::npos) << spin.output;
  EXPECT_NE(spin.output.find("description=GOMP_SPINCOUNT=300000 (environment)"), std::string::npos)
      << spin.output;
}

TEST(WaitPolicyRestart, TheMarkerAloneKeepsLibgompsDefault) {
  const auto r = probe(std::string(kWaitPolicyRestartMarker) + "=1", "a");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count(r.output, "before pid="), 1) << r.output;
  EXPECT_NE(r.output.find("OMP_WAIT_POLICY=(unset)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("description=libgomp default"), std::string::npos) << r.output;
}

}  // namespace
