#!/usr/bin/env bash
# A local Keycloak (the OpenID Connect provider of the tests and of development), no Docker:
# the keycloak-quarkus-dist zip from Maven Central, run under a JDK >= 21 in dev mode
# (`kc.sh start-dev`, its H2 file database, plain HTTP on 127.0.0.1).
#
# Usage: deploy/local/keycloak.sh up|down|status|env
#   up      start it unless it runs, wait until ready, print the `export ...` lines on stdout;
#           reports `keycloak: started: keycloak|none` on stderr.
#   down    stop it (graceful, then kill) and remove its data (realms, users, keys).
#   status  exit 0 when it runs and is ready.
#   env     print the export lines only.
#
# The distribution is resolved once into SPM_CACHE_DIR/keycloak-<version> (the zip through
# Maven, so ~/.m2 keeps it) and built there by its first start (Quarkus "augmentation": about
# 1-2 minutes on 2 cores, once per cache). Each run directory gets a home of its own that links
# the distribution's read-only parts and keeps its own data/, so several test sessions with
# different SPM_RUN_DIR and ports can run one each.
#
# Settings (environment): SPM_KEYCLOAK_PORT (18180), SPM_KEYCLOAK_MANAGEMENT_PORT (port + 10:
# health), SPM_KEYCLOAK_VERSION (26.7.3), SPM_KEYCLOAK_JAVA_HOME (default: the first JDK >= 21
# among JAVA_HOME, `java` and /usr/lib/jvm/*), SPM_KEYCLOAK_JVM_OPTS (C1 + serial GC, 512 MiB
# heap: quicker start on 2 cores), SPM_KEYCLOAK_READY_TIMEOUT (400 s), SPM_RUN_DIR
# (/tmp/spm-infra), SPM_CACHE_DIR (<repo>/.cache). The bootstrap administrator is `admin` with
# a password made once per run directory (printed as KEYCLOAK_ADMIN_PASSWORD).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

KC_VERSION="${SPM_KEYCLOAK_VERSION:-26.7.3}"
KC_HOST=127.0.0.1
KC_PORT="${SPM_KEYCLOAK_PORT:-18180}"
KC_MGMT_PORT="${SPM_KEYCLOAK_MANAGEMENT_PORT:-$((KC_PORT + 10))}"
RUN_DIR="${SPM_RUN_DIR:-/tmp/spm-infra}"
CACHE_DIR="${SPM_CACHE_DIR:-$REPO_ROOT/.cache}"
KC_READY_TIMEOUT="${SPM_KEYCLOAK_READY_TIMEOUT:-400}"
KC_JVM_OPTS="${SPM_KEYCLOAK_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms64m -Xmx512m -XX:MetaspaceSize=96M -XX:MaxMetaspaceSize=256m -XX:+ExitOnOutOfMemoryError -Dfile.encoding=UTF-8 -Djava.security.egd=file:/dev/urandom}"

KC_DIST="$CACHE_DIR/keycloak-$KC_VERSION"
KC_HOME="$RUN_DIR/keycloak"
KC_PID="$RUN_DIR/keycloak.pid"
LOG_DIR="$RUN_DIR/logs"
KC_LOG="$LOG_DIR/keycloak.log"
KC_ADMIN=admin
KC_ADMIN_PASSWORD_FILE="$RUN_DIR/keycloak-admin-password"

log() { echo "keycloak: $*" >&2; }
die() { echo "keycloak: ERROR: $*" >&2; exit 1; }

show_tail() {
    [[ -s "$1" ]] || return 0
    echo "----- last ${2:-40} lines of $1 -----" >&2
    tail -n "${2:-40}" "$1" >&2 || true
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

lock() {  # one caller at a time per run directory
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    exec 9>"$RUN_DIR/.keycloak.lock"
    flock -w 600 9 || die "could not lock $RUN_DIR/.keycloak.lock within 600 s"
}

admin_password() {
    [[ -s "$KC_ADMIN_PASSWORD_FILE" ]] || {
        head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$KC_ADMIN_PASSWORD_FILE"
        chmod 600 "$KC_ADMIN_PASSWORD_FILE"
    }
    cat "$KC_ADMIN_PASSWORD_FILE"
}

export_lines() {
    echo "export KEYCLOAK_URL=http://$KC_HOST:$KC_PORT"
    echo "export KEYCLOAK_ADMIN=$KC_ADMIN"
    echo "export KEYCLOAK_ADMIN_PASSWORD=$(admin_password)"
}

java_major() {  # java binary -> its major version
    "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

find_java_home() {  # a JDK >= 21 (Keycloak 26 needs it; Kafka is happy with Debian's 17)
    local candidate v
    for candidate in "${SPM_KEYCLOAK_JAVA_HOME:-}" "${JAVA_HOME:-}" \
            "$(dirname "$(dirname "$(readlink -f "$(command -v java || echo /nonexistent)")")")" \
            /usr/lib/jvm/*; do
        [[ -n "$candidate" && -x "$candidate/bin/java" ]] || continue
        v="$(java_major "$candidate/bin/java")"
        if [[ -n "$v" && "$v" -ge 21 ]]; then echo "$candidate"; return 0; fi
    done
    return 1
}

ensure_java() {
    if KC_JAVA_HOME="$(find_java_home)"; then return 0; fi
    if [[ "$(id -u)" == 0 ]] && apt-cache show openjdk-21-jre-headless >/dev/null 2>&1; then
        log "installing openjdk-21-jre-headless from Debian packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            openjdk-21-jre-headless >&2
        KC_JAVA_HOME="$(find_java_home)" && return 0
    fi
    die "Keycloak $KC_VERSION needs a JDK >= 21: none found (set SPM_KEYCLOAK_JAVA_HOME)"
}

ensure_dist() {  # the unpacked distribution in the cache (caller holds the cache lock)
    [[ -f "$KC_DIST/.complete" ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn is needed to fetch Keycloak (apt-get install maven)"
    if ! command -v unzip >/dev/null 2>&1; then
        [[ "$(id -u)" == 0 ]] || die "unzip is needed (apt-get install unzip)"
        log "installing unzip from Debian packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends unzip >&2
    fi
    local tmp="$KC_DIST.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "resolving org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip from Maven Central"
    if ! mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip" \
            -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
        show_tail "$tmp.mvn.log" 40
        rm -rf "$tmp"
        die "mvn could not resolve Keycloak $KC_VERSION (log: $tmp.mvn.log)"
    fi
    log "unpacking Keycloak $KC_VERSION into $KC_DIST"
    unzip -q "$tmp/keycloak-quarkus-dist-$KC_VERSION.zip" -d "$tmp"
    rm -rf "$KC_DIST"
    mv "$tmp/keycloak-$KC_VERSION" "$KC_DIST"
    rm -rf "$tmp" "$tmp.mvn.log"
    touch "$KC_DIST/.complete"
}

prepare_home() {  # the run directory's home: links to the distribution, its own data/
    mkdir -p "$KC_HOME/bin" "$KC_HOME/data"
    local part
    for part in conf lib providers themes; do ln -sfn "$KC_DIST/$part" "$KC_HOME/$part"; done
    # a copy, not a link: kc.sh finds its home from its own resolved path
    cp "$KC_DIST/bin/kc.sh" "$KC_HOME/bin/kc.sh"
}

kc_pid() {
    [[ -f "$KC_PID" ]] || return 1
    local pid
    pid="$(cat "$KC_PID" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # kc.sh, or the JVM it execs after building (kc.home.dir=$KC_HOME/bin/..): ours, not a reuse
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$KC_HOME/bin/" || return 1
    echo "$pid"
}

kc_ready() {
    "$(command -v python3)" - "http://$KC_HOST:$KC_MGMT_PORT/health/ready" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

kc_launch() {
    if port_open "$KC_PORT"; then
        die "port $KC_PORT is in use by a process this script did not start (set SPM_KEYCLOAK_PORT)"
    fi
    ensure_java
    prepare_home
    log "starting Keycloak $KC_VERSION on $KC_HOST:$KC_PORT with $KC_JAVA_HOME (log: $KC_LOG)"
    echo "=== $(date -Is) start" >>"$KC_LOG"
    rm -f "$KC_PID"
    # shellcheck disable=SC2016  # $$ and $@ expand in the child shell
    JAVA_HOME="$KC_JAVA_HOME" JAVA_OPTS="$KC_JVM_OPTS" KC_BOOTSTRAP_ADMIN_USERNAME="$KC_ADMIN" \
        KC_BOOTSTRAP_ADMIN_PASSWORD="$(admin_password)" \
        setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KC_PID" \
        "$KC_HOME/bin/kc.sh" start-dev --http-host="$KC_HOST" --http-port="$KC_PORT" \
        --http-management-port="$KC_MGMT_PORT" --health-enabled=true \
        </dev/null >>"$KC_LOG" 2>&1 9>&- 8>&- &
    local _
    for _ in $(seq 1 50); do [[ -s "$KC_PID" ]] && break; sleep 0.1; done
}

kc_wait_ready() {
    local deadline=$((SECONDS + KC_READY_TIMEOUT)) started=$SECONDS
    until kc_ready; do
        if ! kc_pid >/dev/null; then
            show_tail "$KC_LOG" 40
            die "Keycloak exited during startup; see $KC_LOG"
        fi
        if ((SECONDS >= deadline)); then
            show_tail "$KC_LOG" 40
            kc_stop
            die "Keycloak not ready within ${KC_READY_TIMEOUT}s; see $KC_LOG"
        fi
        if (((SECONDS - started) % 15 == 0)); then log "waiting for Keycloak ($((SECONDS - started)) s)"; fi
        sleep 1
    done
    log "ready on http://$KC_HOST:$KC_PORT after $((SECONDS - started)) s"
}

kc_stop() {
    local pid
    if ! pid="$(kc_pid)"; then rm -f "$KC_PID"; return 0; fi
    log "stopping Keycloak (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true  # kc.sh forwards it to the JVM
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "Keycloak did not stop within 30 s, killing it"
        pkill -KILL -P "$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$KC_PID"
}

case "${1:-}" in
    up)
        lock
        if kc_pid >/dev/null; then
            kc_wait_ready
            log "started: none"
        else
            mkdir -p "$CACHE_DIR"
            exec 8>"$CACHE_DIR/keycloak-$KC_VERSION.lock"  # one download and one build per cache
            flock -w 900 8 || die "could not lock the Keycloak cache within 900 s"
            ensure_dist
            kc_launch
            if [[ ! -f "$KC_DIST/.built" ]]; then  # the first start builds into the cache
                log "first start of this distribution: Quarkus builds it once (1-2 min)"
                kc_wait_ready
                touch "$KC_DIST/.built"
            fi
            flock -u 8
            kc_wait_ready
            log "started: keycloak"
        fi
        export_lines
        ;;
    down)
        lock
        kc_stop
        rm -rf "$KC_HOME" "$KC_ADMIN_PASSWORD_FILE"
        log "stopped; removed its data in $KC_HOME (log kept: $KC_LOG)"
        ;;
    status)
        if kc_pid >/dev/null && kc_ready; then
            echo "keycloak: running (http://$KC_HOST:$KC_PORT)"
        else
            echo "keycloak: stopped"; exit 1
        fi
        ;;
    env)
        export_lines
        ;;
    *)
        echo "usage: $0 up|down|status|env" >&2
        exit 2
        ;;
esac
