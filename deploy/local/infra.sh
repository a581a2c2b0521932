#!/usr/bin/env bash
# Local infrastructure for tests and development: a single-node Kafka (KRaft, combined
# broker+controller) and a throwaway PostgreSQL cluster, both on 127.0.0.1, no Docker.
#
# Usage: deploy/local/infra.sh up [--secure]|down|status|env|kafka-stop|kafka-start
#                                |kafka-kill N|kafka-start-node N|pg-stop|pg-start
#   up           start what is not running yet (reuses what runs), wait until ready, then print
#                the `export ...` lines on stdout. Reports `infra: started: <what>|none` on stderr.
#   down         stop both (graceful, then kill) and remove their throwaway data directories.
#   status       one line per component; exit 0 only when both run.
#   env          print the export lines only.
#   kafka-stop   stop the broker(s) only, keeping their data (broker-outage tests).
#   kafka-start  start the broker(s) again on their existing data and wait until ready.
#   kafka-kill N        SIGKILL broker node N (1..SPM_KAFKA_BROKERS), keeping its data.
#   kafka-start-node N  start node N again on its data and wait until it serves.
#   pg-stop      stop PostgreSQL only, keeping its data (database-outage tests).
#   pg-start     start PostgreSQL (creating the cluster when new) and wait until ready.
#
# Modes (the same settings must be given to every command of one set of infrastructure):
#   SPM_SECURE=1 (or `up --secure`): a throwaway CA made with openssl signs a server certificate
#     for 127.0.0.1/localhost; Kafka listens with SASL_SSL only (SCRAM-SHA-512 user `spm`,
#     created at storage format with --add-scram; brokers talk to each other over SASL_SSL too)
#     and PostgreSQL with ssl=on, TCP connections only over TLS with a password (hostssl).
#     The export lines then carry the CA path and the credentials (KAFKA_SECURITY_PROTOCOL,
#     KAFKA_SASL_*, KAFKA_SSL_CAFILE, DATABASE_SSLMODE=verify-full, DATABASE_SSL_ROOT_CERT).
#   SPM_KAFKA_BROKERS=3: a KRaft cluster of N combined broker+controller nodes with an N-voter
#     quorum. Node i listens on SPM_KAFKA_PORT+2(i-1) and its controller on
#     SPM_KAFKA_CONTROLLER_PORT+2(i-1) (defaults: 19092/19093, 19094/19095, 19096/19097);
#     internal topics get replication 3 and min.insync.replicas 2.
#
# Settings (environment):
#   SPM_KAFKA_PORT (19092), SPM_KAFKA_CONTROLLER_PORT (19093), SPM_PG_PORT (55432),
#   SPM_RUN_DIR (/tmp/spm-infra: data, pid files, logs/), SPM_CACHE_DIR (<repo>/.cache: jars),
#   SPM_KAFKA_VERSION (the <kafka.version> of deploy/local/kafka/pom.xml),
#   SPM_KAFKA_HEAP (512m), SPM_KAFKA_JVM_OPTS (see below),
#   SPM_KAFKA_READY_TIMEOUT (90), SPM_PG_READY_TIMEOUT (30),
#   SPM_PG_BIN (directory with initdb/pg_ctl; default: newest /usr/lib/postgresql/*/bin),
#   SPM_SECURE (0), SPM_KAFKA_BROKERS (1).
#
# Kafka readiness = the broker process is alive AND it answers a Kafka Metadata request (v4)
# listing at least one broker. The data-plane listener only starts serving requests once the
# broker has registered with the controller and been unfenced, so an answer means producers and
# consumers can work. The probe speaks the Kafka wire protocol from a few lines of plain python3
# (no venv, no JVM start per poll: ~30 ms each). In the secure mode, where the listener wants TLS
# and SASL first, readiness is the broker's own "Kafka Server started" line since its launch:
# KRaft logs it once the broker is unfenced.
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

SECURE="${SPM_SECURE:-0}"
[[ "${2:-}" == "--secure" ]] && SECURE=1
KAFKA_BROKERS="${SPM_KAFKA_BROKERS:-1}"
[[ "$KAFKA_BROKERS" =~ ^[1-9]$ ]] || { echo "infra: SPM_KAFKA_BROKERS must be 1..9" >&2; exit 2; }

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
PG_DATA="$RUN_DIR/pg"
LOG_DIR="$RUN_DIR/logs"
PG_LOG="$LOG_DIR/postgres.log"
CLUSTER_ID_FILE="$RUN_DIR/kafka-cluster-id"
TLS_DIR="$RUN_DIR/tls"              # secure mode: ca.crt, server.{crt,key,pem}, passwords
CA_CERT="$TLS_DIR/ca.crt"
SASL_USER=spm

# One Kafka node's paths and ports; node 1 keeps the single-broker names.
kafka_node() {  # N -> sets NODE, KAFKA_DIR, KAFKA_PORT_N, KAFKA_CPORT_N and the file names
    NODE="$1"
    local sfx=""
    [[ "$NODE" == 1 ]] || sfx="-$NODE"
    KAFKA_DIR="$RUN_DIR/kafka$sfx"
    KAFKA_DATA="$KAFKA_DIR/data"
    KAFKA_PROPS="$KAFKA_DIR/server.properties"
    KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
    KAFKA_PID="$RUN_DIR/kafka$sfx.pid"
    KAFKA_LOG="$LOG_DIR/kafka$sfx.log"      # log4j2 output of the broker
    KAFKA_OUT="$LOG_DIR/kafka$sfx.out"      # JVM stdout/stderr (crashes before logging starts)
    KAFKA_MARK="$KAFKA_DIR/log-offset"     # size of KAFKA_LOG at launch (secure readiness)
    KAFKA_PORT_N=$((KAFKA_PORT + 2 * (NODE - 1)))
    KAFKA_CPORT_N=$((KAFKA_CONTROLLER_PORT + 2 * (NODE - 1)))
}
kafka_node 1

nodes() { seq 1 "$KAFKA_BROKERS"; }

bootstrap_list() {
    local n out=""
    for n in $(nodes); do out+="${out:+,}$KAFKA_HOST:$((KAFKA_PORT + 2 * (n - 1)))"; done
    echo "$out"
}

quorum_voters() {
    local n out=""
    for n in $(nodes); do out+="${out:+,}$n@$KAFKA_HOST:$((KAFKA_CONTROLLER_PORT + 2 * (n - 1)))"; done
    echo "$out"
}

secret() {  # name -> a password kept in TLS_DIR (made once)
    local f="$TLS_DIR/$1"
    [[ -s "$f" ]] || { head -c 18 /dev/urandom | base64 | tr '+/' 'xy' >"$f"; chmod 600 "$f"; }
    cat "$f"
}

STARTED=()

log() { echo "infra: $*" >&2; }
die() { echo "infra: ERROR: $*" >&2; exit 1; }

export_lines() {
    echo "export KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_list)"
    if [[ "$SECURE" == 1 ]]; then
        echo "export KAFKA_SECURITY_PROTOCOL=SASL_SSL"
        echo "export KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
        echo "export KAFKA_SASL_USERNAME=$SASL_USER"
        echo "export KAFKA_SASL_PASSWORD=$(secret kafka_sasl_password)"
        echo "export KAFKA_SSL_CAFILE=$CA_CERT"
        echo "export DATABASE_URL=postgresql+asyncpg://spm:$(secret pg_password)@$PG_HOST:$PG_PORT/spm"
        echo "export DATABASE_SSLMODE=verify-full"
        echo "export DATABASE_SSL_ROOT_CERT=$CA_CERT"
    else
        echo "export DATABASE_URL=postgresql+asyncpg://spm@$PG_HOST:$PG_PORT/spm"
    fi
}

# ---------------------------------------------------------------------------------------------
# Throwaway CA (secure mode)
# ---------------------------------------------------------------------------------------------

ensure_tls() {  # CA + server certificate for 127.0.0.1/localhost, made once per RUN_DIR
    mkdir -p "$TLS_DIR"
    chmod 755 "$TLS_DIR"  # the PostgreSQL user reads the certificate copies from its data dir
    [[ -s "$TLS_DIR/server.pem" ]] && return 0
    command -v openssl >/dev/null 2>&1 || apt_install openssl
    log "making a throwaway CA and server certificate in $TLS_DIR"
    local ossl="$TLS_DIR/openssl.log"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=spm-local-throwaway-ca" \
            -keyout "$TLS_DIR/ca.key" -out "$CA_CERT" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
            -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr"
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
            "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash" >"$TLS_DIR/server.ext"
        openssl x509 -req -days 7 -in "$TLS_DIR/server.csr" -CA "$CA_CERT" \
            -CAkey "$TLS_DIR/ca.key" -CAcreateserial -extfile "$TLS_DIR/server.ext" \
            -out "$TLS_DIR/server.crt"
    } >"$ossl" 2>&1 || { show_tail "$ossl"; die "openssl failed (log: $ossl)"; }
    chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
    # Kafka's PEM key store: the unencrypted PKCS#8 key and the chain in one file
    cat "$TLS_DIR/server.key" "$TLS_DIR/server.crt" >"$TLS_DIR/server.pem"
    chmod 600 "$TLS_DIR/server.pem"
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

kafka_probe() {  # exit 0 when the broker serves: the secure listener wants TLS, see the top
    if [[ "$SECURE" == 1 ]]; then
        local from
        from="$(cat "$KAFKA_MARK" 2>/dev/null || echo 0)"
        tail -c +"$((from + 1))" "$KAFKA_LOG" 2>/dev/null | grep -q "Kafka Server started"
        return
    fi
    kafka_metadata_probe
}

kafka_metadata_probe() {  # exit 0 when the broker answers a Metadata request with >= 1 broker
    "$(python_bin)" - "$KAFKA_HOST" "$KAFKA_PORT_N" <<'PY'
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
    local rf=1 isr=1 proto=PLAINTEXT
    if ((KAFKA_BROKERS >= 3)); then rf=3; isr=2; elif ((KAFKA_BROKERS == 2)); then rf=2; fi
    [[ "$SECURE" == 1 ]] && proto=SASL_SSL
    cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/infra.sh -- KRaft node $NODE of $KAFKA_BROKERS, throwaway, 127.0.0.1 only.
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$(quorum_voters)
listeners=$proto://$KAFKA_HOST:$KAFKA_PORT_N,CONTROLLER://$KAFKA_HOST:$KAFKA_CPORT_N
advertised.listeners=$proto://$KAFKA_HOST:$KAFKA_PORT_N
inter.broker.listener.name=$proto
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$proto:$proto
log.dirs=$KAFKA_DATA
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
EOF
    if [[ "$SECURE" == 1 ]]; then
        cat >>"$KAFKA_PROPS" <<EOF
# secure mode: TLS from the throwaway CA, SCRAM-SHA-512 logins (brokers log in as $SASL_USER too)
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SASL_USER" password="$(secret kafka_sasl_password)";
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/server.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CA_CERT
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
EOF
    fi
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
    if port_open "$KAFKA_PORT_N"; then
        die "port $KAFKA_PORT_N is in use by a process this script did not start (no live pid in $KAFKA_PID). Stop it, choose SPM_KAFKA_PORT, or point KAFKA_BOOTSTRAP_SERVERS at it."
    fi
    if port_open "$KAFKA_CPORT_N"; then
        die "controller port $KAFKA_CPORT_N is in use (set SPM_KAFKA_CONTROLLER_PORT)"
    fi
    ensure_java
    ensure_kafka_jars
    local fresh=0
    [[ -f "$KAFKA_DATA/meta.properties" ]] || fresh=1
    write_kafka_config
    if [[ "$fresh" == 1 ]]; then
        : >"$KAFKA_LOG"
        local cid scram=()
        # A Kafka Uuid: 16 random bytes, base64url without padding (what `random-uuid` prints);
        # one per cluster, shared by its nodes.
        if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
            head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=' | sed 's/^-/A/' \
                >"$CLUSTER_ID_FILE"
        fi
        cid="$(cat "$CLUSTER_ID_FILE")"
        if [[ "$SECURE" == 1 ]]; then  # the SCRAM user, in the bootstrap metadata (KRaft)
            scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$(secret kafka_sasl_password)]")
        fi
        log "formatting Kafka storage in $KAFKA_DATA (cluster id $cid)"
        kafka_java_cmd kafka.tools.StorageTool format --config "$KAFKA_PROPS" \
            --cluster-id "$cid" --ignore-formatted "${scram[@]}"
        if ! "${KAFKA_CMD[@]}" </dev/null >"$KAFKA_OUT" 2>&1; then
            show_tail "$KAFKA_OUT"
            die "formatting Kafka storage failed (log: $KAFKA_OUT)"
        fi
    fi
    log "starting Kafka $KAFKA_VERSION node $NODE on $KAFKA_HOST:$KAFKA_PORT_N (log: $KAFKA_LOG)"
    touch "$KAFKA_LOG"
    stat -c %s "$KAFKA_LOG" >"$KAFKA_MARK"
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
    STARTED+=("kafka$([[ "$NODE" == 1 ]] || echo "-$NODE")")
}

kafka_wait_ready() {
    local deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
    while true; do
        if ! kafka_pid >/dev/null; then
            show_tail "$KAFKA_OUT" 20
            show_tail "$KAFKA_LOG" 60
            die "Kafka exited during startup; see $KAFKA_LOG and $KAFKA_OUT"
        fi
        if port_open "$KAFKA_PORT_N" && kafka_probe 2>/dev/null; then
            log "kafka node $NODE ready on $KAFKA_HOST:$KAFKA_PORT_N"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_tail "$KAFKA_OUT" 20
            show_tail "$KAFKA_LOG" 60
            kafka_stop || true
            die "Kafka not ready within ${KAFKA_READY_TIMEOUT}s on $KAFKA_HOST:$KAFKA_PORT_N; see $KAFKA_LOG"
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
        local pw=()
        if [[ "$SECURE" == 1 ]]; then
            ensure_tls
            secret pg_admin_password >"$RUN_DIR/.pgpw"  # initdb reads it as the server's user
            [[ -z "$PG_USER" ]] || chown "$PG_USER" "$RUN_DIR/.pgpw"
            pw=(--pwfile="$RUN_DIR/.pgpw")
        fi
        if ! pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
                --no-locale --no-sync "${pw[@]}" >"$LOG_DIR/initdb.log" 2>&1; then
            show_tail "$LOG_DIR/initdb.log"
            die "initdb failed (log: $LOG_DIR/initdb.log)"
        fi
        rm -f "$RUN_DIR/.pgpw"
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
        [[ "$SECURE" == 1 ]] && pg_secure_config
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

pg_secure_config() {  # ssl=on, TCP only over TLS with a password; the superuser gets one too
    ensure_tls
    cp "$TLS_DIR/server.crt" "$PG_DATA/server.crt"
    cp "$TLS_DIR/server.key" "$PG_DATA/server.key"
    chmod 600 "$PG_DATA/server.key"
    [[ -z "$PG_USER" ]] || chown "$PG_USER" "$PG_DATA/server.crt" "$PG_DATA/server.key"
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# --- secure mode: TLS from the throwaway CA in $TLS_DIR ---
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
EOF
    cat >"$PG_DATA/pg_hba.conf" <<EOF
# Generated by deploy/local/infra.sh (secure mode): TLS and a password, or nothing.
hostssl all all 127.0.0.1/32 scram-sha-256
host    all all all          reject
EOF
    [[ -z "$PG_USER" ]] || chown "$PG_USER" "$PG_DATA/pg_hba.conf"
}

pg_psql_env() {  # how psql reaches the server in the current mode
    PSQL_ENV=()
    if [[ "$SECURE" == 1 ]]; then
        PSQL_ENV=(env PGPASSWORD="$(secret pg_admin_password)" PGSSLMODE=verify-full
            PGSSLROOTCERT="$CA_CERT")
    fi
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
    pg_psql_env
    local psql=("${PSQL_ENV[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres)
    if [[ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='spm'")" != 1 ]]; then
        "${psql[@]}" -d postgres -c "CREATE ROLE spm LOGIN SUPERUSER" >&2
    fi
    if [[ "$SECURE" == 1 ]]; then
        "${psql[@]}" -d postgres -c "ALTER ROLE spm PASSWORD '$(secret pg_password)'" >&2
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
    local rc=0 pid n
    for n in $(nodes); do
        kafka_node "$n"
        if pid="$(kafka_pid)" && kafka_probe 2>/dev/null; then
            echo "kafka node $n: running (pid $pid, $KAFKA_HOST:$KAFKA_PORT_N, Kafka $KAFKA_VERSION)"
        elif pid="$(kafka_pid)"; then
            echo "kafka node $n: starting or unresponsive (pid $pid, $KAFKA_HOST:$KAFKA_PORT_N)"; rc=1
        else
            echo "kafka node $n: stopped"; rc=1
        fi
    done
    if [[ -f "$PG_DATA/postmaster.pid" ]] && pg_running && pg_ready; then
        echo "postgres: running ($PG_HOST:$PG_PORT, data $PG_DATA)"
    else
        echo "postgres: stopped"; rc=1
    fi
    return "$rc"
}

each_node() {  # function -> runs it for every node of the cluster
    local n
    for n in $(nodes); do kafka_node "$n"; "$1"; done
}

one_node() {  # N -> selects node N, checking it belongs to the cluster
    [[ "${1:-}" =~ ^[1-9]$ ]] && ((${1} <= KAFKA_BROKERS)) \
        || die "node must be 1..$KAFKA_BROKERS (SPM_KAFKA_BROKERS=$KAFKA_BROKERS), got '${1:-}'"
    kafka_node "$1"
}

kafka_kill() {  # SIGKILL, no goodbye to the controller: a crashed broker
    local pid
    pid="$(kafka_pid)" || die "kafka node $NODE is not running"
    log "killing Kafka node $NODE (pid $pid) with SIGKILL"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$KAFKA_PID"
}

cmd="${1:-}"
case "$cmd" in
    up)
        lock
        [[ "$SECURE" == 1 ]] && ensure_tls
        each_node kafka_launch      # the JVMs boot while PostgreSQL is set up
        pg_start
        each_node kafka_wait_ready
        log "started: ${STARTED[*]:-none}"
        export_lines
        ;;
    down)
        lock
        # all nodes asked at once: the last one of a cluster stopped alone waits for a quorum
        for pidfile in "$RUN_DIR"/kafka.pid "$RUN_DIR"/kafka-[0-9].pid; do
            [[ -e "$pidfile" ]] || continue
            n="$(basename "$pidfile" .pid)"; n="${n#kafka}"; n="${n#-}"
            kafka_node "${n:-1}"
            if pid="$(kafka_pid)"; then kill -TERM "$pid" 2>/dev/null || true; fi
        done
        for pidfile in "$RUN_DIR"/kafka.pid "$RUN_DIR"/kafka-[0-9].pid; do
            [[ -e "$pidfile" ]] || continue
            n="$(basename "$pidfile" .pid)"; n="${n#kafka}"; n="${n#-}"
            kafka_node "${n:-1}"
            kafka_stop
        done
        pg_stop
        rm -rf "$RUN_DIR"/kafka "$RUN_DIR"/kafka-[0-9] "$PG_DATA" "$CLUSTER_ID_FILE" "$TLS_DIR"
        log "stopped; removed the Kafka and PostgreSQL data in $RUN_DIR (logs kept in $LOG_DIR)"
        ;;
    kafka-stop)
        lock
        each_node kafka_stop
        ;;
    kafka-start)
        lock
        each_node kafka_launch
        each_node kafka_wait_ready
        log "started: ${STARTED[*]:-none}"
        ;;
    kafka-kill)
        lock
        one_node "${2:-}"
        kafka_kill
        ;;
    kafka-start-node)
        lock
        one_node "${2:-}"
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
        echo "usage: $0 up [--secure]|down|status|env|kafka-stop|kafka-start|kafka-kill N|kafka-start-node N|pg-stop|pg-start" >&2
        exit 2
        ;;
esac
