#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the server tests and exports its URL as
# ROSTER_TEST_POSTGRES. Source it (`. .ci/postgres.sh`), then call `roster_pg_stop` (or
# let the trap that .ci/run sets call it) to stop the cluster and remove its files.
#
# Installs Debian's `postgresql` package when the binaries are missing and CI=true or
# ROSTER_INSTALL_POSTGRES=1. Runs the cluster as an unprivileged user (initdb refuses
# root), listening only on 127.0.0.1 on a free port, with trust auth for local tests.
# Returns 1 when PostgreSQL cannot be installed or does not start; returns 0 without a
# cluster (and without ROSTER_TEST_POSTGRES) only when it is not installed and not asked
# to install it. The PostgreSQL tests are #[ignore]d: `cargo test` lists them as ignored
# with the reason, and .ci/run runs them (`--ignored postgres`) once the cluster is up.

roster_pg_start() {
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        if [ "${CI:-}" = "true" ] || [ "${ROSTER_INSTALL_POSTGRES:-}" = "1" ]; then
            echo "postgres.sh: installing postgresql (apt-get)" >&2
            if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; then
                echo "postgres.sh: cannot install postgresql" >&2
                return 1
            fi
            bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        else
            echo "postgres.sh: postgresql is not installed (set ROSTER_INSTALL_POSTGRES=1 to install it); skipping" >&2
            return 0
        fi
    fi

    local runas=""
    if [ "$(id -u)" = "0" ]; then
        if ! id roster-pg >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin roster-pg
        fi
        runas="roster-pg"
    fi
    ROSTER_PG_DIR=$(mktemp -d /tmp/roster-pg.XXXXXX)
    chmod 700 "$ROSTER_PG_DIR"
    [ -n "$runas" ] && chown "$runas" "$ROSTER_PG_DIR"

    local port=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done

    _roster_pg_as() {
        if [ -n "$runas" ]; then
            su -s /bin/sh "$runas" -c "$*"
        else
            sh -c "$*"
        fi
    }
    _roster_pg_as "'$bindir/initdb' -D '$ROSTER_PG_DIR/data' -U postgres --auth=trust -E UTF8 --locale=C >'$ROSTER_PG_DIR/initdb.log' 2>&1" || {
        echo "postgres.sh: initdb failed; see $ROSTER_PG_DIR/initdb.log" >&2
        return 1
    }
    _roster_pg_as "'$bindir/pg_ctl' -D '$ROSTER_PG_DIR/data' -l '$ROSTER_PG_DIR/server.log' -w -t 60 \
        -o \"-c listen_addresses=127.0.0.1 -p $port -k '$ROSTER_PG_DIR' -c max_connections=300 -c fsync=off\" start >/dev/null" || {
        echo "postgres.sh: the cluster did not start; see $ROSTER_PG_DIR/server.log" >&2
        return 1
    }
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres roster || {
        echo "postgres.sh: createdb failed; see $ROSTER_PG_DIR/server.log" >&2
        return 1
    }
    ROSTER_PG_BIN="$bindir"
    ROSTER_PG_RUNAS="$runas"
    export ROSTER_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/roster"
    echo "postgres.sh: ROSTER_TEST_POSTGRES=$ROSTER_TEST_POSTGRES" >&2
}

roster_pg_stop() {
    if [ -n "${ROSTER_PG_DIR:-}" ] && [ -d "$ROSTER_PG_DIR/data" ]; then
        if [ -n "${ROSTER_PG_RUNAS:-}" ]; then
            su -s /bin/sh "$ROSTER_PG_RUNAS" -c "'$ROSTER_PG_BIN/pg_ctl' -D '$ROSTER_PG_DIR/data' -m fast -w stop" >/dev/null 2>&1 || true
        else
            "$ROSTER_PG_BIN/pg_ctl" -D "$ROSTER_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$ROSTER_PG_DIR"
    fi
    unset ROSTER_PG_DIR
}

# Run directly (`bash .ci/postgres.sh`): start, print the URL, leave it running.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    roster_pg_start
    echo "${ROSTER_TEST_POSTGRES:-}"
    echo "stop it with: pg_ctl -D ${ROSTER_PG_DIR:-?}/data stop (as ${ROSTER_PG_RUNAS:-$(id -un)})" >&2
fi
