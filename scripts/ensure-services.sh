#!/usr/bin/env bash
# Make sure the local database services the test suite needs are installed, running and
# reachable on loopback:
#
#   PostgreSQL  127.0.0.1:5432, `psql -h 127.0.0.1 -U postgres` works without a password,
#               and `initdb` exists (tests start throwaway clusters with it).
#   MariaDB     127.0.0.1:3306, `mariadb -uroot -h127.0.0.1` works with an empty password.
#
# Idempotent. Silent and fast (well under a second) when everything is already up; prints one
# line per repair action to stderr; prints an error and exits non-zero when a service cannot be
# made ready. Only ever talks to loopback and to the configured Debian package mirrors.
#
# Environment knobs:
#   ENSURE_SERVICES_TIMEOUT   seconds to wait for each service to accept connections (30)
set -euo pipefail

readonly PG_PORT=5432
readonly MY_PORT=3306
readonly WAIT_SECS="${ENSURE_SERVICES_TIMEOUT:-30}"
# Markers recording that *this script* installed/created a service, which is the only case in
# which we loosen authentication (trust on loopback / empty root password) for the test machine.
readonly MARK_DIR=/var/lib/connhub-ensure-services

# fd 3 is the real stderr, so errors still show when raised inside `quietly` (which captures 1/2).
exec 3>&2
note() { echo "ensure-services: $*" >&3; }
die() {
    echo "ensure-services: ERROR: $*" >&3
    exit 1
}

if [[ ${EUID} -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()
fi
as_root() {
    if [[ ${EUID} -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
        die "need root (or passwordless sudo) to run: $*"
    fi
    "${SUDO[@]}" "$@"
}

# Run a command with its output captured; show the output only if it fails.
quietly() {
    local log rc=0
    log="$(mktemp)"
    "$@" >"${log}" 2>&1 || rc=$?
    if [[ ${rc} -ne 0 ]]; then
        echo "ensure-services: command failed (exit ${rc}): $*" >&3
        tail -n 40 "${log}" >&3
    fi
    rm -f "${log}"
    return "${rc}"
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    if [[ ${APT_UPDATED} -eq 0 ]]; then
        note "apt-get update"
        quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
            die "apt-get update failed"
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    quietly as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" ||
        die "apt-get install $* failed"
}

mark() { as_root mkdir -p "${MARK_DIR}" && as_root touch "${MARK_DIR}/$1"; }
marked() { [[ -e "${MARK_DIR}/$1" ]]; }

wait_for() { # wait_for <check-function>: poll it for up to WAIT_SECS seconds
    local deadline=$((SECONDS + WAIT_SECS))
    until "$1"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.2
    done
}

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------
pg_alive() { # server answers on the port (whatever the authentication outcome)
    pg_isready -q -h 127.0.0.1 -p "${PG_PORT}" -t 3 >/dev/null 2>&1
}

pg_ready() {
    PGCONNECT_TIMEOUT=3 psql -X -h 127.0.0.1 -p "${PG_PORT}" -U postgres -d postgres \
        -Atqc 'select 1' </dev/null >/dev/null 2>&1
}

initdb_present() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

pg_binaries_present() {
    command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 &&
        command -v pg_ctlcluster >/dev/null 2>&1 &&
        command -v pg_lsclusters >/dev/null 2>&1 && initdb_present
}

# Prints "<version> <cluster> <status>" for the cluster configured on PG_PORT, if any.
pg_cluster_on_port() {
    pg_lsclusters -h 2>/dev/null | awk -v port="${PG_PORT}" '$3 == port { print $1, $2, $4; exit }'
}

newest_pg_version() {
    find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
        awk -F/ '{ print $4 }' | sort -V | tail -n 1
}

pg_trust_loopback() { # pg_trust_loopback <version> <cluster>
    local hba="/etc/postgresql/$1/$2/pg_hba.conf"
    [[ -f ${hba} ]] || die "cannot find ${hba}"
    if grep -q '^# connhub ensure-services: trust loopback' "${hba}"; then
        return 0
    fi
    note "PostgreSQL $1/$2: trusting 127.0.0.1/::1 in pg_hba.conf (cluster installed by this script)"
    local tmp
    tmp="$(mktemp)"
    {
        echo '# connhub ensure-services: trust loopback (test machine; cluster installed by this script)'
        echo 'host    all    all    127.0.0.1/32    trust'
        echo 'host    all    all    ::1/128         trust'
        cat "${hba}"
    } >"${tmp}"
    as_root cp "${tmp}" "${hba}"
    rm -f "${tmp}"
    quietly as_root pg_ctlcluster --skip-systemctl-redirect "$1" "$2" reload || true
}

ensure_postgres() {
    if pg_ready && initdb_present; then
        return 0
    fi

    if ! pg_binaries_present; then
        apt_install postgresql postgresql-contrib
        mark postgresql-installed
        pg_binaries_present || die "PostgreSQL packages installed but psql/pg_ctlcluster/initdb still missing"
    fi

    local info version cluster status start_out=""
    info="$(pg_cluster_on_port)"
    if [[ -z ${info} ]]; then
        version="$(newest_pg_version)"
        [[ -n ${version} ]] || die "no PostgreSQL server version found under /usr/lib/postgresql"
        if [[ -d /etc/postgresql/${version}/main ]]; then
            die "cluster ${version}/main exists but is not on port ${PG_PORT}; check pg_lsclusters"
        fi
        note "creating PostgreSQL cluster ${version}/main on port ${PG_PORT}"
        quietly as_root pg_createcluster -p "${PG_PORT}" "${version}" main ||
            die "pg_createcluster ${version} main failed"
        mark postgresql-installed
        info="$(pg_cluster_on_port)"
        [[ -n ${info} ]] || die "created cluster ${version}/main but pg_lsclusters does not show it on port ${PG_PORT}"
    fi
    read -r version cluster status <<<"${info}"

    if marked postgresql-installed; then
        pg_trust_loopback "${version}" "${cluster}"
    fi

    if [[ ${status} != online* ]]; then
        note "starting PostgreSQL ${version}/${cluster}"
        as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql
        # A failure here may just mean a concurrent run started it first; the wait below decides.
        start_out="$(as_root pg_ctlcluster --skip-systemctl-redirect "${version}" "${cluster}" start 2>&1)" ||
            true
    fi

    if ! wait_for pg_alive; then
        [[ -n ${start_out} ]] && echo "${start_out}" >&3
        die "PostgreSQL ${version}/${cluster} does not answer on 127.0.0.1:${PG_PORT} after ${WAIT_SECS}s; see /var/log/postgresql/postgresql-${version}-${cluster}.log"
    fi
    local tries=0
    until pg_ready || ((++tries >= 10)); do sleep 0.2; done # e.g. a pg_hba reload still landing
    if ! pg_ready; then
        local why
        why="$(PGCONNECT_TIMEOUT=3 psql -X -h 127.0.0.1 -p "${PG_PORT}" -U postgres -d postgres \
            -Atqc 'select 1' </dev/null 2>&1 | head -n 3 || true)"
        die "PostgreSQL ${version}/${cluster} answers but 'psql -h 127.0.0.1 -U postgres' fails: ${why}"
    fi
    initdb_present || die "initdb not found (expected in /usr/lib/postgresql/*/bin)"
}

# --------------------------------------------------------------------------------------------
# MariaDB
# --------------------------------------------------------------------------------------------
readonly MARIADBD=/usr/sbin/mariadbd

my_ready() {
    mariadb --no-defaults -uroot -h127.0.0.1 -P"${MY_PORT}" --connect-timeout=3 -Nse 'select 1' \
        </dev/null >/dev/null 2>&1
}

my_alive() { # mariadb-admin ping succeeds even when access is denied
    mariadb-admin --no-defaults -uroot -h127.0.0.1 -P"${MY_PORT}" --connect-timeout=3 ping \
        </dev/null >/dev/null 2>&1
}

my_binaries_present() {
    [[ -x ${MARIADBD} ]] && command -v mariadb >/dev/null 2>&1 && command -v mariadb-admin >/dev/null 2>&1
}

# Value of a mariadbd option as the server would see it from its option files.
my_option() {
    "${MARIADBD}" --print-defaults 2>/dev/null | tr ' ' '\n' | sed -n "s/^--$1=//p" | tail -n 1
}

my_running() { # a live (non-zombie) server process exists
    ps -eo stat=,comm= 2>/dev/null | awk '$1 !~ /^Z/ && ($2 == "mariadbd" || $2 == "mysqld") { found = 1 } END { exit !found }'
}

my_open_root_on_loopback() {
    # Fresh Debian installs give root@localhost unix_socket auth only. As OS root we can still log
    # in over the socket; give root an empty password on loopback TCP (test machine only).
    note "MariaDB: allowing root with an empty password on 127.0.0.1 (server installed by this script)"
    quietly as_root mariadb -uroot --connect-timeout=5 -e "
        ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        FLUSH PRIVILEGES;" ||
        die "could not configure MariaDB root login on 127.0.0.1"
}

ensure_mariadb() {
    if my_ready; then
        return 0
    fi

    if ! my_binaries_present; then
        apt_install mariadb-server mariadb-client
        mark mariadb-installed
        my_binaries_present || die "mariadb-server installed but ${MARIADBD}/mariadb/mariadb-admin still missing"
    fi

    local datadir socket errlog
    datadir="$(my_option datadir)"
    datadir="${datadir:-/var/lib/mysql}"
    socket="$(my_option socket)"
    socket="${socket:-/run/mysqld/mysqld.sock}"
    errlog="$(my_option log-error)"

    if ! my_running; then
        as_root install -d -o mysql -g mysql -m 755 "$(dirname "${socket}")"
        if [[ ! -d ${datadir}/mysql ]]; then
            note "initialising MariaDB data directory ${datadir}"
            as_root install -d -o mysql -g mysql -m 750 "${datadir}"
            quietly as_root mariadb-install-db --user=mysql --datadir="${datadir}" --skip-test-db ||
                die "mariadb-install-db failed for ${datadir}"
            mark mariadb-installed
        fi
        note "starting MariaDB"
        local user_opt=()
        [[ ${EUID} -eq 0 || ${#SUDO[@]} -gt 0 ]] && user_opt=(--user=mysql)
        quietly as_root start-stop-daemon --start --oknodo --background --exec "${MARIADBD}" \
            -- "${user_opt[@]}" || die "start-stop-daemon could not launch ${MARIADBD}"
    fi

    if ! wait_for my_alive; then
        die "MariaDB does not answer on 127.0.0.1:${MY_PORT} after ${WAIT_SECS}s${errlog:+; see ${errlog}}"
    fi
    if ! my_ready && marked mariadb-installed; then
        my_open_root_on_loopback
    fi
    if ! my_ready; then
        local why
        why="$(mariadb --no-defaults -uroot -h127.0.0.1 -P"${MY_PORT}" --connect-timeout=3 \
            -Nse 'select 1' </dev/null 2>&1 | head -n 3 || true)"
        die "MariaDB answers but 'mariadb -uroot -h127.0.0.1' fails: ${why}"
    fi
}

ensure_postgres
ensure_mariadb
