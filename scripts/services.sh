#!/usr/bin/env bash
# A single-node SLURM (munge, slurmctld, slurmd) and a PostgreSQL server on loopback, for the cluster tests
# and for trying pyiron's queue and database modes on one machine.
#
#   scripts/services.sh start    install Debian's slurm-wlm, munge and postgresql if missing, write the
#                                configuration, start every daemon that is not running (idempotent)
#   scripts/services.sh stop     stop the daemons this script started
#   scripts/services.sh status   say what runs; exit 0 only when SLURM accepts jobs and PostgreSQL accepts logins
#   scripts/services.sh env      print the shell exports that point sbatch and pyiron at the services
#
# The daemons are started directly (no systemd needed) and everything they write lives under
# $PYIRON_SERVICES_DIR (default /var/tmp/pyiron_mlip_tradeoff_services): slurm.conf, SLURM state and logs, the
# PostgreSQL data directory (its own cluster, Debian's "main" cluster is not touched) and pids.
# Settings: PYIRON_SERVICES_PGPORT (default 55432), PYIRON_SERVICES_PGUSER/PGPASSWORD/PGDATABASE
# (default pyiron/pyiron/pyiron). Needs root (apt, the munge and postgres accounts).
set -euo pipefail

STATE=${PYIRON_SERVICES_DIR:-/var/tmp/pyiron_mlip_tradeoff_services}
PGPORT=${PYIRON_SERVICES_PGPORT:-55432}
PGUSER_PYIRON=${PYIRON_SERVICES_PGUSER:-pyiron}
PGPASS_PYIRON=${PYIRON_SERVICES_PGPASSWORD:-pyiron}
PGDB_PYIRON=${PYIRON_SERVICES_PGDATABASE:-pyiron}
SLURM_DIR="$STATE/slurm"
SLURM_CONF_FILE="$SLURM_DIR/slurm.conf"
PGDATA="$STATE/postgres/data"
PGSOCK="$STATE/postgres/socket"
PGLOG="$STATE/postgres/postgres.log"
PG_BIN=""

log() { echo "[services] $*" >&2; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and runs daemons as munge/postgres)"; }

install_packages() {
    local missing=()
    for pkg in slurm-wlm munge postgresql; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

find_pg_bin() {
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# ---- munge ------------------------------------------------------------------------------------------------------
start_munge() {
    if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then return; fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        log "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

# ---- SLURM ------------------------------------------------------------------------------------------------------
write_slurm_conf() {
    local cpus real_mem
    cpus=$(nproc)
    real_mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$SLURM_DIR/ctld" "$SLURM_DIR/slurmd" "$SLURM_DIR/log"
    local conf
    conf=$(cat <<EOF
# Written by pyiron_mlip_tradeoff scripts/services.sh: one node (this machine) on loopback, no accounting daemon.
ClusterName=localcluster
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/ctld
SlurmdSpoolDir=$SLURM_DIR/slurmd
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldPort=${PYIRON_SERVICES_SLURMCTLD_PORT:-6817}
SlurmdPort=${PYIRON_SERVICES_SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)
    if [ ! -f "$SLURM_CONF_FILE" ] || [ "$(cat "$SLURM_CONF_FILE")" != "$conf" ]; then
        printf '%s\n' "$conf" > "$SLURM_CONF_FILE"
        log "wrote $SLURM_CONF_FILE ($cpus CPUs)"
    fi
    # let plain `sbatch` find it, unless the machine has its own SLURM configuration
    if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF_FILE" ]; then
        mkdir -p /etc/slurm
        ln -sfn "$SLURM_CONF_FILE" /etc/slurm/slurm.conf
    fi
}

slurm_ready() {
    SLURM_CONF="$SLURM_CONF_FILE" sinfo -h -N -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'
}

start_slurm() {
    write_slurm_conf
    export SLURM_CONF="$SLURM_CONF_FILE"
    if ! pid_alive "$SLURM_DIR/slurmctld.pid"; then
        log "starting slurmctld"
        /usr/sbin/slurmctld -f "$SLURM_CONF_FILE" -i
    fi
    if ! pid_alive "$SLURM_DIR/slurmd.pid"; then
        log "starting slurmd"
        /usr/sbin/slurmd -f "$SLURM_CONF_FILE" -N localhost
    fi
    for _ in $(seq 100); do
        slurm_ready && return
        # a node left "down" by an earlier unclean stop comes back once told
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        sleep 0.2
    done
    die "SLURM node did not become idle (see $SLURM_DIR/log/)"
}

# ---- PostgreSQL -------------------------------------------------------------------------------------------------
pg() { runuser -u postgres -- "$@"; }

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; }

start_postgres() {
    find_pg_bin
    install -d -o postgres -g postgres -m 0700 "$STATE/postgres" "$PGSOCK"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        log "initialising a PostgreSQL cluster in $PGDATA"
        install -d -o postgres -g postgres -m 0700 "$PGDATA"
        pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$PGDATA/postgresql.conf" <<EOF
# pyiron_mlip_tradeoff scripts/services.sh
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGSOCK'
max_connections = 200
fsync = on
EOF
    fi
    if ! pg_ready; then
        log "starting PostgreSQL on 127.0.0.1:$PGPORT"
        chmod 0711 "$STATE" "$STATE/postgres" 2>/dev/null || true
        pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null
    fi
    pg_ready || die "PostgreSQL did not start (see $PGLOG)"
    local psql=("$PG_BIN/psql" -h "$PGSOCK" -p "$PGPORT" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1)
    if [ "$(pg "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$PGUSER_PYIRON'")" != "1" ]; then
        log "creating database user $PGUSER_PYIRON"
        pg "${psql[@]}" -c "CREATE ROLE \"$PGUSER_PYIRON\" LOGIN PASSWORD '$PGPASS_PYIRON'"
    fi
    if [ "$(pg "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PGDB_PYIRON'")" != "1" ]; then
        log "creating database $PGDB_PYIRON"
        pg "${psql[@]}" -c "CREATE DATABASE \"$PGDB_PYIRON\" OWNER \"$PGUSER_PYIRON\""
    fi
}

stop_postgres() {
    find_pg_bin
    if [ -f "$PGDATA/postmaster.pid" ]; then
        log "stopping PostgreSQL"
        pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    fi
}

# ---- commands ---------------------------------------------------------------------------------------------------
print_env() {
    cat <<EOF
export SLURM_CONF=$SLURM_CONF_FILE
export PYIRONSQLTYPE=Postgres
export PYIRONSQHOST=127.0.0.1:$PGPORT
export PYIRONSQLDATABASE=$PGDB_PYIRON
export PYIRONUSER=$PGUSER_PYIRON
export PYIRONSQLUSERKEY=$PGPASS_PYIRON
EOF
}

stop_pid() {  # stop_pid NAME PIDFILE
    if pid_alive "$2"; then
        log "stopping $1"
        kill "$(cat "$2")"
        for _ in $(seq 50); do pid_alive "$2" || return 0; sleep 0.1; done
        kill -9 "$(cat "$2")" 2>/dev/null || true
    fi
}

cmd=${1:-status}
case "$cmd" in
    start)
        need_root
        mkdir -p "$STATE"
        install_packages
        start_munge
        start_slurm
        start_postgres
        log "ready: SLURM partition 'local' ($(nproc) CPUs), PostgreSQL 127.0.0.1:$PGPORT database $PGDB_PYIRON"
        ;;
    stop)
        need_root
        stop_pid slurmd "$SLURM_DIR/slurmd.pid"
        stop_pid slurmctld "$SLURM_DIR/slurmctld.pid"
        stop_postgres
        # munged is shared with any other SLURM user of the machine; stop it only when asked
        if [ "${2:-}" = "--all" ] && [ -f /run/munge/munged.pid ]; then
            stop_pid munged /run/munge/munged.pid
        fi
        ;;
    status)
        ok=0
        if munge -n </dev/null >/dev/null 2>&1; then echo "munge: running"; else echo "munge: down"; ok=1; fi
        if slurm_ready; then echo "slurm: node idle/ready ($SLURM_CONF_FILE)"; else echo "slurm: down"; ok=1; fi
        find_pg_bin
        if pg_ready; then echo "postgres: accepting connections on 127.0.0.1:$PGPORT"; else echo "postgres: down"; ok=1; fi
        exit $ok
        ;;
    env)
        print_env
        ;;
    *)
        die "usage: $0 start|stop [--all]|status|env"
        ;;
esac
