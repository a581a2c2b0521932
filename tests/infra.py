"""Real Kafka and PostgreSQL for the test session, through deploy/local/infra.sh.

`ensure_infra()` uses KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL when both are set (external
services, never stopped by us). Otherwise it runs `infra.sh up`, which reuses whatever already
runs and starts the rest; `stop_infra()` then tears down only what this session started, so a
developer who ran `make infra-up` keeps their broker and database across test runs.

Outage tests never stop the shared services: they stop a `PrivateInfra` of their own, since
other tests (other pytest-xdist workers) use the shared ones at the same time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.sh"

# First `up` may resolve the Kafka jars from Maven Central, then waits up to 90 s for Kafka and
# 30 s for PostgreSQL.
_UP_TIMEOUT_S = 600.0
_KAFKA_TIMEOUT_S = 180.0


@dataclass
class Infra:
    kafka_bootstrap: str
    database_url: str
    started: bool  # True when this session started something and must stop it


def _run(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["bash", str(INFRA_SCRIPT), *args],
            cwd=REPO_ROOT,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"`infra.sh {' '.join(args)}` did not finish within {timeout:.0f} s"
        ) from exc
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`infra.sh {' '.join(args)}` failed with exit code {proc.returncode}:\n"
            f"{proc.stderr}{proc.stdout}"
        )
    return proc


def _parse_exports(stdout: str) -> dict[str, str]:
    exports: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name.strip()] = value.strip()
    return exports


def _parse_started(stderr: str) -> list[str]:
    for line in stderr.splitlines():
        if line.startswith("infra: started:"):
            return [w for w in line.removeprefix("infra: started:").split() if w != "none"]
    return []


def ensure_infra() -> Infra:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    database = os.environ.get("DATABASE_URL", "").strip()
    if kafka and database:
        return Infra(kafka_bootstrap=kafka, database_url=database, started=False)
    proc = _run("up", timeout=_UP_TIMEOUT_S)
    exports = _parse_exports(proc.stdout)
    try:
        local_kafka = exports["KAFKA_BOOTSTRAP_SERVERS"]
        local_database = exports["DATABASE_URL"]
    except KeyError as exc:
        raise RuntimeError(f"`infra.sh up` printed no {exc.args[0]}:\n{proc.stdout}") from exc
    return Infra(
        kafka_bootstrap=kafka or local_kafka,
        database_url=database or local_database,
        started=bool(_parse_started(proc.stderr)),
    )


def stop_infra(infra: Infra) -> None:
    if infra.started:
        _run("down", timeout=_UP_TIMEOUT_S)


class PrivateInfra:
    """A broker and/or a PostgreSQL of one test's own (own ports, own run directory), which the
    test may stop and start: outage tests never touch the shared ones."""

    def __init__(self, run_dir: Path) -> None:
        self.kafka_port, self.controller_port, self.pg_port = free_ports(3)
        self.env = {
            **os.environ,
            "SPM_RUN_DIR": str(run_dir),
            "SPM_KAFKA_PORT": str(self.kafka_port),
            "SPM_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "SPM_PG_PORT": str(self.pg_port),
        }

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://spm@127.0.0.1:{self.pg_port}/spm"

    def run(self, command: str) -> None:
        """``kafka-start``, ``kafka-stop``, ``pg-start`` or ``pg-stop`` on this set."""
        _run(command, timeout=_KAFKA_TIMEOUT_S, env=self.env)

    def close(self) -> None:
        """Stop whatever of this set runs and delete its data."""
        _run("down", timeout=_KAFKA_TIMEOUT_S, env=self.env)


STABLE_PORTS = range(20000, 32000)
"""Below Linux's ephemeral range (32768-60999): a server that binds port 0 is never given one,
so a broker stopped by an outage test finds its ports free again when it restarts."""


_HANDED_OUT: deque[int] = deque(maxlen=500)
"""Ports this process handed out lately: a server given one may not have bound it yet, and the
next caller must not get it too (two services of one test were given the same port)."""


def _worker_ports() -> range:
    """This pytest-xdist worker's own share of STABLE_PORTS (all of it without xdist), so two
    workers never pick the same port at the same moment."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    size = len(STABLE_PORTS) // count
    first = STABLE_PORTS.start + index * size
    return range(first, first + size)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nothing listens on, none handed out lately by this process."""
    import random
    import socket

    share = _worker_ports()
    ports: list[int] = []
    while len(ports) < n:
        port = random.choice(share)
        if port in ports or port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    _HANDED_OUT.extend(ports)
    return ports


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class OwnInfra:
    """A set of infrastructure of a test's own (its own run directory and ports, e.g. the
    secure mode or a three-broker cluster), started and stopped by the test session."""

    settings: dict[str, str]  # SPM_* for infra.sh
    exports: dict[str, str]  # what `up` printed: the clients' environment

    def run(self, *args: str, timeout: float = _KAFKA_TIMEOUT_S) -> None:
        _run(*args, timeout=timeout, env=self.settings)

    def down(self) -> None:
        _run("down", timeout=_UP_TIMEOUT_S, env=self.settings)


def own_infra(settings: dict[str, str]) -> OwnInfra:
    """``infra.sh up`` with ``settings`` (SPM_RUN_DIR, ports, SPM_SECURE, SPM_KAFKA_BROKERS...)."""
    try:
        proc = _run("up", timeout=_UP_TIMEOUT_S, env=settings)
    except RuntimeError:
        _run("down", timeout=_UP_TIMEOUT_S, env=settings)  # what did start must not linger
        raise
    return OwnInfra(settings, _parse_exports(proc.stdout))
