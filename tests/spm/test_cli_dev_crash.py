"""`spm dev` killed (SIGKILL) and started again on its data directory: what it had applied is
still there, an event answered 202 just before the kill is applied after the restart (the
in-process bus journals every record in the data directory before answering), a resent event is
recognised as a duplicate, and events sent after the restart are applied (offsets continue
where they were, so no consumer skips them)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.alerts.servers import REPO, free_port

SPM = str(REPO / ".venv" / "bin" / "spm")
KEY = "dev-crash-test-admin-key"


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [SPM, "dev", "--data-dir", str(data_dir), "--port", str(port), "--api-key", KEY],
            cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": str(data_dir.parent)},
            stdout=out, stderr=out,
        )  # fmt: skip


def _registrations(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"{prefix}-{i}",
            "source": "core:dev",
            "type": "spm.client.registered.v1",
            "time": "2025-01-02T08:00:00+03:00",
            "data": {
                "client_id": f"{prefix}{i}",
                "branch_id": "B1",
                "gender": "female",
                "registered_on": "2025-01-02",
            },
        }  # fmt: skip
        for i in range(n)
    ]


def _until(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path, active: int) -> None:
    """Until the service answers and counts ``active`` clients on 2025-01-02."""
    deadline = time.monotonic() + 120
    value = None
    while value != active:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"active clients {value}, expected {active}"
        try:
            params = {"code": "active_clients", "segment": "all", "as_of": "2025-01-02"}
            r = client.get("/v1/indicators", params=params)
        except httpx.TransportError:  # not listening yet
            r = None
        if r is not None and r.status_code == 200:
            [item] = r.json()["items"] or [{"value": None}]
            value = item["value"]
        time.sleep(0.2)


def _post(client: httpx.Client, body: list[dict[str, Any]]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            r = client.post("/v1/events/batch", json=body)
            assert r.status_code == 202, r.text
            result: dict[str, Any] = r.json()
            return result
        except httpx.TransportError:  # not listening yet
            assert time.monotonic() < deadline, "spm dev did not start listening"
            time.sleep(0.2)


def test_killed_and_restarted_on_its_data_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / "dev", free_port(), tmp_path / "spm-dev.log"
    headers = {"Authorization": f"Bearer {KEY}"}
    first = _registrations("a", 5)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
        proc = _start(data_dir, port, log)
        try:
            assert _post(client, first)["accepted"] == 5
            _until(client, proc, log, 5)
            # answered 202, then killed at once: most likely not consumed yet
            assert _post(client, _registrations("c", 1))["accepted"] == 1
        finally:
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        proc = _start(data_dir, port, log)
        try:
            again = _post(client, [*first[:2], *_registrations("b", 5)])
            assert (again["duplicates"], again["accepted"]) == (2, 5), again
            _until(client, proc, log, 11)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
