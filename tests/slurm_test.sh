#!/usr/bin/env bash
# `make chapter-03-points SCHEDULER=slurm` and `make chapter-06-probes
# SCHEDULER=slurm` on a single-node Slurm that this test starts (and stops):
#   1. chapter 3's smoke points as an array, then the assembly: the same
#      numbers as a local sequential run;
#   2. chapter 6's smoke probes, round by round, submitted with WAIT=0 and
#      waited for with the printed command: the same searches as a local run;
#   3. a task that fails stops the assembly with a message naming it and its
#      log; the same command again trains only the missing point, and once
#      more trains nothing;
#   4. a task killed outright (no exit status) is reported, not waited for.
# Skipped (exit 77) with the reason when Slurm cannot start here. It stops the
# daemons it started (by pid) also when it fails; VAEREPRO_KEEP_TEST=1 keeps
# its temporary folder (logs, results) for a look.
#   usage: tests/slurm_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
skip=77
for b in chapter-03 chapter-06; do
  [ -x "$build/bin/$b" ] || { echo "FAIL: $build/bin/$b is not built"; exit 1; }
done
command -v jq >/dev/null 2>&1 || { echo "SKIP: jq is not installed (make test installs it: VAEREPRO_SLURM=test scripts/deps.sh)"; exit $skip; }

exec 3>&1  # the test's own output, for the cleanup (a signal may come while a command's output is redirected)
tmp=$(mktemp -d /tmp/vaerepro-slurm-test.XXXXXX)
# shellcheck source=tests/slurm_cluster.sh
source "$src/tests/slurm_cluster.sh"
cleanup() {
  local rc=$?
  if [ -n "${child:-}" ]; then kill -TERM -- "-$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  slurm_cluster_stop
  if [ "${VAEREPRO_KEEP_TEST:-0}" = 1 ]; then echo "slurm_test: kept $tmp (VAEREPRO_KEEP_TEST=1)" >&3
  elif [ "$rc" = 0 ] || [ "$rc" = "$skip" ]; then rm -rf "$tmp"; else echo "slurm_test: kept $tmp for a look (cluster logs in $tmp/cluster/log)" >&3; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "slurm_test: stopped by a signal" >&3; exit 130' INT TERM

started=$(date +%s)
if ! slurm_cluster_start "$tmp/cluster"; then
  echo "SKIP: a single-node Slurm cannot start here: $SLURM_CLUSTER_REASON"
  exit $skip
fi
echo "slurm_test: single-node Slurm up in $(($(date +%s) - started)) s ($SLURM_CONF)"

fail() { echo "FAIL: $*"; exit 1; }
# The chapters' smoke runs, one thread, through the Makefile (already built: -o build).
unset MAKEFLAGS MFLAGS MAKELEVEL
export VAEREPRO_SLURM_GRACE=3  # a local disk: a lost job's missing status is not a late file
smoke=(PROFILE=smoke DATASET=synthetic THREADS=1 POINT_THREADS=1 SCHEDULER=slurm SLURM_POLL=1 SLURM_TIME=00:20:00 SLURM_MAX_TASKS=2)
mk() { bg make -C "$src" --no-print-directory -o build "${smoke[@]}" "$@"; }
# The long commands run in their own process group, waited for with `wait`
# (which a signal interrupts), so that INT/TERM stops them and the cluster now.
set -m
child=""
bg() {
  local rc=0
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
# metrics.json without what differs between runs of the same numbers: timings,
# and how many probes this particular run trained or reused.
numbers() {
  jq -S 'walk(if type == "object" then with_entries(select(.key | test("seconds|^probes_trained$|^probes_reused$") | not)) else . end)' "$1"
}
same_numbers() {  # LOCAL SLURM
  if ! diff <(numbers "$1") <(numbers "$2") >"$tmp/diff.txt"; then
    head -40 "$tmp/diff.txt"
    fail "$2 differs from the local run's $1"
  fi
}

echo "slurm_test: local reference runs (chapters 3 and 6, smoke, one thread)"
"$build/bin/chapter-03" --profile smoke --dataset synthetic --threads 1 --out "$tmp/local" >"$tmp/local-03.log" 2>&1 ||
  { tail -20 "$tmp/local-03.log"; fail "the local chapter-03 run failed"; }
"$build/bin/chapter-06" --profile smoke --dataset synthetic --threads 1 --out "$tmp/local" >"$tmp/local-06.log" 2>&1 ||
  { tail -20 "$tmp/local-06.log"; fail "the local chapter-06 run failed"; }

# --- 1. chapter 3 through Slurm -------------------------------------------------
echo "slurm_test: 1. make chapter-03-points SCHEDULER=slurm"
t0=$(date +%s)
mk chapter-03-points OUT="$tmp/slurm" >"$tmp/03.log" 2>&1 || { cat "$tmp/03.log"; fail "make chapter-03-points SCHEDULER=slurm failed"; }
state03=$tmp/slurm/.slurm/chapter-03
grep -q "points: 3 to train" "$tmp/03.log" || { cat "$tmp/03.log"; fail "chapter 3's smoke run is not three points as an array"; }
for p in beta-1 beta-5 traversal-nz5-beta5; do
  [ "$(grep -c "^=== $p: job" "$state03/logs/$p.log")" = 1 ] || fail "$p was not trained exactly once ($state03/logs/$p.log)"
done
same_numbers "$tmp/local/03-beta-sweep/metrics.json" "$tmp/slurm/03-beta-sweep/metrics.json"
echo "slurm_test: 1. ok in $(($(date +%s) - t0)) s: three tasks, then the assembly; the numbers are the local run's"

# --- 2. chapter 6, WAIT=0, then the printed command -------------------------------
echo "slurm_test: 2. make chapter-06-probes SCHEDULER=slurm WAIT=0"
t0=$(date +%s)
mk chapter-06-probes OUT="$tmp/slurm" WAIT=0 >"$tmp/06.log" 2>&1 || { cat "$tmp/06.log"; fail "make chapter-06-probes SCHEDULER=slurm WAIT=0 failed"; }
check=$(sed -n 's/^ *\(.*slurm_points.sh wait [^ ]*\).*/\1/p' "$tmp/06.log" | head -1)
[ -n "$check" ] || { cat "$tmp/06.log"; fail "WAIT=0 printed no command to wait with"; }
[ -f "$tmp/slurm/06-architecture-search/metrics.json" ] && fail "WAIT=0 waited for the assembly"
# While it is in the queue, the same command submits nothing twice; status reports.
mk chapter-06-probes OUT="$tmp/slurm" WAIT=0 >"$tmp/06-again.log" 2>&1 || { cat "$tmp/06-again.log"; fail "the second WAIT=0 run failed"; }
grep -q "still in the queue" "$tmp/06-again.log" || { cat "$tmp/06-again.log"; fail "a second WAIT=0 run did not find the first in the queue"; }
grep -q "submitted job" "$tmp/06-again.log" && { cat "$tmp/06-again.log"; fail "a second WAIT=0 run submitted again"; }
"$src/scripts/slurm_points.sh" status "$tmp/slurm/.slurm/chapter-06" >"$tmp/06-status.log" 2>&1 || { cat "$tmp/06-status.log"; fail "status failed"; }
grep -q "chapter-06: " "$tmp/06-status.log" || fail "status printed no progress"
bg $check >"$tmp/06-wait.log" 2>&1 || { cat "$tmp/06-wait.log"; fail "'$check' failed"; }
state06=$tmp/slurm/.slurm/chapter-06
rounds=$(find "$state06" -maxdepth 1 -name 'batch-*' | wc -l)
tasks=$(cat "$state06"/batch-* | wc -l)
[ "$rounds" -gt 1 ] || fail "chapter 6's search ran in $rounds round(s); it needs several"
same_numbers "$tmp/local/06-architecture-search/metrics.json" "$tmp/slurm/06-architecture-search/metrics.json"
trained_local=$(jq .probes_trained "$tmp/local/06-architecture-search/metrics.json")
trained_slurm=$(jq .probes_trained "$tmp/slurm/06-architecture-search/metrics.json")
[ "$trained_slurm" = 0 ] || fail "the assembly trained $trained_slurm probe(s): the tasks should have"
[ "$trained_local" = "$tasks" ] || fail "the tasks trained $tasks probes, the local run $trained_local: one was missed or doubled"
echo "slurm_test: 2. ok in $(($(date +%s) - t0)) s: $tasks probes in $rounds rounds; the searches are the local run's"

# --- 3. a failing task, then the resubmission ---------------------------------------
# A chapter-03 that fails for one point while a marker exists (a fake build folder).
mkdir -p "$tmp/fake/bin"
cat >"$tmp/fake/bin/chapter-03" <<EOF
#!/usr/bin/env bash
[ -e "$tmp/slow" ] && set -- "\$@" --betas 5 --traversal-nz 0 --samples 100000  # one point, long enough to stop
echo "\$*" >>"$tmp/calls.log"
for a in "\$@"; do
  if [ "\$a" = beta-5 ] && [ -e "$tmp/fail-beta-5" ]; then echo "injected failure of beta-5" >&2; exit 42; fi
  if [ "\$a" = beta-5 ] && [ -e "$tmp/kill-beta-5" ]; then kill -KILL \$PPID; sleep 5; fi
done
exec stdbuf -oL "$build/bin/chapter-03" "\$@"  # line by line into the task's log
EOF
chmod +x "$tmp/fake/bin/chapter-03"
statef=$tmp/fail/.slurm/chapter-03
echo "slurm_test: 3. a failing task stops the assembly"
t0=$(date +%s)
touch "$tmp/fail-beta-5"
if mk chapter-03-points OUT="$tmp/fail" BUILD_DIR="$tmp/fake" >"$tmp/fail.log" 2>&1; then
  cat "$tmp/fail.log"; fail "a failing task did not fail the make command"
fi
grep -q "FAILED: task beta-5 failed (exit 42); its log: $statef/logs/beta-5.log" "$tmp/fail.log" ||
  { cat "$tmp/fail.log"; fail "no clear message naming the failed task and its log"; }
grep -q "the assembly did not run" "$tmp/fail.log" || { cat "$tmp/fail.log"; fail "no word that the assembly did not run"; }
grep -q "injected failure of beta-5" "$statef/logs/beta-5.log" || fail "the task's log lacks the program's error"
[ -e "$tmp/fail/03-beta-sweep/metrics.json" ] && fail "the chapter was assembled although a task failed"
rm -f "$tmp/fail-beta-5"
# The failure is reported at once; the array's other tasks go on. The same
# command again, at once, waits for them (it never submits a point twice),
# then submits what is missing: beta-5 alone. Every attempt is in a point's log.
echo "slurm_test: 3. the same command again trains only the missing point"
mk chapter-03-points OUT="$tmp/fail" BUILD_DIR="$tmp/fake" >"$tmp/resubmit.log" 2>&1 ||
  { cat "$tmp/resubmit.log"; fail "the resubmission failed"; }
grep -q "points: 1 to train" "$tmp/resubmit.log" || { cat "$tmp/resubmit.log"; fail "the resubmission did not submit beta-5 alone"; }
[ "$(grep -c "^beta-5$" "$statef/batch-1")" = 1 ] && [ "$(wc -l <"$statef/batch-1")" = 1 ] ||
  { cat "$statef/batch-1"; fail "the resubmission's array is not beta-5 alone"; }
grep -q "beta-1: reusing" "$statef/logs/assemble.log" || fail "the assembly did not reuse beta-1"
[ "$(grep -c '^=== beta-1: job' "$statef/logs/beta-1.log")" = 1 ] || fail "beta-1 ran twice"
[ "$(grep -c '^=== traversal-nz5-beta5: job' "$statef/logs/traversal-nz5-beta5.log")" = 1 ] || fail "traversal-nz5-beta5 ran twice"
[ "$(grep -c '^=== beta-5: job' "$statef/logs/beta-5.log")" = 2 ] || fail "beta-5's log does not show the failed and the resubmitted task"
same_numbers "$tmp/local/03-beta-sweep/metrics.json" "$tmp/fail/03-beta-sweep/metrics.json"
: >"$tmp/calls.log"
mk chapter-03-points OUT="$tmp/fail" BUILD_DIR="$tmp/fake" >"$tmp/again.log" 2>&1 || { cat "$tmp/again.log"; fail "the third run failed"; }
grep -q -- '--only-point' "$tmp/calls.log" && fail "a complete sweep was trained again: $(cat "$tmp/calls.log")"
grep -q "nothing left to train" "$statef/logs/plan-1.log" || fail "the third run's plan did not find the sweep complete"
echo "slurm_test: 3. ok in $(($(date +%s) - t0)) s: the failure is reported, the resubmission trained beta-5 alone"

# --- 4. a task killed without a word ------------------------------------------------
echo "slurm_test: 4. a task killed outright is reported"
t0=$(date +%s)
touch "$tmp/kill-beta-5"
if mk chapter-03-points OUT="$tmp/killed" BUILD_DIR="$tmp/fake" >"$tmp/killed.log" 2>&1; then
  cat "$tmp/killed.log"; fail "a killed task did not fail the make command"
fi
grep -q "FAILED: task beta-5 ended without an exit status" "$tmp/killed.log" || { cat "$tmp/killed.log"; fail "the killed task is not named"; }
[ -e "$tmp/killed/03-beta-sweep/metrics.json" ] && fail "the chapter was assembled although a task was killed"
rm -f "$tmp/kill-beta-5"
echo "slurm_test: 4. ok in $(($(date +%s) - t0)) s"

drain() { for _ in $(seq 1 120); do [ -z "$(squeue -h -o %i)" ] && return 0; sleep 1; done; fail "the queue did not drain"; }

# --- 5. a task stopped by scancel resumes from its checkpoint ------------------------
echo "slurm_test: 5. a task stopped by scancel resumes from its checkpoint when resubmitted"
t0=$(date +%s)
touch "$tmp/slow"
stater=$tmp/resume/.slurm/chapter-03
mk chapter-03-points OUT="$tmp/resume" BUILD_DIR="$tmp/fake" WAIT=0 >"$tmp/resume-1.log" 2>&1 ||
  { cat "$tmp/resume-1.log"; fail "the WAIT=0 submission failed"; }
started_line="chapter-03: dataset synthetic "  # printed once its stop handlers are in place
for _ in $(seq 1 240); do
  grep -q "$started_line" "$stater/logs/beta-5.log" 2>/dev/null && break
  sleep 0.5
done
grep -q "$started_line" "$stater/logs/beta-5.log" || fail "beta-5 did not start"
sleep 1.5  # in training (100000 samples take seconds even on a fast machine)
array=$(awk '$2 == "batch-1" {print $1}' "$stater/jobs")
scancel "${array}_0"
if bg "$src/scripts/slurm_points.sh" wait "$stater" >"$tmp/resume-2.log" 2>&1; then
  cat "$tmp/resume-2.log"; fail "a cancelled task did not fail the wait"
fi
grep -q "FAILED: task beta-5 failed (exit 143: interrupted" "$tmp/resume-2.log" ||
  { cat "$tmp/resume-2.log"; tail -5 "$stater/logs/beta-5.log"; fail "the cancelled task is not reported as interrupted"; }
drain
mk chapter-03-points OUT="$tmp/resume" BUILD_DIR="$tmp/fake" >"$tmp/resume-3.log" 2>&1 ||
  { cat "$tmp/resume-3.log"; fail "the resubmission after scancel failed"; }
grep -q "beta-5: resuming from " "$stater/logs/beta-5.log" || { tail -20 "$stater/logs/beta-5.log"; fail "beta-5 did not resume from its checkpoint"; }
[ -f "$tmp/resume/03-beta-sweep/metrics.json" ] || fail "the resumed sweep was not assembled"
rm -f "$tmp/slow"
echo "slurm_test: 5. ok in $(($(date +%s) - t0)) s"

left=$(squeue -h -o '%i %j %T' 2>/dev/null || true)
[ -z "$left" ] || { echo "$left"; fail "jobs are left in the queue"; }
echo "slurm_test: all passed in $(($(date +%s) - started)) s"
