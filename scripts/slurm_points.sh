#!/usr/bin/env bash
# shellcheck disable=SC2154  # name, mode, program, point_args...: assigned by DIR/config (sourced)
# Runs a chapter's independent models (sweep points, search probes) as Slurm
# job arrays, then the chapter's assembly; `make chapter-03-points
# SCHEDULER=slurm` and `make chapter-06-probes SCHEDULER=slurm` call it
# (README.md, "On a cluster").
#
#   scripts/slurm_points.sh submit --state DIR --name NAME --mode points|rounds
#       --program PROG --args "ARGS" --list FLAG --flag FLAG --assemble-args "ARGS"
#       [--partition P] [--time T] [--cpus N] [--gpus N] [--sbatch-args "..."]
#       [--max-tasks N] [--wait 1|0] [--poll SECONDS]
#   scripts/slurm_points.sh wait DIR      wait for the submission in DIR, reporting progress
#   scripts/slurm_points.sh status DIR    one progress line, and what failed
#
# The jobs (all with the same resources):
#   plan-K      lists the models that can train now (PROG ARGS FLAG-of-list) and
#               submits them as one array (`sbatch --array=0-N%MAX`), each task
#               running `PROG ARGS --only-point NAME`, exactly what a local job
#               runs; then, depending on the array (afterok), either the
#               assembly (mode points) or plan-K+1 (mode rounds: chapter 6's
#               next round needs this round's probes). With nothing left to
#               train, plan-K runs the assembly `PROG ASSEMBLE-ARGS` itself.
#   a task that fails (or is cancelled, or hits its time limit) leaves the
#               dependent job unsatisfiable; Slurm cancels it
#               (--kill-on-invalid-dep=yes) and `wait` reports the task, its
#               exit code and its log, and exits 1.
# Logs, one per model and job: DIR/logs/ (NAME.log per point, plan-K.log,
# assemble.log; Slurm's own per-task output in DIR/logs/slurm/).
# State on disk only (no accounting, no sacct): DIR/status/LABEL.rc holds the
# exit code of each finished task and job; squeue says what is still queued.
# A finished point is cached by the chapter (OUT/.points/) and never listed
# again; a killed one resumes from its checkpoint when the same command runs
# again, which submits only what is missing. While a submission is still in
# the queue, running the command again waits for it (WAIT=0: reports on it)
# rather than submitting twice.
#
# A job that left the queue without an exit status is reported as lost after
# VAEREPRO_SLURM_GRACE seconds (60: a shared file system may show files late).
#
# Exit codes: 0 done (or submitted, with --wait 0; status: done or in
# progress), 1 a task or the assembly failed, 2 usage, 3 Slurm is not reachable.
set -euo pipefail

me=slurm-points
die() { echo "$me: error: $*" >&2; exit 1; }
usage() { echo "$me: $*" >&2; sed -n '8,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

script=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

need_slurm() {
  local c
  for c in sbatch squeue scancel; do
    command -v "$c" >/dev/null 2>&1 || { echo "$me: error: $c is not on the PATH: SCHEDULER=slurm needs the Slurm client commands (a cluster's login node; Debian: make deps SCHEDULER=slurm)" >&2; exit 3; }
  done
  local err
  if ! err=$(squeue -h -u "$(id -un)" -o '%i' 2>&1 >/dev/null); then
    echo "$me: error: squeue cannot reach the Slurm controller: $err" >&2
    exit 3
  fi
}

# --- the state folder ---------------------------------------------------------
# DIR/config   the submission's settings (bash, sourced by every job)
# DIR/jobs     "JOBID LABEL" per submitted job (LABEL: plan-K, batch-K, assemble)
# DIR/batch-K  the points of array K, one per line (task i runs line i+1)
# DIR/status/  LABEL.rc: the exit code of each finished point, plan and assembly

load_config() {
  state=$1
  [ -f "$state/config" ] || die "$state has no submission (no $state/config): submit first"
  # shellcheck disable=SC1091
  source "$state/config"
}

write_rc() {  # LABEL RC: atomically, so that a reader never sees half a file
  local tmp="$state/status/.$1.rc.$$"
  echo "$2" >"$tmp"
  mv -f "$tmp" "$state/status/$1.rc"
}

sbatch_common() {  # the options every job gets; prints them one per line
  printf '%s\n' --parsable --chdir="$workdir" --time="$time_limit" --open-mode=append \
    --kill-on-invalid-dep=yes --export=ALL
  [ -n "$partition" ] && printf '%s\n' --partition="$partition"
  [ "${gpus:-0}" != 0 ] && [ -n "${gpus:-}" ] && printf '%s\n' --gres="gpu:$gpus"
  local a
  for a in "${sbatch_extra[@]}"; do printf '%s\n' "$a"; done
}

submit_job() {  # LABEL [sbatch options...] -- COMMAND...: submits, records, prints the id
  local label=$1; shift
  local -a opts=() cmd=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  cmd=("$@")
  local -a common=()
  mapfile -t common < <(sbatch_common)
  local wrap out id
  wrap=$(printf '%q ' "${cmd[@]}")
  if ! out=$(sbatch "${common[@]}" --job-name="vaerepro-$name-$label" "${opts[@]}" --wrap="exec $wrap" 2>&1); then
    echo "$me: error: sbatch refused $label: $out" >&2
    return 1
  fi
  id=${out%%;*}
  id=$(echo "$id" | tail -1 | tr -d '[:space:]')
  case "$id" in ''|*[!0-9]*) echo "$me: error: sbatch gave no job id for $label: $out" >&2; return 1;; esac
  echo "$id $label" >>"$state/jobs"
  echo "$id"
}

# --- submit (on the login node) -----------------------------------------------

cmd_submit() {
  local mode="" name_="" program="" args="" list="" flag="" assemble="" partition_="" time_="24:00:00"
  local cpus_=1 gpus_=0 extra="" max=32 wait_=1 poll_=30 st=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --state) st=$2;; --name) name_=$2;; --mode) mode=$2;; --program) program=$2;; --args) args=$2;;
      --list) list=$2;; --flag) flag=$2;; --assemble-args) assemble=$2;; --partition) partition_=$2;;
      --time) time_=$2;; --cpus) cpus_=$2;; --gpus) gpus_=$2;; --sbatch-args) extra=$2;;
      --max-tasks) max=$2;; --wait) wait_=$2;; --poll) poll_=$2;;
      *) usage "unknown option '$1'";;
    esac
    [ $# -ge 2 ] || usage "$1 needs a value"
    shift 2
  done
  if [ -z "$st" ] || [ -z "$name_" ] || [ -z "$program" ] || [ -z "$list" ] || [ -z "$flag" ]; then
    usage "submit needs --state, --name, --program, --list and --flag"
  fi
  case "$mode" in points|rounds) ;; *) usage "--mode must be points or rounds, not '$mode'";; esac
  case "$max" in ''|*[!0-9]*|0) usage "--max-tasks (SLURM_MAX_TASKS) must be a positive integer, not '$max'";; esac
  case "$cpus_" in ''|*[!0-9]*|0) usage "--cpus (SLURM_CPUS) must be a positive integer, not '$cpus_'";; esac
  case "$gpus_" in ''|*[!0-9]*) usage "--gpus (SLURM_GPUS) must be a non-negative integer, not '$gpus_'";; esac
  case "$wait_" in 0|1) ;; *) usage "--wait (WAIT) must be 0 or 1, not '$wait_'";; esac
  [ -x "$program" ] || die "$program is not built (make build)"
  need_slurm
  mkdir -p "$st"
  state=$(cd "$st" && pwd)

  # A submission still in the queue is not doubled: WAIT=0 reports on it; WAIT=1
  # waits until it has left the queue, then is done if it assembled the
  # chapter, or submits what is still missing.
  if [ -f "$state/jobs" ] && [ -f "$state/config" ] && [ -n "$(queued_ids)" ]; then
    local previous_args
    previous_args=$(sed -n 's/^# args: //p' "$state/config")
    (
      load_config "$state"
      echo "$me: $name: the previous submission is still in the queue (jobs $(queued_ids | tr '\n' ' ' | sed 's/ $//'))"
      if [ "$wait_" = 0 ]; then
        cmd_status "$state" || true
        print_check_commands
        exit 0
      fi
      echo "$me: $name: waiting for it to leave the queue, then submitting what is missing"
      local last=""
      while [ -n "$(queued_ids)" ]; do
        poll_state
        [ "$summary" != "$last" ] && echo "$me: $name: $summary" && last=$summary
        sleep "$poll_"
      done
    ) || exit $?
    [ "$wait_" = 0 ] && exit 0
    if [ "$(cat "$state/status/assemble.rc" 2>/dev/null)" = 0 ] && [ "$previous_args" = "$args $assemble" ]; then
      echo "$me: $name_: the previous submission assembled the chapter; nothing to submit"
      return 0
    fi
  fi

  rm -rf "$state/status" "$state/jobs" "$state"/batch-*
  mkdir -p "$state/status" "$state/logs/slurm"
  local -a args_a assemble_a extra_a
  read -r -a args_a <<<"$args"
  read -r -a assemble_a <<<"$assemble"
  read -r -a extra_a <<<"$extra"
  {
    echo "# written by $me submit at $(date -u +%FT%TZ); read by the jobs"
    echo "# args: $args $assemble"
    printf 'name=%q\nmode=%q\nprogram=%q\nlist_flag=%q\npoint_flag=%q\n' "$name_" "$mode" \
      "$(cd "$(dirname "$program")" && pwd)/$(basename "$program")" "$list" "$flag"
    printf 'workdir=%q\npartition=%q\ntime_limit=%q\ncpus=%q\ngpus=%q\nmax_tasks=%q\npoll=%q\n' \
      "$PWD" "$partition_" "$time_" "$cpus_" "$gpus_" "$max" "$poll_"
    printf 'point_args=(%s)\n' "$(printf '%q ' "${args_a[@]}")"
    printf 'assemble_args=(%s)\n' "$(printf '%q ' "${assemble_a[@]}")"
    printf 'sbatch_extra=(%s)\n' "$( [ ${#extra_a[@]} -gt 0 ] && printf '%q ' "${extra_a[@]}")"
  } >"$state/config"
  load_config "$state"
  local id
  id=$(submit_job plan-1 --cpus-per-task="$cpus" --output="$state/logs/plan-1.log" -- \
    bash "$script" plan "$state" 1) || exit 1
  echo "$me: $name: submitted job $id (plan-1: lists what is left to train, submits it as an array, then the assembly)"
  echo "$me: $name: logs in $state/logs/"
  if [ "$wait_" = 1 ]; then
    cmd_wait "$state"
  else
    print_check_commands
  fi
}

print_check_commands() {
  echo "$me: $name: not waiting (WAIT=0). Check later with:"
  echo "  $script status $state    # one line of progress"
  echo "  $script wait $state      # wait, report, exit 1 if something failed"
  echo "  (or run the same make command again: it waits for this submission, or submits only what is missing)"
}

# --- the jobs (on the cluster) ---------------------------------------------------

cmd_plan() {  # STATE K: list what can train now; submit it and what depends on it
  load_config "$1"
  local k=$2 label="plan-$2" rc=0
  plan_body "$k" || rc=$?
  [ -f "$state/status/$label.rc" ] || write_rc "$label" "$rc"
  exit "$rc"
}

plan_body() {
  local k=$1 listing
  echo "=== $label: job ${SLURM_JOB_ID:-?} on $(hostname) at $(date -u +%FT%TZ)"
  echo "+ $program ${point_args[*]} $list_flag"
  if ! listing=$("$program" "${point_args[@]}" "$list_flag"); then
    echo "$me: $label: listing what is left to train failed: $program ${point_args[*]} $list_flag" >&2
    echo "$listing"
    return 1
  fi
  local -a pending=()
  # Once each (with several seeds, --seeds, every seed lists its own; a task trains its model for all of them).
  mapfile -t pending < <(echo "$listing" | sed -n -E 's/^pending-(point|probe) +//p' | awk '!seen[$0]++')
  if [ ${#pending[@]} -eq 0 ]; then
    echo "$label: nothing left to train; the assembly runs in this job"
    write_rc "$label" 0
    run_assembly
    return $?
  fi
  printf '%s\n' "${pending[@]}" >"$state/batch-$k"
  if [ "$k" -gt 1 ] && [ -f "$state/batch-$((k - 1))" ] && cmp -s "$state/batch-$k" "$state/batch-$((k - 1))"; then
    echo "$me: $label: the same models are pending twice (${pending[*]}): the previous round trained them but the program does not find them" >&2
    return 1
  fi
  local n=${#pending[@]} cap=$max_tasks array next
  echo "$label: ${n} to train as one array (at most $cap at a time): ${pending[*]}"
  local p
  for p in "${pending[@]}"; do rm -f "$state/status/$p.rc"; done
  array=$(submit_job "batch-$k" --array="0-$((n - 1))%$cap" --cpus-per-task="$cpus" \
    --output="$state/logs/slurm/batch-$k-%A_%a.out" -- bash "$script" task "$state" "$k") || return 1
  echo "$label: array job $array"
  if [ "$mode" = rounds ]; then
    next=$(submit_job "plan-$((k + 1))" --dependency="afterok:$array" --cpus-per-task="$cpus" \
      --output="$state/logs/plan-$((k + 1)).log" -- bash "$script" plan "$state" "$((k + 1))") || return 1
    echo "$label: the next round, job $next, starts when every task of $array succeeded"
  else
    next=$(submit_job assemble --dependency="afterok:$array" --cpus-per-task="$cpus" \
      --output="$state/logs/slurm/assemble-%j.out" -- bash "$script" assemble "$state") || return 1
    echo "$label: the assembly, job $next, starts when every task of $array succeeded"
  fi
  write_rc "$label" 0
}

run_assembly() {  # into logs/assemble.log, whether it is a job of its own or the last plan
  local log="$state/logs/assemble.log" rc=0
  echo "$me: the assembly: $program ${assemble_args[*]} (its log: $log)"
  {
    echo "=== assemble: job ${SLURM_JOB_ID:-?} on $(hostname) at $(date -u +%FT%TZ)"
    echo "+ $program ${assemble_args[*]}"
  } >>"$log"
  run_forwarding_term "$program" "${assemble_args[@]}" >>"$log" 2>&1 || rc=$?
  echo "=== assemble: exit $rc at $(date -u +%FT%TZ)" >>"$log"
  write_rc assemble "$rc"
  return "$rc"
}

cmd_assemble() {
  load_config "$1"
  local rc=0
  run_assembly || rc=$?
  exit "$rc"
}

# Runs a command in the background and waits for it; a SIGTERM (scancel, the
# time limit) reaches it from Slurm directly, and this shell waits for it to
# save its checkpoint and stop rather than dying first.
run_forwarding_term() {
  local child rc=0
  trap 'echo "$me: SIGTERM: waiting for the program to save its state"' TERM
  "$@" &
  child=$!
  while :; do
    rc=0
    wait "$child" || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  trap - TERM
  return "$rc"
}

cmd_task() {  # STATE K: array task SLURM_ARRAY_TASK_ID of batch K
  load_config "$1"
  local k=$2 i=${SLURM_ARRAY_TASK_ID:?not in an array task} point
  point=$(sed -n "$((i + 1))p" "$state/batch-$k")
  [ -n "$point" ] || die "batch-$k has no line $((i + 1))"
  local log="$state/logs/$point.log" rc=0
  echo "$me: task $i of batch-$k: $point (its log: $log)"
  {
    echo "=== $point: job ${SLURM_ARRAY_JOB_ID:-?}_$i on $(hostname) at $(date -u +%FT%TZ)"
    echo "+ $program ${point_args[*]} $point_flag $point"
  } >>"$log"
  run_forwarding_term "$program" "${point_args[@]}" "$point_flag" "$point" >>"$log" 2>&1 || rc=$?
  echo "=== $point: exit $rc at $(date -u +%FT%TZ)" >>"$log"
  write_rc "$point" "$rc"
  echo "$me: $point: exit $rc"
  exit "$rc"
}

# --- progress, from squeue and the status files ----------------------------------

queued_ids() {  # our job ids that squeue still lists (pending, running, completing)
  [ -f "$state/jobs" ] || return 0
  local q
  q=$(squeue -h -u "$(id -un)" -o '%F' 2>/dev/null | sort -u) || return 0
  awk '{print $1}' "$state/jobs" | sort -u | comm -12 - <(echo "$q")
}

running_tasks() {  # ARRAYID: tasks running now
  squeue -h -u "$(id -un)" -o '%F %T' 2>/dev/null | awk -v id="$1" '$1 == id && $2 == "RUNNING"' | wc -l
}

# One poll: sets done_, failed (labels), summary; returns 0.
poll_state() {
  local queued
  queued=$(queued_ids)  # first the queue, then the files the jobs wrote before leaving it
  jobs_now=$(cat "$state/jobs" 2>/dev/null || true)
  failed=() done_=0
  local f rc lbl
  for f in "$state"/status/*.rc; do
    [ -e "$f" ] || continue
    rc=$(cat "$f"); lbl=$(basename "$f" .rc)
    if [ "$rc" != 0 ]; then failed+=("$lbl:$rc"); fi
  done
  [ -f "$state/status/assemble.rc" ] && [ "$(cat "$state/status/assemble.rc")" = 0 ] && done_=1
  # The latest batch: how many of its points are done, running, waiting.
  local k=0 b
  for b in "$state"/batch-*; do [ -e "$b" ] || continue; b=${b##*-}; [ "$b" -gt "$k" ] && k=$b; done
  summary=""
  if [ "$k" -gt 0 ]; then
    local n ok=0 bad=0 run=0 array p
    n=$(wc -l <"$state/batch-$k")
    while read -r p; do
      [ -f "$state/status/$p.rc" ] || continue
      if [ "$(cat "$state/status/$p.rc")" = 0 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done <"$state/batch-$k"
    array=$(awk -v l="batch-$k" '$2 == l {print $1}' "$state/jobs" | tail -1)
    [ -n "$array" ] && echo "$queued" | grep -qx "$array" && run=$(running_tasks "$array")
    local label="round $k"; [ "$mode" = points ] && label="points"
    summary="$label: $n to train: $ok done, $run running, $bad failed, $((n - ok - bad - run)) to go"
  else
    summary="planning (plan-1)"
  fi
  if [ "$done_" = 1 ]; then summary="$summary; assembled"
  elif [ -n "$queued" ]; then
    local ids
    ids=$(echo "$queued" | tr '\n' ' ' | sed 's/ $//')
    summary="$summary; jobs in the queue: $ids"
  fi
  queued_now=$queued
}

report_failures() {
  local entry lbl rc log why
  for entry in "${failed[@]}"; do
    lbl=${entry%%:*}; rc=${entry##*:}
    log="$state/logs/$lbl.log"
    why="exit $rc"
    case "$rc" in
      130|143) why="exit $rc: interrupted (scancel, time limit or preemption); its checkpoint is kept and resumes";;
      137) why="exit $rc: killed (SIGKILL: out of memory, or the time limit's grace period)";;
    esac
    case "$lbl" in
      plan-*) echo "$me: $name: FAILED: $lbl (planning the jobs) failed ($why); its log: $log" >&2;;
      assemble) echo "$me: $name: FAILED: the assembly failed ($why); its log: $log" >&2;;
      *) echo "$me: $name: FAILED: task $lbl failed ($why); its log: $log" >&2;;
    esac
  done
}

cancel_dependents() {  # the planning and assembly jobs still waiting (Slurm cancels them too)
  local id lbl
  while read -r id lbl; do
    case "$lbl" in batch-*) continue;; esac
    if echo "$queued_now" | grep -qx "$id"; then scancel "$id" 2>/dev/null || true; fi
  done <"$state/jobs"
}

cmd_status() {
  load_config "$1"
  need_slurm
  poll_state
  echo "$me: $name: $summary"
  if [ ${#failed[@]} -gt 0 ]; then report_failures; return 1; fi
  return 0
}

cmd_wait() {
  load_config "$1"
  need_slurm
  local last="" last_jobs="" since empty_since=""
  # A job that left the queue without writing its exit status counts as lost
  # only after this many seconds (a shared file system may show a new file late).
  local grace=${VAEREPRO_SLURM_GRACE:-60}
  since=$(date +%s)
  trap 'echo; echo "$me: $name: stopped waiting; the jobs go on in the queue. Check with: $script status $state" >&2; exit 130' INT
  while :; do
    poll_state
    if [ "$summary" != "$last" ]; then
      echo "$me: $name: [$(( $(date +%s) - since )) s] $summary"
      last=$summary
    fi
    if [ ${#failed[@]} -gt 0 ]; then
      report_failures
      cancel_dependents
      echo "$me: $name: the assembly did not run (a job it depends on failed). What finished is kept" >&2
      echo "$me: $name: (OUT/.points/); fix the cause and run the same command again: it trains only what is missing." >&2
      return 1
    fi
    if [ "$done_" = 1 ]; then
      echo "$me: $name: done; the assembly's log: $state/logs/assemble.log"
      grep -E 'results in ' "$state/logs/assemble.log" | tail -1 || true
      return 0
    fi
    if [ -z "$queued_now" ] && [ "$jobs_now" = "$last_jobs" ]; then
      # Nothing of ours is queued, nothing is assembled, and no job was added
      # since the last look (a job that just ended may have submitted the next).
      [ -n "$empty_since" ] || empty_since=$(date +%s)
      if [ $(($(date +%s) - empty_since)) -ge "$grace" ]; then
        local lost=() cancelled=() id lbl p
        while read -r id lbl; do
          case "$lbl" in
            batch-*) while read -r p; do [ -f "$state/status/$p.rc" ] || lost+=("$p"); done <"$state/$lbl";;
            *) [ -f "$state/status/$lbl.rc" ] || cancelled+=("$lbl");;
          esac
        done <"$state/jobs"
        for p in "${lost[@]}"; do
          echo "$me: $name: FAILED: task $p ended without an exit status (killed outright: cancelled, out of memory, the" >&2
          echo "$me: $name: time limit's SIGKILL, or a lost node?); its log: $state/logs/$p.log, Slurm's: $state/logs/slurm/" >&2
        done
        if [ ${#cancelled[@]} -gt 0 ]; then
          echo "$me: $name: FAILED: these jobs left the queue without running: ${cancelled[*]} (cancelled, or a job they depend on failed)" >&2
        fi
        echo "$me: $name: the assembly did not run. What finished is kept (OUT/.points/); run the same command again:" >&2
        echo "$me: $name: it submits only what is missing, and a killed point resumes from its checkpoint." >&2
        return 1
      fi
    else
      empty_since=""
    fi
    last_jobs=$jobs_now
    sleep "$poll"
  done
}

[ $# -ge 1 ] || usage "a command is needed"
command=$1; shift
case "$command" in
  submit) cmd_submit "$@";;
  wait) [ $# -eq 1 ] || usage "wait DIR"; cmd_wait "$1";;
  status) [ $# -eq 1 ] || usage "status DIR"; cmd_status "$1";;
  plan) cmd_plan "$@";;
  task) cmd_task "$@";;
  assemble) cmd_assemble "$@";;
  -h|--help|help) sed -n '3,41p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
  *) usage "unknown command '$command'";;
esac
