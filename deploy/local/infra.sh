#!/usr/bin/env bash
# Local infrastructure for tests and development: a single-node Kafka (KRaft, combined
# broker+controller) and a throwaway PostgreSQL cluster, both on 127.0.0.1, no Docker.
#
# Usage: deploy/local/infra.sh up|down|status|env|kafka-stop|kafka-start|pg-stop|pg-start
#   up           start what is not running yet (reuses what runs), wait until ready, then print
#                the `export ...` lines on stdout. Reports `infra: started: <what>|none` on stderr.
#   down         stop both (graceful, then kill) and remove their throwaway data directories.
#   status       one line per component; exit 0 only when both run.
#   env          print the export lines only.
#   kafka-stop   stop the broker only, keeping its data (broker-outage tests).
#   kafka-start  start the broker again on its existing data and wait until ready.
#   pg-stop      stop PostgreSQL only, keeping its data (database-outage tests).
#   pg-start     start PostgreSQL (creating the cluster when new) and wait until ready.
#
# Settings (environment):
#   SPM_KAFKA_PORT (19092), SPM_KAFKA_CONTROLLER_PORT (19093), SPM_PG_PORT (55432),
#   SPM_RUN_DIR (/tmp/spm-infra: data, pid files, logs/), SPM_CACHE_DIR (<repo>/.cache: jars),
#   SPM_KAFKA_VERSION (the <kafka.version> of deploy/local/kafka/pom.xml),
#   SPM_KAFKA_HEAP (512m), SPM_KAFKA_JVM_OPTS (see below),
#   SPM_KAFKA_READY_TIMEOUT (90), SPM_PG_READY_TIMEOUT (30),
#   SPM_PG_BIN (directory with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin).
#
# Kafka readiness = the broker process is alive AND it answers a Kafka Metadata request (v4)
# listing at least one broker. The data-plane listener only starts serving requests once the
# broker has registered with the controller and been unfenced, so an answer means producers and
# consumers can work. The probe speaks the Kafka wire protocol from a few lines of plain python3
# (no venv, no JVM start per poll: ~30 ms each).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${SPM_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SPM_KAFKA_CONTROLLER_PORT:-19093}"
PG_HOST=127.0.0.1
PG_PORT="${SPM_PG_PORT:-55432}"
RUN_DIR="${SPM_RUN_DIR:-/tmp/spm-infra}"
CACHE_DIR="${SPM_CACHE_DIR:-$REPO_ROOT/.cache}"
KAFKA_VERSION="${SPM_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")}"
KAFKA_HEAP="${SPM_KAFKA_HEAP:-512m}"
# C1-only JIT + serial GC: the broker is ready in ~6 s instead of ~11-18 s on 2 cores (restarts
# matter: broker-outage tests). For throughput runs (bench) pass e.g.
# SPM_KAFKA_JVM_OPTS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20".
KAFKA_JVM_OPTS="${SPM_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
KAFKA_READY_TIMEOUT="${SPM_KAFKA_READY_TIMEOUT:-90}"
PG_READY_TIMEOUT="${SPM_PG_READY_TIMEOUT:-30}"

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_PID="$RUN_DIR/kafka.pid"
PG_DATA="$RUN_DIR/pg"
LOG_DIR="$RUN_DIR/logs"
KAFKA_LOG="$LOG_DIR/kafka.log"      # log4j2 output of the broker
KAFKA_OUT="$LOG_DIR/kafka.out"      # JVM stdout/stderr (crashes before logging starts)
PG_LOG="$LOG_DIR/postgres.log"

STARTED=()

log() { echo "infra: $*" >&2; }
die() { echo "infra: ERROR: $*" >&2; exit 1; }

export_lines() {
    echo "export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_HOST:$KAFKA_PORT"
    echo "export DATABASE_URL=postgresql+asyncpg://spm@$PG_HOST:$PG_PORT/spm"
}

show_tail() {  # file [lines]
    local f="$1" n="${2:-40}"
    if [[ -s "$f" ]]; then
        echo "----- last $n lines of $f -----" >&2
        tail -n "$n" "$f" >&2 || true
        echo "----- end of $f -----" >&2
    fi
}

port_open() {  # port
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

python_bin() {
    local p
    for p in "${SPM_PYTHON:-}" python3 /usr/bin/python3; do
        if [[ -n "$p" ]] && command -v "$p" >/dev/null 2>&1; then echo "$p"; return 0; fi
    done
    die "python3 is needed for the Kafka readiness probe"
}

lock() {  # serialise up/down/kafka-* between concurrent callers (e.g. two test sessions)
    mkdir -p "$RUN_DIR"
    chmod 755 "$RUN_DIR" 2>/dev/null || true  # the PostgreSQL user must traverse it
    exec 9>"$RUN_DIR/.lock"
    flock -w 300 9 || die "could not lock $RUN_DIR/.lock within 300 s"
}

apt_install() {  # packages...
    [[ "$(id -u)" == 0 ]] || die "missing $*: install it (apt-get install -y $*) or run as root"
    log "installing $* from Debian packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------

ensure_java() {
    if ! command -v java >/dev/null 2>&1; then apt_install openjdk-17-jre-headless; fi
    local v
    v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, found: $(java -version 2>&1 | head -n1)"
}

ensure_kafka_jars() {
    if [[ -f "$KAFKA_HOME/.complete" ]]; then return 0; fi
    command -v mvn >/dev/null 2>&1 || apt_install maven
    log "resolving Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    mkdir -p "$KAFKA_HOME"
    local tmp="$KAFKA_HOME/libs.tmp.$$" mvnlog="$KAFKA_HOME/mvn.log"
    rm -rf "$tmp"
    if ! (cd "$SCRIPT_DIR/kafka" && mvn -q -B -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp") \
            >"$mvnlog" 2>&1; then
        rm -rf "$tmp"
        show_tail "$mvnlog" 60
        die "mvn could not resolve Kafka $KAFKA_VERSION (log: $mvnlog)"
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    touch "$KAFKA_HOME/.complete"
}

kafka_pid() {  # prints the pid of our broker when it runs
    [[ -f "$KAFKA_PID" ]] || return 1
    local pid
    pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # guard against pid reuse: must be a JVM running kafka.Kafka on our config
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $KAFKA_PROPS" || return 1
    echo "$pid"
}

kafka_probe() {  # exit 0 when the broker answers a Metadata request with >= 1 broker
    "$(python_bin)" - "$KAFKA_HOST" "$KAFKA_PORT" <<'PY'
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])
client = b"spm-infra-probe"
# Request header v1 + Metadata v4 body (topics = null -> all, allow_auto_topic_creation = false)
body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">ib", -1, 0)
try:
    with socket.create_connection((host, port), timeout=3) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(body)) + body)

        def read(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError("connection closed")
                buf += chunk
            return buf

        (size,) = struct.unpack(">i", read(4))
        resp = read(size)
except (OSError, EOFError) as e:
    print(f"probe: {e}", file=sys.stderr)
    sys.exit(1)
corr, _throttle, nbrokers = struct.unpack_from(">iii", resp, 0)
sys.exit(0 if corr == 7 and nbrokers >= 1 else 1)
PY
}

write_kafka_config() {
    mkdir -p "$KAFKA_DATA" "$LOG_DIR"
    cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/infra.sh -- single node KRaft, throwaway, 127.0.0.1 only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$KAFKA_LOG4J" <<EOF
# Generated by deploy/local/infra.sh
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $KAFKA_LOG
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafkaRequest.name = kafka.request.logger
logger.kafkaRequest.level = WARN
logger.stateChange.name = state.change.logger
logger.stateChange.level = WARN
EOF
}

kafka_java_cmd() {  # main-class args... -> the java command line, in array KAFKA_CMD
    local opts
    read -r -a opts <<<"$KAFKA_JVM_OPTS"
    KAFKA_CMD=(java -Xms128m -Xmx"$KAFKA_HEAP" "${opts[@]}" -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$LOG_DIR"
        -cp "$KAFKA_LIBS/*" "$@")
}

kafka_start() {  # starts the broker (formatting storage when new), waits until ready
    kafka_launch
    kafka_wait_ready
}

kafka_launch() {  # starts the broker unless it runs (formatting storage when new); no waiting
    if kafka_pid >/dev/null; then return 0; fi
    if port_open "$KAFKA_PORT"; then
        die "port $KAFKA_PORT is in use by a process this script did not start (no live pid in $KAFKA_PID). Stop it, choose SPM_KAFKA_PORT, or point KAFKA_BOOTSTRAP_SERVERS at it."
    fi
    if port_open "$KAFKA_CONTROLLER_PORT"; then
        die "controller port $KAFKA_CONTROLLER_PORT is in use (set SPM_KAFKA_CONTROLLER_PORT)"
    fi
    ensure_java
    ensure_kafka_jars
    local fresh=0
    [[ -f "$KAFKA_DATA/meta.properties" ]] || fresh=1
    write_kafka_config
    if [[ "$fresh" == 1 ]]; then
        : >"$KAFKA_LOG"
        local cid
        # A Kafka Uuid: 16 random bytes, base64url without padding (what `random-uuid` prints).
        cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | sed 's/^-/A/')"
        log "formatting Kafka storage in $KAFKA_DATA (cluster id $cid)"
        kafka_java_cmd kafka.tools.StorageTool format --config "$KAFKA_PROPS" \
            --cluster-id "$cid" --ignore-formatted
        if ! "${KAFKA_CMD[@]}" </dev/null >"$KAFKA_OUT" 2>&1; then
            show_tail "$KAFKA_OUT"
            die "formatting Kafka storage failed (log: $KAFKA_OUT)"
        fi
    fi
    log "starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (log: $KAFKA_LOG)"
    echo "=== $(date -Is) start" >>"$KAFKA_OUT"
    # All fds redirected: a caller capturing our output (subprocess.run) must not wait on the
    # JVM, and fd 9 (our lock) closed so the broker does not hold the lock for its lifetime.
    kafka_java_cmd kafka.Kafka "$KAFKA_PROPS"
    rm -f "$KAFKA_PID"
    # shellcheck disable=SC2016  # $$ and $@ expand in the child shell
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" "${KAFKA_CMD[@]}" \
        </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
    local _
    for _ in $(seq 1 50); do [[ -s "$KAFKA_PID" ]] && break; sleep 0.1; done
    STARTED+=(kafka)
}

kafka_wait_ready() {
    local deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
    while true; do
        if ! kafka_pid >/dev/null; then
            show_tail "$KAFKA_OUT" 20
            show_tail "$KAFKA_LOG" 60
            die "Kafka exited during startup; see $KAFKA_LOG and $KAFKA_OUT"
        fi
        if port_open "$KAFKA_PORT" && kafka_probe 2>/dev/null; then
            log "kafka ready on $KAFKA_HOST:$KAFKA_PORT"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_tail "$KAFKA_OUT" 20
            show_tail "$KAFKA_LOG" 60
            kafka_stop || true
            die "Kafka not ready within ${KAFKA_READY_TIMEOUT}s on $KAFKA_HOST:$KAFKA_PORT; see $KAFKA_LOG"
        fi
        sleep 0.5
    done
}

kafka_stop() {  # graceful stop, kill after 30 s; keeps data
    local pid
    if ! pid="$(kafka_pid)"; then
        rm -f "$KAFKA_PID"
        return 0
    fi
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "Kafka did not stop within 30 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

PG_BIN=""
PG_USER=""

find_pg_bin() {
    if [[ -n "${SPM_PG_BIN:-}" ]]; then echo "$SPM_PG_BIN"; return 0; fi
    local d
    d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    [[ -n "$d" && -x "$d/initdb" ]] || return 1
    echo "$d"
}

ensure_pg_bin() {
    [[ -n "$PG_BIN" ]] && return 0
    if ! PG_BIN="$(find_pg_bin)"; then
        apt_install postgresql
        PG_BIN="$(find_pg_bin)" || die "no initdb found under /usr/lib/postgresql/*/bin"
    fi
    # initdb/postgres refuse to run as root: use an unprivileged system user then.
    if [[ "$(id -u)" == 0 ]]; then
        if id -u postgres >/dev/null 2>&1; then
            PG_USER=postgres
        else
            id -u spm >/dev/null 2>&1 \
                || useradd --system --no-create-home --shell /usr/sbin/nologin spm
            PG_USER=spm
        fi
    fi
}

pg_as() {  # runs a PostgreSQL server binary as the unprivileged user when we are root
    if [[ -n "$PG_USER" ]]; then
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        "$@"
    fi
}

pg_running() {
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
    ensure_pg_bin
    pg_as "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_ready() {
    "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres 2>/dev/null
}

pg_start() {
    ensure_pg_bin
    mkdir -p "$LOG_DIR"
    if pg_running; then
        pg_wait_ready
        pg_create_db
        return 0
    fi
    if port_open "$PG_PORT"; then
        die "port $PG_PORT is in use by a server this script did not start (no cluster running in $PG_DATA). Stop it, choose SPM_PG_PORT, or point DATABASE_URL at it."
    fi
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        chmod 700 "$PG_DATA"
        [[ -z "$PG_USER" ]] || chown "$PG_USER" "$PG_DATA"
        : >"$PG_LOG"
        log "initdb in $PG_DATA"
        if ! pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
                --no-locale --no-sync >"$LOG_DIR/initdb.log" 2>&1; then
            show_tail "$LOG_DIR/initdb.log"
            die "initdb failed (log: $LOG_DIR/initdb.log)"
        fi
        cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- deploy/local/infra.sh: throwaway cluster, speed over durability ---
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    [[ -z "$PG_USER" ]] || { touch "$PG_LOG"; chown "$PG_USER" "$PG_LOG"; }
    log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $PG_LOG)"
    if ! pg_as "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_READY_TIMEOUT" \
            </dev/null >/dev/null 2>&1 9>&-; then
        show_tail "$PG_LOG"
        die "PostgreSQL did not start within ${PG_READY_TIMEOUT}s on $PG_HOST:$PG_PORT; see $PG_LOG"
    fi
    STARTED+=(postgres)
    pg_wait_ready
    pg_create_db
}

pg_wait_ready() {
    local deadline=$((SECONDS + PG_READY_TIMEOUT))
    until pg_ready; do
        if ((SECONDS >= deadline)); then
            show_tail "$PG_LOG"
            die "PostgreSQL not ready within ${PG_READY_TIMEOUT}s on $PG_HOST:$PG_PORT; see $PG_LOG"
        fi
        sleep 0.2
    done
}

pg_create_db() {  # role spm + database spm, idempotent (psql over TCP: no OS user needed)
    local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres)
    if [[ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='spm'")" != 1 ]]; then
        "${psql[@]}" -d postgres -c "CREATE ROLE spm LOGIN SUPERUSER" >&2
    fi
    if [[ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='spm'")" != 1 ]]; then
        "${psql[@]}" -d postgres -c "CREATE DATABASE spm OWNER spm" >&2
    fi
    log "postgres ready on $PG_HOST:$PG_PORT (database spm)"
}

pg_stop() {
    [[ -f "$PG_DATA/postmaster.pid" ]] || return 0
    ensure_pg_bin
    log "stopping PostgreSQL"
    if ! pg_as "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 30 >/dev/null 2>&1; then
        pg_as "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 10 >/dev/null 2>&1 || true
        local pid
        pid="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            log "PostgreSQL did not stop, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
}

# ---------------------------------------------------------------------------------------------

status() {
    local rc=0 pid
    if pid="$(kafka_pid)" && kafka_probe 2>/dev/null; then
        echo "kafka: running (pid $pid, $KAFKA_HOST:$KAFKA_PORT, Kafka $KAFKA_VERSION)"
    elif pid="$(kafka_pid)"; then
        echo "kafka: starting or unresponsive (pid $pid, $KAFKA_HOST:$KAFKA_PORT)"; rc=1
    else
        echo "kafka: stopped"; rc=1
    fi
    if [[ -f "$PG_DATA/postmaster.pid" ]] && pg_running && pg_ready; then
        echo "postgres: running ($PG_HOST:$PG_PORT, data $PG_DATA)"
    else
        echo "postgres: stopped"; rc=1
    fi
    return "$rc"
}

cmd="${1:-}"
case "$cmd" in
    up)
        lock
        kafka_launch      # the JVM boots while PostgreSQL is set up
        pg_start
        kafka_wait_ready
        log "started: ${STARTED[*]:-none}"
        export_lines
        ;;
    down)
        lock
        kafka_stop
        pg_stop
        rm -rf "$KAFKA_DIR" "$PG_DATA"
        log "stopped; removed $KAFKA_DIR and $PG_DATA (logs kept in $LOG_DIR)"
        ;;
    kafka-stop)
        lock
        kafka_stop
        ;;
    kafka-start)
        lock
        kafka_start
        log "started: ${STARTED[*]:-none}"
        ;;
    pg-stop)  # for outage tests on a private set (SPM_RUN_DIR, SPM_PG_PORT); keeps data
        lock
        pg_stop
        ;;
    pg-start)
        lock
        pg_start
        log "started: ${STARTED[*]:-none}"
        ;;
    status)
        status
        ;;
    env)
        export_lines
        ;;
    *)
        echo "usage: $0 up|down|status|env|kafka-stop|kafka-start|pg-stop|pg-start" >&2
        exit 2
        ;;
esac
