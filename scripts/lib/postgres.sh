# Private PostgreSQL servers for ./scripts/dev and ./scripts/test (sourced, not run).
#
# Postgres refuses to run as root, so when these scripts run as root the server
# runs as the `postgres` system user, on a data directory that user owns.

rgw_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

rgw_as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian's package, when no initdb exists anywhere.
rgw_pg_find_bin() {
    local dir
    for dir in ${RGW_PG_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

rgw_pg_ensure_installed() {
    if ! RGW_PG_BIN=$(rgw_pg_find_bin); then
        rgw_log "PostgreSQL server not found: installing Debian's postgresql package"
        rgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        rgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        RGW_PG_BIN=$(rgw_pg_find_bin) || { echo "PostgreSQL install failed" >&2; return 1; }
    fi
    export RGW_PG_BIN
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        rgw_log "creating the postgres system user (initdb refuses to run as root)"
        useradd --system --no-create-home --shell /bin/sh postgres
    fi
}

# Run a Postgres binary as the right user.
rgw_pg_run() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

rgw_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# rgw_pg_start DATA_DIR [PORT] — init (once) and start a server on 127.0.0.1.
# Sets RGW_PG_DATA, RGW_PG_PORT and RGW_PG_URL (superuser `postgres`, database `postgres`).
rgw_pg_start() {
    local data=$1 port=${2:-}
    [ -n "$port" ] || port=$(rgw_free_port)
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$data"
        chmod 700 "$data"
        if ! runuser -u postgres -- test -w "$data"; then
            echo "the postgres user cannot reach $data (a parent directory is not traversable); move the checkout or set RGW_PG_DATA_ROOT" >&2
            return 1
        fi
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        rgw_pg_run "$RGW_PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
            || { cat "$data.initdb.log" >&2; return 1; }
    fi
    # Loopback only, no Unix socket outside the data directory; trust auth is safe on a private loopback server.
    rgw_pg_run "$RGW_PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c max_connections=400 -c shared_buffers=256MB" \
        start >/dev/null || { cat "$data/server.log" >&2; return 1; }
    RGW_PG_DATA=$data
    RGW_PG_PORT=$port
    RGW_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export RGW_PG_DATA RGW_PG_PORT RGW_PG_URL
}

rgw_pg_stop() {
    local data=${1:-${RGW_PG_DATA:-}}
    [ -n "$data" ] && [ -f "$data/postmaster.pid" ] || return 0
    rgw_pg_run "$RGW_PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}
