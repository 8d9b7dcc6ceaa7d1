#!/usr/bin/env bash
# A real single-node Slurm on localhost, for the sweep tests and for trying `bench sweep --executor slurm`
# on one machine: munged, MariaDB (private datadir) + slurmdbd (so `sacct`, which submitit polls, works),
# slurmctld and slurmd, without systemd. Facts and traps from a probe of
# Debian 12 / Slurm 22.05.8 on this machine kind); no code copied.
#
#   scripts/slurm_local.sh start    install the Debian packages if missing, write the configs, start every
#                                   daemon, wait until the node is idle (~2 s warm, ~10 s from nothing)
#   scripts/slurm_local.sh stop     cancel every job, then stop the daemons by PID (ctld, slurmd, dbd,
#                                   mariadbd, munged), SIGKILL after a grace period
#   scripts/slurm_local.sh status   daemons, `sinfo`, and the SLURM_CONF line clients need
#   scripts/slurm_local.sh env      print `export SLURM_CONF=...` (eval it in the shell that runs tests)
#
# Everything (configs, state, spool, logs, pidfiles, munge key and socket, database) lives under one folder,
# $HENASY_SLURM_DIR (default /tmp/henasy-slurm); clients find the cluster through SLURM_CONF pointing at
# $HENASY_SLURM_DIR/etc/slurm.conf. Nothing is stopped by name: only the PIDs in the pidfiles. Must run as
# root (daemons, apt-get); jobs run as the submitting user.
set -euo pipefail

DIR="${HENASY_SLURM_DIR:-/tmp/henasy-slurm}"
CLUSTER="localci"
DB_PORT="${HENASY_SLURM_DB_PORT:-33306}"
CTLD_PORT="${HENASY_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${HENASY_SLURM_SLURMD_PORT:-16818}"
DBD_PORT="${HENASY_SLURM_DBD_PORT:-16819}"
CONF="$DIR/etc/slurm.conf"
DBD_CONF="$DIR/etc/slurmdbd.conf"
MUNGE_SOCKET="$DIR/munge/munge.socket.2"
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
# Stop order matters: controller first (so it does not mark the node down), then the rest.
DAEMONS=(slurmctld slurmd slurmdbd mariadbd munged)

log() { echo "slurm_local: $*" >&2; }
die() { log "error: $*"; exit 1; }

pidfile() { echo "$DIR/run/$1.pid"; }

# A PID is alive when /proc says so and it is not a zombie (a container's PID 1 may reap exited daemons late).
alive() {
    local pid="$1"
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

daemon_pid() {
    local f
    f="$(pidfile "$1")"
    [ -s "$f" ] && cat "$f" || true
}

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sinfo slurmdbd munged mariadbd mariadb-install-db; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root: install ${PACKAGES[*]} first"
    log "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$DIR/log/apt.log" 2>&1; then
        apt-get update -q >>"$DIR/log/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$DIR/log/apt.log" 2>&1 \
            || die "apt-get install failed; see $DIR/log/apt.log"
    fi
}

write_configs() {
    local cpus mem_kb mem_mb
    cpus="$(nproc)"
    mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    mem_mb=$((mem_kb * 9 / 10 / 1024))
    mkdir -p "$DIR"/{etc,run,log,state,spool,munge,mysql}
    cat >"$CONF.new" <<EOF
# Written by scripts/slurm_local.sh: a single-node test cluster; state under $DIR.
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
# Short kill grace: a requeued or cancelled job (submitit ignores SIGTERM) is SIGKILLed after 2 s, not 30.
KillWait=2
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DBD_CONF.new" <<EOF
# Written by scripts/slurm_local.sh.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$(pidfile slurmdbd)
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DBD_CONF.new"
    # Daemons running on other settings: cancel the jobs and stop them with the old config first (daemons
    # restarted under a changed slurm.conf keep stale state), then install the new files.
    if ! cmp -s "$CONF.new" "$CONF" || ! cmp -s "$DBD_CONF.new" "$DBD_CONF"; then
        if any_alive; then
            log "configuration changed: restarting the daemons"
            cmd_stop
        fi
    fi
    mv -f "$CONF.new" "$CONF"
    mv -f "$DBD_CONF.new" "$DBD_CONF"
}

any_alive() {
    local name
    for name in "${DAEMONS[@]}"; do
        alive "$(daemon_pid "$name")" && return 0
    done
    return 1
}

start_munge() {
    if alive "$(daemon_pid munged)"; then
        link_default_socket
        return 0
    fi
    if [ ! -s "$DIR/munge/munge.key" ]; then
        head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    fi
    chmod 700 "$DIR/munge"
    chmod 400 "$DIR/munge/munge.key"
    munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$(pidfile munged)" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
        || die "munged did not start; see $DIR/log/munged.log"
    link_default_socket
}

# Slurm 22.05 passes AuthInfo's socket to most RPCs but not to the slurmctld -> slurmdbd persistent
# connection, which always dials libmunge's default socket. Point that path at our munged unless another
# munged already owns it.
DEFAULT_MUNGE_SOCKET=/run/munge/munge.socket.2
link_default_socket() {
    if [ -S "$DEFAULT_MUNGE_SOCKET" ] && [ ! -L "$DEFAULT_MUNGE_SOCKET" ]; then
        log "a system munged owns $DEFAULT_MUNGE_SOCKET; using it for slurmctld -> slurmdbd (same key needed)"
        return 0
    fi
    mkdir -p "$(dirname "$DEFAULT_MUNGE_SOCKET")"
    ln -sfn "$MUNGE_SOCKET" "$DEFAULT_MUNGE_SOCKET"
}

unlink_default_socket() {
    if [ -L "$DEFAULT_MUNGE_SOCKET" ] && [ "$(readlink "$DEFAULT_MUNGE_SOCKET")" = "$MUNGE_SOCKET" ]; then
        rm -f "$DEFAULT_MUNGE_SOCKET"
    fi
}

start_mariadb() {
    alive "$(daemon_pid mariadbd)" && return 0
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root --auth-root-authentication-method=normal \
            >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $DIR/log/mariadb-install.log"
    fi
    # No daemon mode (there is no systemd here): its own session, so it outlives this shell.
    setsid mariadbd --no-defaults --datadir="$DIR/mysql" --user=root --bind-address=127.0.0.1 --port="$DB_PORT" \
        --socket="$DIR/run/mysqld.sock" --pid-file="$(pidfile mariadbd)" --skip-grant-tables \
        --log-error="$DIR/log/mariadbd.log" </dev/null >/dev/null 2>&1 &
    wait_for "mariadbd to accept connections" 30 \
        bash -c "exec 3<>/dev/tcp/127.0.0.1/$DB_PORT" || die "mariadbd did not start; see $DIR/log/mariadbd.log"
}

start_slurm() {
    if ! alive "$(daemon_pid slurmdbd)"; then
        # slurmdbd reads slurmdbd.conf from the folder of SLURM_CONF.
        SLURM_CONF="$CONF" slurmdbd || die "slurmdbd did not start; see $DIR/log/slurmdbd.log"
        wait_for "slurmdbd" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$DBD_PORT" || die "slurmdbd not listening"
    fi
    if ! alive "$(daemon_pid slurmctld)"; then
        SLURM_CONF="$CONF" slurmctld -f "$CONF" || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    fi
    if ! alive "$(daemon_pid slurmd)"; then
        SLURM_CONF="$CONF" slurmd -f "$CONF" -N localhost || die "slurmd did not start; see $DIR/log/slurmd.log"
    fi
    wait_for "the node to be idle" 60 node_idle || die "node not idle; see $DIR/log/slurmctld.log and slurmd.log"
}

node_idle() {
    local state
    state="$(SLURM_CONF="$CONF" sinfo -h -N -o %T 2>/dev/null | head -n1)"
    case "$state" in idle | mixed | allocated) return 0 ;; *) return 1 ;; esac
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
    local what="$1" limit="$2"
    shift 2
    local deadline=$((SECONDS + limit))
    while [ "$SECONDS" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    log "timed out after ${limit}s waiting for $what"
    return 1
}

stop_pid() {
    local name="$1" pid
    pid="$(daemon_pid "$name")"
    if ! alive "$pid"; then
        rm -f "$(pidfile "$name")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if alive "$pid"; then
        log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pidfile "$name")"
}

cmd_start() {
    mkdir -p "$DIR/log"
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_slurm
    log "up: $(SLURM_CONF="$CONF" sinfo -h -o '%P %a %l %D %t %N' | head -n1) (state in $DIR)"
    echo "export SLURM_CONF=$CONF"
}

cmd_stop() {
    if [ -f "$CONF" ] && alive "$(daemon_pid slurmctld)"; then
        # Cancel jobs first: slurmstepd outlives slurmd. `scancel --state=RUNNING` without job ids cancels
        # nothing, so list the ids.
        SLURM_CONF="$CONF" squeue -h -o %A 2>/dev/null | xargs -r env SLURM_CONF="$CONF" scancel 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while [ -n "$(SLURM_CONF="$CONF" squeue -h -o %A 2>/dev/null)" ] && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
    fi
    for name in "${DAEMONS[@]}"; do stop_pid "$name"; done
    unlink_default_socket
    log "stopped (state kept in $DIR)"
}

cmd_status() {
    local rc=0
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        local pid
        pid="$(daemon_pid "$name")"
        if alive "$pid"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; rc=1; fi
    done
    if [ "$rc" -eq 0 ]; then
        SLURM_CONF="$CONF" sinfo || rc=1
    fi
    echo "export SLURM_CONF=$CONF"
    return "$rc"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *)
        echo "usage: $0 start|stop|status|env   (state folder: \$HENASY_SLURM_DIR, default /tmp/henasy-slurm)" >&2
        exit 2
        ;;
esac
