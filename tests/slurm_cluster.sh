# shellcheck shell=bash disable=SC2034  # SLURM_CLUSTER_REASON is read by the test that sources this file
# A throw-away single-node Slurm for the tests (sourced, bash): munged with its
# own key, slurmctld and slurmd in the foreground (-D), without systemd, all
# state in one temporary folder. Runs as root (the test's CI does).
#   slurm_cluster_start DIR   start it (returns 0 when a job can be scheduled,
#                             1 with the reason in SLURM_CLUSTER_REASON)
#   slurm_cluster_stop        stop what slurm_cluster_start started, by pid
# After a start, SLURM_CONF points at the cluster's slurm.conf, so sbatch,
# squeue and scontrol talk to it.

SLURM_CLUSTER_PIDS=()
SLURM_CLUSTER_WATCHDOG=""
SLURM_CLUSTER_REASON=""

slurm_cluster_free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

slurm_cluster_start() {
  local dir=$1 d

  for d in munged mungekey slurmctld slurmd sbatch squeue scontrol; do
    if ! command -v "$d" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$d" ]; then
      SLURM_CLUSTER_REASON="$d is not installed (Debian: apt-get install slurm-wlm munge)"
      return 1
    fi
  done
  export PATH="$PATH:/usr/sbin"
  if [ "$(id -u)" != 0 ]; then
    SLURM_CLUSTER_REASON="the test cluster runs its daemons as root; this is uid $(id -u)"
    return 1
  fi
  mkdir -p "$dir"/{munge,state,spool,log}
  chmod 700 "$dir/munge"
  if ! mungekey --create --keyfile="$dir/munge/munge.key" >/dev/null 2>&1; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 600 "$dir/munge/munge.key"
  munged --foreground --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" \
    >"$dir/log/munged.out" 2>&1 &
  SLURM_CLUSTER_PIDS+=($!)
  local host cpus mem ctld_port d_port
  host=$(hostname -s)
  cpus=$(slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
  mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$cpus" ] || cpus=$(nproc)
  [ -n "$mem" ] || mem=1000
  ctld_port=$(slurm_cluster_free_port) && d_port=$(slurm_cluster_free_port) || {
    SLURM_CLUSTER_REASON="no free TCP port for slurmctld/slurmd"; return 1; }
  cat >"$dir/slurm.conf" <<CONF
ClusterName=vaerepro-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  export SLURM_CONF="$dir/slurm.conf"
  # munged must answer before the Slurm daemons authenticate through it.
  local i
  for i in $(seq 1 50); do
    [ -S "$dir/munge/munge.sock" ] && break
    sleep 0.1
  done
  if [ ! -S "$dir/munge/munge.sock" ]; then
    SLURM_CLUSTER_REASON="munged did not start: $(tail -3 "$dir/log/munged.out" "$dir/log/munged.log" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 &
  SLURM_CLUSTER_PIDS+=($!)
  slurmd -D -f "$dir/slurm.conf" >"$dir/log/slurmd.out" 2>&1 &
  SLURM_CLUSTER_PIDS+=($!)
  # Should the test itself be killed outright (a ctest timeout), a watchdog in
  # its own session stops these daemons, by pid, once the test's shell is gone.
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; shift
                  kill -TERM "$@" 2>/dev/null; sleep 3; kill -KILL "$@" 2>/dev/null' \
    watchdog "$$" "${SLURM_CLUSTER_PIDS[@]}" </dev/null >/dev/null 2>&1 &
  SLURM_CLUSTER_WATCHDOG=$!
  for i in $(seq 1 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      return 0
    fi
    sleep 1
  done
  SLURM_CLUSTER_REASON="the node did not become idle in 60 s: $(sinfo -h -N -o '%N %T %E' 2>&1 | head -2 | tr '\n' ' ') $(tail -3 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
  return 1
}

slurm_cluster_stop() {
  local pid i
  # Cancel what is left and let it end, then stop the daemons (slurmd,
  # slurmctld, munged) by pid, and the watchdog.
  if [ -n "${SLURM_CONF:-}" ] && [ ${#SLURM_CLUSTER_PIDS[@]} -gt 2 ]; then
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for ((i = ${#SLURM_CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${SLURM_CLUSTER_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  for ((i = ${#SLURM_CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${SLURM_CLUSTER_PIDS[$i]}
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SLURM_CLUSTER_PIDS=()
  if [ -n "${SLURM_CLUSTER_WATCHDOG:-}" ]; then
    kill -TERM "$SLURM_CLUSTER_WATCHDOG" 2>/dev/null || true
    wait "$SLURM_CLUSTER_WATCHDOG" 2>/dev/null || true
    SLURM_CLUSTER_WATCHDOG=""
  fi
}
