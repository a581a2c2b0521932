"""`spm serve` refuses settings that would lose data, and logs to stdout (JSON or text) with API
keys in URLs redacted, uvicorn's access log included. Real `spm serve` processes throughout."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.servers import REPO, free_port

SPM = str(REPO / ".venv" / "bin" / "spm")
SECRET = "k3y-that-must-not-be-logged"


def _refusal(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPM, "serve", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", ["ingest", "indicators", "objectives", "alerts"])
def test_without_kafka_every_service_refuses_to_start(service: str, tmp_path: Path) -> None:
    """Before: ingest answered 202 and published to an in-process bus nobody reads."""
    result = _refusal({"DATABASE_URL": "postgresql+asyncpg://spm@db/spm"}, service, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"spm serve {service}: KAFKA_BOOTSTRAP_SERVERS is not set; the distributed services "
        "need Kafka (`spm dev` runs everything in one process without it)"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing created (no SQLite file either)


@pytest.mark.parametrize(
    "database", [None, "sqlite+aiosqlite:///./spm.db"], ids=["unset", "sqlite"]
)
def test_sqlite_needs_the_explicit_flag(database: str | None, tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    if database:
        env["DATABASE_URL"] = database
    result = _refusal(env, "ingest", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "spm serve ingest: DATABASE_URL is not a PostgreSQL URL (postgresql+asyncpg://…); "
        "SQLite only with --allow-sqlite"
    )


def test_an_unsupported_database_is_named(tmp_path: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATABASE_URL": "mysql://u@h/db"}
    result = _refusal(env, "objectives", cwd=tmp_path)
    assert result.returncode == 2
    assert "unsupported database (mysql)" in result.stderr


PLACEHOLDER = (REPO / "deploy" / "secrets" / "pseudonym_pepper.example").read_text().strip()


@pytest.mark.parametrize(
    ("pepper", "reason"),
    [
        (None, "is not set: ingest cannot pseudonymise without it"),
        (PLACEHOLDER, "is the shipped placeholder, known to everyone"),
        ("x" * 31, "is shorter than 32 bytes"),
    ],
    ids=["unset", "placeholder", "31 bytes"],
)
def test_ingest_refuses_a_missing_placeholder_or_short_pepper(
    pepper: str | None, reason: str, tmp_path: Path
) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATABASE_URL": "postgresql+asyncpg://h/d"}
    if pepper is not None:
        env["PSEUDONYM_PEPPER"] = pepper
    result = _refusal(env, "ingest", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"spm serve ingest: PSEUDONYM_PEPPER {reason}; make one with `openssl rand -hex 32`"
    ]


class Served:
    """``spm serve objectives`` with stdout and stderr in files."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.stdout = tmp_path / "stdout.log"
        self.stderr = tmp_path / "stderr.log"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [SPM, "serve", "objectives", "--port", str(self.port), *args],
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", **env},
                stdout=out,
                stderr=err,
            )

    async def get(self, path: str, within: float = 60.0) -> httpx.Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:
            while True:
                assert self.proc.poll() is None, self.stderr.read_text() + self.stdout.read_text()
                try:
                    return await client.get(path)
                except httpx.TransportError:
                    assert loop.time() < deadline, self.stdout.read_text()
                    await asyncio.sleep(0.2)

    async def output_containing(self, needle: str, within: float = 30.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while needle not in (text := self.stdout.read_text()):
            assert loop.time() < deadline, f"{needle!r} not logged: {text[-3000:]}"
            await asyncio.sleep(0.1)
        return text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def _env(kafka_bootstrap: str, database_url: str, unique: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "OBJECTIVES_DB_SCHEMA": f"objectives_logs_{unique}",
    }


@pytest.mark.kafka
@pytest.mark.postgres
async def test_json_lines_on_stdout_with_the_api_key_redacted_from_the_access_log(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    served = Served(tmp_path, _env(kafka_bootstrap, postgres_url, unique))
    try:
        answer = await served.get(f"/healthz?api_key={SECRET}&x=1")
        assert answer.status_code == 200
        text = await served.output_containing('"logger": "uvicorn.access"')
    finally:
        served.stop()
    records: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert access[0]["http_path"] == "/healthz?api_key=[REDACTED]&x=1"
    assert access[0]["http_method"] == "GET" and access[0]["http_status"] == 200
    assert "api_key=[REDACTED]" in access[0]["message"]
    assert {"time", "level", "logger", "message"} <= set(access[0])
    assert any(r["logger"] == "uvicorn.error" for r in records)  # the server's own records
    assert SECRET not in text + served.stderr.read_text()


@pytest.mark.kafka
async def test_text_logs_with_log_format_text_and_sqlite_with_the_flag(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, "sqlite+aiosqlite:///./objectives.db", unique)
    served = Served(tmp_path, env, "--log-format", "text", "--allow-sqlite")
    try:
        answer = await served.get(f"/healthz?API_KEY={SECRET}")
        assert answer.status_code == 200
        text = await served.output_containing("uvicorn.access")
    finally:
        served.stop()
    line = next(line for line in text.splitlines() if "uvicorn.access" in line)
    assert " INFO uvicorn.access 127.0.0.1:" in line
    assert line.endswith('"GET /healthz?API_KEY=[REDACTED] HTTP/1.1" 200')
    assert not text.lstrip().startswith("{")
    assert SECRET not in text
    # the SQLite file it was allowed to use
    assert await asyncio.to_thread(lambda: list(tmp_path.glob("objectives-*.db")))
