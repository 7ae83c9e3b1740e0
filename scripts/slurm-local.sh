#!/usr/bin/env bash
# A real single-node SLURM on localhost, for ftlab's SLURM tests and the submit benchmark.
#
#   scripts/slurm-local.sh start    # apt-get installs slurmctld/slurmd/munge if missing, starts all three
#   scripts/slurm-local.sh stop     # stops them by the PIDs in their pid files (slurmd, slurmctld, munged)
#   scripts/slurm-local.sh status   # prints the node line, exit 1 when not running
#   scripts/slurm-local.sh env      # prints `export SLURM_CONF=...` (client commands need it)
#
# Everything lives under $FTLAB_SLURM_DIR (default /tmp/ftlab-slurm): munge key and socket,
# slurm.conf, state, spool, logs, the job-completion log. Facts and pitfalls behind the config
# lines: ../shared/notes/local-slurm.md (measured on Debian 12 with Slurm 22.05).
set -euo pipefail

DIR=${FTLAB_SLURM_DIR:-/tmp/ftlab-slurm}
CONF=$DIR/slurm.conf
NODE=$(hostname -s)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    echo "slurm-local: installing slurmctld slurmd slurm-client munge (Debian packages, ~15 s)"
    $SUDO apt-get update -qq
    # policy-rc.d on these machines keeps the packages from starting services; we start them ourselves.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

alive() { local pid; pid=$(cat "$1" 2>/dev/null) || return 1; kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]; }  # a daemon may remove its pid file as it exits

write_conf() {
    local cpus mem_mb
    cpus=$(nproc)
    # Leave 20% of RAM to the OS and the submitting process; SLURM refuses jobs asking for more.
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    cat > "$CONF" <<CONF
ClusterName=ftlab-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s):
# 10 s keeps the requeue tests short.
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
# The default 3 s batch delay makes a 19-task array crawl. A requeued job becomes eligible again
# after cred_expire, and only a scheduling pass starts it (default every 60 s): every 2 s here.
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default every job takes the whole node's memory and jobs run one at a time.
DefMemPerCPU=512
# Reject impossible requests at sbatch time instead of leaving them pending forever.
EnforcePartLimits=ALL
# afterok/aftercorr on a failed job cancels the dependent job instead of leaving it pending forever.
DependencyParameters=kill_invalid_depend
GresTypes=gpu
# Between SIGTERM and SIGKILL: a tiny model's checkpoint takes well under a second to write.
KillWait=5
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
MinJobAge=600
# Smaller than ftlab's arrays in the tests, so arrays are split as on clusters with a low limit.
MaxArraySize=4
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd here: finished jobs are read back from this file (sacct -c / ftlab's parser).
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
# Twice the cores: the tests run several tiny jobs at once that mostly wait (held evals, paced
# training steps, requeue delays), as a real cluster runs many jobs side by side.
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$((cpus * 2)) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    install
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
        echo "slurm-local: already running ($CONF)"
        return
    fi
    stop >/dev/null 2>&1 || true
    mkdir -p "$DIR"/{munge,state,spool,log}
    chmod 0755 "$DIR" "$DIR/munge"
    if [ ! -f "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom bs=1 count=1024 of="$DIR/munge/munge.key" status=none
        chmod 0400 "$DIR/munge/munge.key"
    fi
    munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"
    write_conf
    local started
    started=$(date +%s)
    export SLURM_CONF=$CONF
    slurmctld -f "$CONF"
    slurmd -f "$CONF" -N "$NODE"
    # After a restart sinfo shows the saved "idle" before slurmd re-registers: wait for a fresh
    # SlurmdStartTime as well as the idle state.
    for _ in $(seq 1 100); do
        local line boot
        line=$(scontrol show node "$NODE" 2>/dev/null || true)
        boot=$(sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p' <<<"$line")
        if grep -q "State=IDLE" <<<"$line" && [ -n "$boot" ] && [ "$boot" != None ] \
            && [ "$(date -d "$boot" +%s 2>/dev/null || echo 0)" -ge $((started - 1)) ]; then
            echo "slurm-local: node $NODE idle; export SLURM_CONF=$CONF"
            return
        fi
        sleep 0.2
    done
    echo "slurm-local: node did not become idle in 20 s; see $DIR/log/" >&2
    scontrol show node "$NODE" >&2 || true
    exit 1
}

stop_pid() {
    local file=$1
    [ -f "$file" ] || return 0
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        # Killed daemons can linger as zombies (state Z) for a second or two: Z counts as stopped.
        for _ in $(seq 1 50); do
            alive "$file" || break
            sleep 0.1
        done
    fi
    rm -f "$file"
}

stop() {
    stop_pid "$DIR/slurmd.pid"
    stop_pid "$DIR/slurmctld.pid"
    stop_pid "$DIR/munge/munged.pid"
    echo "slurm-local: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$CONF sinfo -N -h 2>/dev/null && alive "$DIR/slurmctld.pid" ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
