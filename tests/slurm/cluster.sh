#!/usr/bin/env bash
# A local, single-node, real Slurm (Debian's slurm 22.05) for the tests: munged, mariadb, slurmdbd,
# slurmctld and slurmd, all configured, spooled, logged and pid-filed under one directory.
#
#   bash tests/slurm/cluster.sh start  DIR   # install what is missing, write the config, start, wait for idle
#   bash tests/slurm/cluster.sh stop   DIR   # cancel the jobs, stop exactly the daemons start started
#   bash tests/slurm/cluster.sh status DIR   # exit 0 when every daemon started for DIR runs
#
# Client commands need SLURM_CONF=DIR/slurm.conf; `start` prints that export as its last line.
# Nothing under /etc/slurm is read or written. A munged that already serves the munge socket is
# reused (and then never stopped); a munged started here is left running at stop while another
# DIR's cluster still runs. `start` on a running DIR is a no-op when the config is unchanged, an
# in-place `scontrol reconfigure` when it changed (e.g. SEGKD_SLURM_PREEMPT_USER_SIGNAL, GraceTime),
# and a restart when ports or names changed; on a partly running DIR it stops what is left first.
# `stop` cancels the jobs, stops the daemons by their recorded pids (checked to still be ours), then
# kills whatever they left (a slurmstepd and its job) with its descendants: nothing stays running.
#
# Knobs (environment):
#   SEGKD_SLURM_PREEMPT_USER_SIGNAL  1 (default): SlurmctldParameters=preempt_send_user_signal, so a
#                                    preempted job submitted with --signal=SIG@T gets SIG at preemption;
#                                    0: it gets SIGTERM like every other preempted job
#   SEGKD_SLURM_PORT_BASE            16817 (default): slurmctld, slurmd, slurmdbd, mariadb on base..base+3
#   SEGKD_SLURM_CLUSTER              segkd (default): ClusterName
#   SEGKD_SLURM_GRACE                30 (default): GraceTime (s) of the low partition (SIGTERM -> SIGKILL)
#   SEGKD_SLURM_KILL_WAIT            10 (default): KillWait (s)
#   SEGKD_SLURM_MIN_JOB_AGE          60 (default): MinJobAge (s) a finished job stays in scontrol/squeue
#   SEGKD_SLURM_TIMEOUT              60 (default): bound (s) on each wait of start
#   SEGKD_SLURM_MUNGE_SOCKET         /run/munge/munge.socket.2 (default)
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
LOW=low
HIGH=high

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
ACTION=$1
DIR=$(realpath -m -- "$2")

PREEMPT_USER_SIGNAL=${SEGKD_SLURM_PREEMPT_USER_SIGNAL:-1}
PORT_BASE=${SEGKD_SLURM_PORT_BASE:-16817}
CLUSTER=${SEGKD_SLURM_CLUSTER:-segkd}
GRACE=${SEGKD_SLURM_GRACE:-30}
KILL_WAIT=${SEGKD_SLURM_KILL_WAIT:-10}
MIN_JOB_AGE=${SEGKD_SLURM_MIN_JOB_AGE:-60}
TIMEOUT=${SEGKD_SLURM_TIMEOUT:-60}
MUNGE_SOCKET=${SEGKD_SLURM_MUNGE_SOCKET:-/run/munge/munge.socket.2}

CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
MYSQL_PORT=$((PORT_BASE + 3))
NODE=$(hostname -s)
DB=slurm_acct_db
DBUSER=slurm

RUN=$DIR/run        # our pid files (and the daemons' own)
LOG=$DIR/log
MYSQL_DIR=$DIR/mysql
MYSQL_SOCK=$MYSQL_DIR/mysqld.sock
export SLURM_CONF=$DIR/slurm.conf
# Every daemon started here carries this marker: stop finds what they left (slurmstepd of a job
# still running) by it, never by a process name.
export SEGKD_SLURM_DIR=$DIR

say() { echo "cluster.sh [$(date +%T)]: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------------------------------ processes
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# the SEGKD_SLURM_DIR=... line of process $1's environment, if any
marker_of() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -a '^SEGKD_SLURM_DIR=' || true; }

# The pid recorded for daemon $1, if that process still runs and still is what we started
# (its environment carries our marker, or for munged / mariadbd the recorded exe), else nothing.
recorded_pid() {
  local f=$RUN/$1.ours pid
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  alive "$pid" || return 0
  if marker_of "$pid" | grep -qxF "SEGKD_SLURM_DIR=$DIR"; then
    echo "$pid"
  fi
}

log_tail() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    echo "----- tail of $f" >&2
    tail -n 30 "$f" >&2
  done
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      say "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# launch NAME LOGFILE COMMAND...: start a daemon in the foreground of its own session, record its pid.
launch() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$RUN/$name.ours"
  say "started $name (pid $!)"
}

# ------------------------------------------------------------------------------------------- install
have_binaries() {
  command -v slurmctld && command -v slurmd && command -v sbatch && command -v sacct &&
    command -v slurmdbd && command -v munged && command -v mungekey && command -v mariadbd &&
    command -v mariadb-install-db && command -v mysql
}

ensure_packages() {
  have_binaries >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || die "Slurm packages missing and not root: cannot install ${PACKAGES[*]}"
  command -v apt-get >/dev/null || die "Slurm packages missing and no apt-get to install ${PACKAGES[*]}"
  local t0=$SECONDS
  say "installing ${PACKAGES[*]}"
  # policy-rc.d keeps the packages' postinst from starting the system services (no systemd here anyway)
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}")
  local aptlog=$LOG/apt.log
  if ! "${apt[@]}" >"$aptlog" 2>&1; then
    say "install failed without an update; running apt-get update"
    apt-get update >>"$aptlog" 2>&1 || true
    "${apt[@]}" >>"$aptlog" 2>&1 || { log_tail "$aptlog"; die "apt-get install failed"; }
  fi
  have_binaries >/dev/null 2>&1 || die "packages installed but binaries still missing"
  say "installed in $((SECONDS - t0))s"
}

# -------------------------------------------------------------------------------------------- config
real_memory_mib() {
  local kib mib headroom
  kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  mib=$((kib / 1024))
  headroom=$((mib / 10))
  ((headroom < 512)) && headroom=512
  ((mib - headroom < 256)) && { echo 256; return; }
  echo $((mib - headroom))
}

write_slurm_conf() {  # to $1
  local cpus mem ctld_params=""
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS=1 otherwise
  mem=$(real_memory_mib)
  [[ $PREEMPT_USER_SIGNAL == 1 ]] && ctld_params="SlurmctldParameters=preempt_send_user_signal"
  cat >"$1" <<EOF
# Written by tests/slurm/cluster.sh for $DIR: one node, two partitions, $HIGH preempts $LOW.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
# short scheduler passes: a preemptor starts within seconds of its preemptee's GraceTime ending
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=256
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MinJobAge=$MIN_JOB_AGE
KillWait=$KILL_WAIT
InactiveLimit=0
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
$ctld_params
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$LOW Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=$GRACE
PartitionName=$HIGH Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=10
EOF
}

write_slurmdbd_conf() {
  local pass
  [[ -s $DIR/.dbpass ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DIR/.dbpass")
  pass=$(<"$DIR/.dbpass")
  (umask 077 && cat >"$DIR/slurmdbd.conf" <<EOF
# Written by tests/slurm/cluster.sh for $DIR
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=$DBUSER
StoragePass=$pass
StorageLoc=$DB
EOF
  )
  chmod 600 "$DIR/slurmdbd.conf"
}

# --------------------------------------------------------------------------------------------- munge
munge_works() { munge -n -S "$MUNGE_SOCKET" </dev/null 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    [[ -n $(recorded_pid munged) ]] || say "reusing the munged already serving $MUNGE_SOCKET"
    return 0
  fi
  local keyfile=/etc/munge/munge.key sockdir
  sockdir=$(dirname "$MUNGE_SOCKET")
  if [[ ! -s $keyfile ]]; then
    say "creating $keyfile"
    mungekey --create --keyfile="$keyfile"
    chown munge:munge "$keyfile"
    chmod 600 "$keyfile"
  fi
  install -d -o munge -g munge -m 0755 "$sockdir"
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  launch munged "$LOG/munged.out" setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged -F --socket="$MUNGE_SOCKET" --key-file="$keyfile" --pid-file="$sockdir/munged.pid" \
    --log-file="$LOG/munged.log"
  wait_for "$TIMEOUT" munged munge_works ||
    { log_tail "$LOG/munged.log" "$LOG/munged.out"; die "munged did not start"; }
}

# ------------------------------------------------------------------------------------------- mariadb
mysql_root() { mysql --no-defaults --protocol=socket -S "$MYSQL_SOCK" -u root "$@"; }

start_mariadb() {
  local user=mysql
  # mariadbd drops to the mysql user, which must reach DIR; a private temp dir (mode 700) would not do.
  if ! setpriv --reuid=mysql --regid=mysql --init-groups test -x "$DIR" 2>/dev/null; then
    say "WARNING: the mysql user cannot reach $DIR; running mariadbd as root"
    user=root
  fi
  install -d -o "$user" -g "$user" -m 0750 "$MYSQL_DIR"
  if [[ ! -d $MYSQL_DIR/data/mysql ]]; then
    install -d -o "$user" -g "$user" -m 0750 "$MYSQL_DIR/data"
    mariadb-install-db --no-defaults --datadir="$MYSQL_DIR/data" --user="$user" \
      --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve \
      >"$LOG/mariadb-install-db.log" 2>&1 ||
      { log_tail "$LOG/mariadb-install-db.log"; die "mariadb-install-db failed"; }
  fi
  rm -f "$MYSQL_SOCK"
  launch mariadbd "$LOG/mariadbd.out" /usr/sbin/mariadbd --no-defaults --user="$user" \
    --datadir="$MYSQL_DIR/data" --socket="$MYSQL_SOCK" --pid-file="$MYSQL_DIR/mariadbd.pid" \
    --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$LOG/mariadbd.log" \
    --skip-log-bin --performance-schema=OFF --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --max-connections=40 --innodb-lock-wait-timeout=900
  wait_for "$TIMEOUT" mariadbd mysql_root -e 'SELECT 1' ||
    { log_tail "$LOG/mariadbd.log" "$LOG/mariadbd.out"; die "mariadbd did not start"; }
  local pass
  pass=$(<"$DIR/.dbpass")
  mysql_root <<EOF
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER IF NOT EXISTS '$DBUSER'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS '$DBUSER'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON $DB.* TO '$DBUSER'@'127.0.0.1';
GRANT ALL ON $DB.* TO '$DBUSER'@'localhost';
FLUSH PRIVILEGES;
EOF
}

# ------------------------------------------------------------------------------------------- slurm
dbd_answers() { sacctmgr -n -P list cluster format=cluster; }
# idle on a fresh start; mixed / allocated when a restart kept running jobs
node_idle() { sinfo -h -n "$NODE" -o %T 2>/dev/null | grep -qxE 'idle|mixed|allocated'; }

start_slurm() {
  launch slurmdbd "$LOG/slurmdbd.out" slurmdbd -D
  wait_for "$TIMEOUT" slurmdbd dbd_answers ||
    { log_tail "$LOG/slurmdbd.log" "$LOG/slurmdbd.out"; die "slurmdbd did not answer"; }
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  launch slurmctld "$LOG/slurmctld.out" slurmctld -D -f "$SLURM_CONF"
  launch slurmd "$LOG/slurmd.out" slurmd -D -f "$SLURM_CONF"
  wait_for "$TIMEOUT" "node $NODE idle in sinfo" node_idle || {
    sinfo -N -l >&2 || true
    log_tail "$LOG/slurmctld.log" "$LOG/slurmctld.out" "$LOG/slurmd.log" "$LOG/slurmd.out"
    die "the node did not come up idle"
  }
}

DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)  # stop order

all_running() {
  local d
  for d in slurmd slurmctld slurmdbd mariadbd; do
    [[ -n $(recorded_pid "$d") ]] || return 1
  done
  munge_works
}

any_running() {
  local d
  for d in "${DAEMONS[@]}"; do
    [[ -n $(recorded_pid "$d") ]] && return 0
  done
  return 1
}

# ------------------------------------------------------------------------------------------- actions
do_start() {
  local t0=$SECONDS
  mkdir -p "$DIR" "$RUN" "$LOG" "$DIR/state" "$DIR/spool"
  ensure_packages
  [[ $(id -u) -eq 0 ]] || die "the local cluster runs its daemons as root (SlurmUser=root); run as root"
  : >"$DIR/plugstack.conf"
  write_slurm_conf "$DIR/slurm.conf.new"
  write_slurmdbd_conf

  local fixed='^(ClusterName|SlurmctldHost|SlurmctldPort|SlurmdPort|AccountingStorageHost|AccountingStoragePort)='
  if all_running && ! diff -q <(grep -E "$fixed" "$DIR/slurm.conf.new") <(grep -E "$fixed" "$DIR/slurm.conf") \
    >/dev/null; then
    say "running in $DIR with other ports, hosts or names than asked: restarting"
    do_stop
  fi
  if all_running; then
    if cmp -s "$DIR/slurm.conf.new" "$DIR/slurm.conf"; then
      rm -f "$DIR/slurm.conf.new"
      say "already running in $DIR"
    else
      mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
      scontrol reconfigure
      say "running in $DIR; config changed: reconfigured"
    fi
    wait_for "$TIMEOUT" "slurmctld to answer" sinfo -h || die "slurmctld does not answer"
    echo "export SLURM_CONF=$SLURM_CONF"
    return 0
  fi
  if any_running; then
    say "partly running in $DIR: stopping it first"
    do_stop
  fi
  mv "$DIR/slurm.conf.new" "$DIR/slurm.conf"
  start_munge
  start_mariadb
  start_slurm
  say "up in $((SECONDS - t0))s: $(sinfo -h -o '%P %a %D %T' | tr '\n' ' ')"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# pids of live processes that carry our marker (or are our slurmd's slurmstepd) and are not among $@
# (the recorded daemons), nor us.
marked_leftovers() {
  local p skip
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    skip=0
    for s in "$@"; do [[ $p == "$s" ]] && skip=1; done
    ((skip)) && continue
    if marker_of "$p" | grep -qxF "SEGKD_SLURM_DIR=$DIR" || stepd_of_dir "$p"; then echo "$p"; fi
  done
  return 0
}

# whether process $1 is a slurmstepd of this DIR's slurmd: slurmd starts them with an empty
# environment (no marker), but they keep slurmd's log and their sockets under DIR open
stepd_of_dir() {
  local f
  [[ $(readlink "/proc/$1/exe" 2>/dev/null) == */slurmstepd* ]] || return 1
  for f in /proc/"$1"/fd/*; do
    [[ $(readlink "$f" 2>/dev/null) == "$DIR"/* ]] && return 0
  done
  return 1
}

# another cluster (another DIR) whose slurmctld still runs: it may use the munged we started
other_cluster_alive() {
  local p other pid
  for p in /proc/[0-9]*; do
    other=$(marker_of "${p#/proc/}" | sed -n 's/^SEGKD_SLURM_DIR=//p')
    [[ -n $other && $other != "$DIR" && -f $other/run/slurmctld.ours ]] || continue
    pid=$(<"$other/run/slurmctld.ours")
    alive "$pid" && { echo "$other"; return 0; }
  done
  return 1
}

# pid and all its descendants (children first is not needed: we SIGKILL them together)
with_descendants() {
  local todo=("$@") out=() p c
  while ((${#todo[@]})); do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    out+=("$p")
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do todo+=("$c"); done
  done
  echo "${out[@]}"
}

# stop_pids NAME=PID...: SIGTERM them together, wait up to 20 s, then SIGKILL what is left
stop_pids() {
  local item i left
  for item in "$@"; do kill -TERM "${item#*=}" 2>/dev/null || true; done
  for ((i = 0; i < 200; i++)); do
    left=()
    for item in "$@"; do alive "${item#*=}" && left+=("$item"); done
    ((${#left[@]})) || break
    sleep 0.1
  done
  for item in "${left[@]}"; do
    say "${item%%=*} (pid ${item#*=}) ignored SIGTERM for 20s: SIGKILL"
    kill -KILL "${item#*=}" 2>/dev/null || true
  done
  for item in "$@"; do
    for ((i = 0; i < 50; i++)); do alive "${item#*=}" || break; sleep 0.1; done
    if alive "${item#*=}"; then
      say "WARNING: ${item%%=*} (pid ${item#*=}) still alive"
    else
      say "stopped ${item%%=*} (pid ${item#*=})"
    fi
  done
}

do_stop() {
  [[ -d $DIR ]] || { say "nothing in $DIR"; return 0; }
  local t0=$SECONDS ctld d pid other pids=()
  ctld=$(recorded_pid slurmctld)
  if [[ -n $ctld && -n $(recorded_pid slurmd) ]]; then
    # end the jobs first, so that no slurmstepd or job process outlives slurmd
    if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
      scancel --full $(squeue -h -o %i) 2>/dev/null || true
      wait_for $((KILL_WAIT + 15)) "the jobs to end" bash -c '[[ -z $(squeue -h -t R,CG,S -o %i) ]]' || true
    fi
  fi
  # in three waves: the Slurm daemons, then slurmdbd (it flushes to the database), then the rest
  local wave batch
  for wave in "slurmd slurmctld" "slurmdbd" "mariadbd munged"; do
    batch=()
    for d in $wave; do
      pid=$(recorded_pid "$d")
      if [[ -n $pid && $d == munged ]] && other=$(other_cluster_alive); then
        say "leaving munged (pid $pid) running: the cluster in $other still uses it"
        pids+=("$pid")
      elif [[ -n $pid ]]; then
        pids+=("$pid")
        batch+=("$d=$pid")
      fi
    done
    ((${#batch[@]})) && stop_pids "${batch[@]}"
    for d in $wave; do rm -f "$RUN/$d.ours"; done
  done
  # whatever our daemons left behind (a slurmstepd and its tasks): found by our marker, killed with
  # their descendants
  local left
  left=$(marked_leftovers "${pids[@]}")
  if [[ -n $left ]]; then
    local all
    all=$(with_descendants $left)
    say "killing leftovers of $DIR: $all"
    kill -KILL $all 2>/dev/null || true
  fi
  rm -f "$MYSQL_SOCK"
  say "stopped $DIR in $((SECONDS - t0))s"
}

do_status() {
  local d pid rc=0
  for d in "${DAEMONS[@]}"; do
    pid=$(recorded_pid "$d")
    if [[ -n $pid ]]; then
      echo "$d: running (pid $pid)"
    elif [[ $d == munged ]] && munge_works; then
      echo "$d: not ours, a munged serves $MUNGE_SOCKET"
    else
      echo "$d: stopped"
      rc=3
    fi
  done
  if ((rc == 0)); then
    sinfo -o '%P %a %D %T %N' || rc=3
  fi
  return $rc
}

case $ACTION in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) usage ;;
esac
