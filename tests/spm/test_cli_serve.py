"""`spm serve`: a service with several worker processes on one port (ingest here; the
indicator workers against the oracle in tests/indicators/test_against_oracle.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from spm.workers import WORKER_FAILED
from tests.alerts.servers import REPO, Proc, free_port
from tests.ingest.conftest import PEPPER, TopicTail, api_keys_json, auth, event
from tests.spm.procfs import ESTABLISHED, sockets_on, until_every_worker_listens

SPM = str(REPO / ".venv" / "bin" / "spm")


def _registration(source: str, n: int) -> dict[str, object]:
    data = {
        "client_id": f"c{n}",
        "branch_id": "BR1",
        "gender": "female",
        "registered_on": "2025-01-02",
    }
    return event("spm.client.registered.v1", f"e{n}", source, data)


def _env(kafka_bootstrap: str, postgres_url: str, schema: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "PSEUDONYM_PEPPER": PEPPER,
        "API_KEYS": api_keys_json(),
        "INSTITUTION_CURRENCY": "KES",
        "INGEST_DB_SCHEMA": schema,
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_only_ingest_and_indicators_run_several_workers() -> None:
    refused = subprocess.run(  # noqa: S603 - our own CLI
        [SPM, "serve", "objectives", "--workers", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "only the ingest and indicators services run several workers" in refused.stderr


@pytest.mark.kafka
@pytest.mark.postgres
async def test_ingest_workers_share_the_port_and_the_dedup_store(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, postgres_url, f"ingest_workers_{unique}")
    port = free_port()
    proc = Proc(env, port, tmp_path / "ingest.log", service="ingest", args=("--workers", "2"))
    proc.start()
    assert proc.proc is not None
    tail = TopicTail(kafka_bootstrap)
    try:
        await proc.ready()
        await tail.mark()
        await until_every_worker_listens(proc.proc.pid, port, 2)

        source = f"core:{unique}"
        batches = [[_registration(source, i * 50 + j) for j in range(50)] for i in range(6)]
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers=auth(), timeout=60) as http:
            first = await asyncio.gather(*(http.post("/v1/events/batch", json=b) for b in batches))
            again = await asyncio.gather(*(http.post("/v1/events/batch", json=b) for b in batches))
        assert [r.status_code for r in first] == [202] * 6
        assert sum(r.json()["accepted"] for r in first) == 300
        assert [r.json()["duplicates"] for r in again] == [50] * 6
        published = [r for r in await tail.read() if r.headers["ce_source"] == source.encode()]
        assert sorted(r.headers["ce_id"] for r in published) == sorted(
            f"e{i}".encode() for i in range(300)
        )
    finally:
        proc.stop()


@pytest.mark.kafka
@pytest.mark.postgres
async def test_ingest_workers_each_take_connections(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    """uvicorn's shared socket let one worker accept every waiting connection; with a socket
    per worker the kernel spreads them (16 connections all on one of 2 workers: p = 2^-15)."""
    env = _env(kafka_bootstrap, postgres_url, f"ingest_spread_{unique}")
    port = free_port()
    proc = Proc(env, port, tmp_path / "ingest.log", service="ingest", args=("--workers", "2"))
    proc.start()
    assert proc.proc is not None
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for _ in range(16)]
    try:
        await proc.ready()
        workers = await until_every_worker_listens(proc.proc.pid, port, 2)
        answers = await asyncio.gather(*(client.get("/healthz") for client in clients))
        assert [a.status_code for a in answers] == [200] * 16
        held = [sockets_on(pid, port, ESTABLISHED) for pid in workers]
        assert len(held) == 2 and sum(held) == 16 and min(held) >= 1, held
    finally:
        for client in clients:
            await client.aclose()
        proc.stop()


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("ending", "exit_code"),
    [("SIGTERM to the service", 0), ("SIGKILL to a worker", WORKER_FAILED)],
)
async def test_the_service_and_its_workers_end_together(
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    tmp_path: Path,
    ending: str,
    exit_code: int,
) -> None:
    """No orphaned worker keeps the port, and a dead worker is not silently a smaller service."""
    env = _env(kafka_bootstrap, postgres_url, f"ingest_end_{unique}")
    port = free_port()
    proc = Proc(env, port, tmp_path / "ingest.log", service="ingest", args=("--workers", "2"))
    proc.start()
    assert proc.proc is not None
    try:
        await proc.ready()
        workers = await until_every_worker_listens(proc.proc.pid, port, 2)
        if ending.startswith("SIGTERM"):
            proc.proc.terminate()
        else:
            os.kill(workers[0], signal.SIGKILL)
        assert await asyncio.to_thread(proc.proc.wait, 60) == exit_code
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        proc.stop()
