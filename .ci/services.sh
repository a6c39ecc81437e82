#!/usr/bin/env bash
# Real services for the tests: a PostgreSQL server and a one-node SLURM cluster (plus munge),
# all from Debian's packages, all state in one temporary folder, run as root.
#
# Usage:
#   bash .ci/services.sh install            # apt-get the packages (skipped when all present)
#   bash .ci/services.sh start              # start postgres + munged + slurmctld + slurmd
#   eval "$(bash .ci/services.sh env)"      # export ASSYST_TEST_POSTGRES, ASSYST_TEST_SLURM, ...
#   bash .ci/services.sh restart-slurmctld  # kill slurmctld, start it again, wait until it answers
#   bash .ci/services.sh stop               # stop everything, remove the state folder (never fails)
#
# Environment (optional):
#   ASSYST_SERVICES_DIR  state folder              (default /tmp/assyst-ci-services)
#   ASSYST_PG_PORT       first PostgreSQL port to try (default 55432; the next free one is used)
#   ASSYST_SLURM_PORT    first of two SLURM ports  (default 16817: slurmctld, +1: slurmd;
#                        the next free pair is used)
#   ASSYST_SERVICES_TIMEOUT  seconds to wait for each service (default 60)
#
# PostgreSQL: database `assyst_test`, superuser role `assyst` (password `assyst`) on
# 127.0.0.1:<port>, trust authentication. SLURM: partition `debug` with this host's cores;
# slurm.conf lives in the state folder (SLURM_CONF, printed by `env`) and is also linked to
# /etc/slurm/slurm.conf when that file does not exist, so plain `sinfo` works too.
set -euo pipefail

STATE="${ASSYST_SERVICES_DIR:-/tmp/assyst-ci-services}"
PG_FIRST_PORT="${ASSYST_PG_PORT:-55432}"
SLURM_PORT="${ASSYST_SLURM_PORT:-16817}"
TIMEOUT="${ASSYST_SERVICES_TIMEOUT:-60}"
PG_BIN=/usr/lib/postgresql/15/bin
PG_DB=assyst_test
PG_ROLE=assyst
PG_PASSWORD=assyst
PARTITION=debug
SLURM_CONF_FILE="$STATE/slurm/slurm.conf"
SYSTEM_SLURM_CONF=/etc/slurm/slurm.conf
MUNGE_KEY=/etc/munge/munge.key
PACKAGES=(postgresql slurm-wlm munge graphviz libxc-dev libopenblas-dev)

log() { printf '[services] %s\n' "$*" >&2; }
die() {
    printf '[services] ERROR: %s\n' "$*" >&2
    exit 1
}

# Print the last lines of a log file (for error messages).
show_log() {
    if [[ -f "$1" ]]; then
        printf '[services] --- last lines of %s ---\n' "$1" >&2
        tail -n 30 "$1" >&2 || true
    fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${seconds}s waiting for: $what"
            return 1
        fi
        sleep 0.2
    done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True while process $1 runs (a zombie counts as gone: here PID 1 reaps orphans only slowly).
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z ]]
}

# Send SIGTERM to the processes in the given pid files, wait up to 10 s, then SIGKILL.
# Never fails.
kill_pidfiles() {
    local pidfile pid pids=() i
    for pidfile in "$@"; do
        [[ -f "$pidfile" ]] || continue
        pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -9 "$pid" 2>/dev/null
    done
    return 0
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# ---------------------------------------------------------------------------------- install
cmd_install() {
    local missing=() pkg status
    for pkg in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    log "installing: ${missing[*]}"
    local aptlog
    aptlog="$(mktemp /tmp/assyst-apt.XXXXXX.log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get -q update >"$aptlog" 2>&1; then
        cat "$aptlog" >&2
        die "apt-get update failed"
    fi
    if ! apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 \
        "${PACKAGES[@]}" >>"$aptlog" 2>&1; then
        tail -n 60 "$aptlog" >&2
        die "apt-get install failed (full log: $aptlog)"
    fi
    rm -f "$aptlog"
    log "installed: ${missing[*]}"
}

# -------------------------------------------------------------------------------- postgres
start_postgres() {
    local port="$PG_FIRST_PORT" pgdata="$STATE/pg/data" sock="$STATE/pg/socket"
    [[ -x "$PG_BIN/pg_ctl" ]] || die "$PG_BIN/pg_ctl not found: run 'bash $0 install'"
    id postgres >/dev/null 2>&1 || die "user postgres missing: run 'bash $0 install'"
    while port_in_use "$port"; do
        port=$((port + 1))
        ((port < PG_FIRST_PORT + 100)) || die "no free port from $PG_FIRST_PORT on"
    done
    mkdir -p "$STATE/pg"
    mkdir -p "$sock"
    chown postgres:postgres "$STATE/pg" "$sock"
    as_postgres "$PG_BIN/initdb" -D "$pgdata" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync >"$STATE/pg/initdb.log" 2>&1 || {
        show_log "$STATE/pg/initdb.log"
        die "initdb failed"
    }
    # a throw-away test server: durability off, for speed
    cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
    as_postgres "$PG_BIN/pg_ctl" -D "$pgdata" -l "$STATE/pg/server.log" -w -t "$TIMEOUT" \
        start >/dev/null || {
        show_log "$STATE/pg/server.log"
        die "PostgreSQL did not start"
    }
    echo "$port" >"$STATE/pg/port"
    as_postgres "$PG_BIN/psql" -h "$sock" -p "$port" -U postgres -d postgres -qtA \
        -v ON_ERROR_STOP=1 >/dev/null <<EOF
CREATE ROLE $PG_ROLE LOGIN SUPERUSER CREATEDB PASSWORD '$PG_PASSWORD';
CREATE DATABASE $PG_DB OWNER $PG_ROLE;
EOF
    psql "$(postgres_url "$port")" -qtAc 'SELECT 1' >/dev/null ||
        die "cannot connect to $(postgres_url "$port")"
    log "postgres: $(postgres_url "$port")"
}

postgres_url() { echo "postgresql://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$1/$PG_DB"; }

stop_postgres() {
    local pgdata="$STATE/pg/data"
    [[ -f "$pgdata/postmaster.pid" ]] || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$pgdata" -m immediate -w -t 20 stop >/dev/null 2>&1 ||
        kill -9 "$(head -n1 "$pgdata/postmaster.pid")" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------- munge
start_munge() {
    local dir="$STATE/munge"
    command -v munged >/dev/null || die "munged not found: run 'bash $0 install'"
    id munge >/dev/null 2>&1 || die "user munge missing: run 'bash $0 install'"
    if [[ ! -s "$MUNGE_KEY" ]]; then
        log "creating $MUNGE_KEY"
        install -d -o munge -g munge -m 0700 "$(dirname "$MUNGE_KEY")"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    install -d -o munge -g munge -m 0755 "$dir"
    (cd / && runuser -u munge -- munged --key-file="$MUNGE_KEY" --socket="$dir/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
        --seed-file="$dir/munged.seed") || {
        show_log "$dir/munged.log"
        die "munged did not start"
    }
    wait_for "$TIMEOUT" "munge credentials" \
        bash -c "munge -n -S '$dir/munge.socket' | unmunge -S '$dir/munge.socket'" || {
        show_log "$dir/munged.log"
        die "munged does not answer"
    }
}

# ---------------------------------------------------------------------------------- slurm
write_slurm_conf() {
    local host cpus mem_kb mem_mb
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    mem_mb=$((mem_kb * 90 / 100 / 1024)) # a bit below the real memory
    while port_in_use "$SLURM_PORT" || port_in_use $((SLURM_PORT + 1)); do
        SLURM_PORT=$((SLURM_PORT + 2))
    done
    mkdir -p "$STATE/slurm/state" "$STATE/slurm/spool"
    cat >"$SLURM_CONF_FILE" <<EOF
# generated by .ci/services.sh -- a one-node test cluster
ClusterName=assyst-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$SLURM_PORT
SlurmdPort=$((SLURM_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# schedule within ~1 s of a submission or completion (defaults wait 3 s and more)
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$STATE/slurm/state
SlurmdSpoolDir=$STATE/slurm/spool
SlurmctldPidFile=$STATE/slurm/slurmctld.pid
SlurmdPidFile=$STATE/slurm/slurmd.pid
SlurmctldLogFile=$STATE/slurm/slurmctld.log
SlurmdLogFile=$STATE/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    # let plain `sinfo`/`sbatch` (without SLURM_CONF) find it, unless the host has its own
    if [[ ! -e "$SYSTEM_SLURM_CONF" && ! -L "$SYSTEM_SLURM_CONF" ]]; then
        mkdir -p "$(dirname "$SYSTEM_SLURM_CONF")"
        ln -s "$SLURM_CONF_FILE" "$SYSTEM_SLURM_CONF"
    fi
}

slurmctld_answers() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
    SLURM_CONF="$SLURM_CONF_FILE" slurmctld "$@" || {
        show_log "$STATE/slurm/slurmctld.log"
        die "slurmctld did not start"
    }
    wait_for "$TIMEOUT" "slurmctld to answer (scontrol ping)" slurmctld_answers || {
        show_log "$STATE/slurm/slurmctld.log"
        die "slurmctld does not answer"
    }
}

node_idle() { [[ "$(sinfo -h -p "$PARTITION" -o '%t' 2>/dev/null)" == idle ]]; }

start_slurm() {
    command -v slurmctld >/dev/null || die "slurmctld not found: run 'bash $0 install'"
    write_slurm_conf
    export SLURM_CONF="$SLURM_CONF_FILE"
    start_slurmctld -c # -c: start with a clean state
    slurmd -N "$(hostname -s)" || {
        show_log "$STATE/slurm/slurmd.log"
        die "slurmd did not start"
    }
    wait_for "$TIMEOUT" "node $(hostname -s) idle in partition $PARTITION" node_idle || {
        sinfo -N -l >&2 || true
        show_log "$STATE/slurm/slurmctld.log"
        show_log "$STATE/slurm/slurmd.log"
        die "SLURM node not idle"
    }
    local out
    out="$(timeout "$TIMEOUT" srun -N1 -p "$PARTITION" hostname)" || die "srun -N1 hostname failed"
    [[ "$out" == "$(hostname)"* || "$out" == "$(hostname -s)"* ]] ||
        die "srun printed '$out', expected $(hostname -s)"
    local job
    job="$(sbatch --parsable -p "$PARTITION" -o "$STATE/slurm/check-%j.out" \
        --wrap 'echo sbatch-ok')" || die "sbatch --wrap refused"
    # (sbatch --wait polls only every few seconds; squeue answers at once)
    wait_for "$TIMEOUT" "sbatch job $job to complete" \
        bash -c "squeue -h -t all -j '$job' -o '%T' | grep -qx COMPLETED" || {
        squeue -t all -j "$job" >&2 || true
        die "sbatch job $job did not complete"
    }
    grep -qx sbatch-ok "$STATE/slurm/check-$job.out" || die "sbatch job $job printed no output"
    touch "$STATE/slurm/ready"
    log "slurm: partition $PARTITION on $(hostname -s), $(nproc) CPUs, SLURM_CONF=$SLURM_CONF"
}

no_jobs_left() { [[ -z "$(squeue -h -o '%A' 2>/dev/null)" ]]; }

stop_slurm() {
    export SLURM_CONF="$SLURM_CONF_FILE"
    local pid jobs
    pid="$(tr -dc '0-9' <"$STATE/slurm/slurmctld.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && alive "$pid"; then
        # cancel what is still queued or running, so that no job outlives the cluster
        jobs="$(timeout 10 squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')"
        if [[ -n "${jobs// /}" ]]; then
            # shellcheck disable=SC2086 # one argument per job id
            timeout 10 scancel $jobs >/dev/null 2>&1
            wait_for 10 "cancelled jobs to end" no_jobs_left
        fi
    fi
    kill_pidfiles "$STATE/slurm/slurmd.pid" "$STATE/slurm/slurmctld.pid" "$STATE/munge/munged.pid"
    if [[ -L "$SYSTEM_SLURM_CONF" && "$(readlink "$SYSTEM_SLURM_CONF")" == "$SLURM_CONF_FILE" ]]; then
        rm -f "$SYSTEM_SLURM_CONF"
    fi
}

cmd_restart_slurmctld() {
    [[ -f "$SLURM_CONF_FILE" ]] || die "no $SLURM_CONF_FILE: run 'bash $0 start' first"
    export SLURM_CONF="$SLURM_CONF_FILE"
    local t0=$SECONDS
    kill_pidfiles "$STATE/slurm/slurmctld.pid"
    start_slurmctld # keeps the saved state: queued and running jobs survive
    # slurmd would re-register only after several seconds (node UNKNOWN till then); a
    # reconfigure makes it register at once
    scontrol reconfigure || die "scontrol reconfigure failed after the slurmctld restart"
    wait_for "$TIMEOUT" "node idle or allocated after slurmctld restart" \
        bash -c "sinfo -h -p '$PARTITION' -o '%t' | grep -Eqx '(idle|mix|alloc)'" || {
        sinfo -N -l >&2 || true
        die "SLURM node not back after slurmctld restart"
    }
    log "slurmctld restarted in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------- graphviz
check_graphviz() {
    dot -V >/dev/null 2>&1 || die "graphviz 'dot -V' failed: run 'bash $0 install'"
    log "graphviz: $(dot -V 2>&1)"
}

# ---------------------------------------------------------------------------------- commands
cmd_start() {
    [[ $EUID -eq 0 ]] || die "run as root"
    if [[ -d "$STATE" ]]; then
        log "state folder $STATE exists: stopping the previous services first"
        cmd_stop
    fi
    mkdir -p "$STATE"
    chmod 0755 "$STATE"
    local t0=$SECONDS
    check_graphviz
    start_postgres
    log "postgres up after $((SECONDS - t0))s"
    start_munge
    start_slurm
    log "all services up after $((SECONDS - t0))s"
}

cmd_stop() {
    set +e
    stop_slurm # and munged
    stop_postgres
    rm -rf "$STATE"
    log "stopped; removed $STATE"
    return 0
}

cmd_env() {
    local found=0
    if [[ -s "$STATE/pg/port" ]]; then
        printf 'export ASSYST_TEST_POSTGRES=%q\n' "$(postgres_url "$(cat "$STATE/pg/port")")"
        found=1
    fi
    if [[ -f "$STATE/slurm/ready" ]]; then
        printf 'export ASSYST_TEST_SLURM=1\n'
        printf 'export SLURM_CONF=%q\n' "$SLURM_CONF_FILE"
        printf 'export ASSYST_TEST_SLURM_PARTITION=%q\n' "$PARTITION"
        found=1
    fi
    ((found)) || die "no services found in $STATE: run 'bash $0 start' first"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
restart-slurmctld) cmd_restart_slurmctld ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
