"""A bounded hostile mix against `spm serve` processes (ingest and alerts), between good batches.

Oversized unauthenticated bodies, bodies over the limit, a 10 MiB batch of empty objects,
5,000-digit integers, hooks dated on no day, newline-suffixed fields, a pathological silence
regex and slow-headers clients. Afterwards: no answer was a 5xx, no process died, neither grew
its resident memory by 50 MB, and every event that got 202 is on its topic exactly once.

A newline-suffixed code (a branch id) is refused whole (422); a raw client id is only ever
pseudonymised and is trimmed, so it is not the field to try.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.auth import hash_key
from tests.alerts.servers import Proc, free_port
from tests.common.http_server import head, read_answer, until_closed
from tests.ingest.conftest import TopicTail, auth, event
from tests.spm.test_cli_serve import _env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

MIB = 1024 * 1024
ADMIN_KEY = "hostile-admin-key"
HEADER_TIMEOUT_S = 2.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _registration(source: str, id_: str, client: str = "C1") -> dict[str, Any]:
    data = {"client_id": client, "branch_id": "BR1", "gender": "female"}
    return event("spm.client.registered.v1", id_, source, data | {"registered_on": "2025-01-02"})


async def _raw(port: int, request: bytes, body_part: bytes = b"") -> int:
    """Status of a request whose announced body is (mostly) never sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request + body_part)
        await writer.drain()
        return (await asyncio.wait_for(read_answer(reader), 30)).status
    finally:
        writer.close()


async def _slow_headers(port: int) -> float:
    """Seconds until the server hangs up on half a request line."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthor")
    await writer.drain()
    await asyncio.wait_for(until_closed(reader), HEADER_TIMEOUT_S + 10)
    writer.close()
    return loop.time() - started


async def test_hostile_mix(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, postgres_url, f"ingest_hostile_{unique}")
    env |= {
        "HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "ALERTS_DB_SCHEMA": f"alerts_hostile_{unique}",
        "ALERTS_GROUP_ID": f"alerts-hostile-{unique}",
        "ALERTS_INDICATORS_TOPIC": f"spm.indicators.v1-{unique}",
        "ALERTS_OBJECTIVES_TOPIC": f"spm.objectives.v1-{unique}",
        "ALERTS_TOPIC": f"spm.alerts.v1-{unique}",
        "ALERTS_DEADLETTER_TOPIC": f"spm.ingest.deadletter.v1-{unique}",
        "ALERTS_SMTP_PORT": str(free_port()),
    }
    keys = json.loads(env["API_KEYS"])
    keys.append({"name": "hostile-admin", "sha256": hash_key(ADMIN_KEY), "scopes": ["admin"]})
    env["API_KEYS"] = json.dumps(keys)
    ingest_port, alerts_port = free_port(), free_port()
    ingest = Proc(env, ingest_port, tmp_path / "ingest.log", service="ingest")
    alerts = Proc(env, alerts_port, tmp_path / "alerts.log", service="alerts")
    ingest.start()
    alerts.start()
    source = f"core:{unique}"
    statuses: Counter[tuple[str, int]] = Counter()
    accepted: list[str] = []
    try:
        await ingest.ready()
        await alerts.ready()
        assert ingest.proc is not None and alerts.proc is not None
        tail = TopicTail(kafka_bootstrap)
        await tail.mark()
        pids = {"ingest": ingest.proc.pid, "alerts": alerts.proc.pid}
        ingest_url = f"http://127.0.0.1:{ingest_port}"
        async with (
            httpx.AsyncClient(base_url=ingest_url, timeout=60) as client,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{alerts_port}", timeout=60) as alerter,
        ):
            warm = [_registration(source, f"warm-{i}", f"W{i}") for i in range(50)]
            assert (
                await client.post("/v1/events/batch", json=warm, headers=auth())
            ).status_code == 202
            accepted += [e["id"] for e in warm]
            before = {name: _rss_mb(pid) for name, pid in pids.items()}
            empties = b"[" + b",".join([b"{}"] * (10 * MIB // 3 - 1)) + b"]"
            huge = json.dumps(_registration(source, "huge")).replace('"C1"', "9" * 5000)
            for round_ in range(3):
                good = [
                    _registration(source, f"r{round_}-{i}", f"C{round_}-{i}") for i in range(100)
                ]
                answer = await client.post("/v1/events/batch", json=good, headers=auth())
                statuses[("good batch", answer.status_code)] += 1
                if answer.status_code == 202:
                    accepted += [e["id"] for e in good]
                unauth = head("POST", "/v1/events/batch", {"Content-Length": str(40 * MIB)})
                statuses[("40 MiB without key", await _raw(ingest_port, unauth, b"[" * MIB))] += 1
                over = head(
                    "POST",
                    "/v1/events/batch",
                    {"Content-Length": str(11 * MIB), **auth()},
                )
                statuses[("11 MiB with key", await _raw(ingest_port, over))] += 1
                answer = await client.post(
                    "/v1/events/batch",
                    content=empties,
                    headers={**auth(), "Content-Type": "application/json"},
                )
                statuses[("10 MiB of {}", answer.status_code)] += 1
                answer = await client.post(
                    "/v1/events",
                    content=huge.encode(),
                    headers={**auth(), "Content-Type": "application/json"},
                )
                statuses[("5000 digits", answer.status_code)] += 1
                for day in ([2025, 13, 1], [2025, 2, 30]):
                    hook = {
                        "entityName": "CLIENT",
                        "actionName": "CLOSE",
                        "request": {"closureDate": day},
                        "clientId": 1,
                        "response": {"commandId": 1},
                    }
                    answer = await client.post(
                        "/v1/sources/fineract/hooks",
                        json=hook,
                        headers={**auth(), "Fineract-Platform-TenantId": "default"},
                    )
                    statuses[("bad hook date", answer.status_code)] += 1
                newline = _registration(source, f"nl-{round_}")
                newline["data"]["branch_id"] = "BR1\n"
                answer = await client.post("/v1/events", json=newline, headers=auth())
                statuses[("newline field", answer.status_code)] += 1
                if answer.status_code == 202:
                    accepted.append(newline["id"])
                silence = {
                    "matchers": [{"name": "segment", "op": "=~", "value": "([0-9a-f]+)+z"}],
                    "comment": "pathological",
                    "ends_at": "2099-01-01T00:00:00Z",
                }
                answer = await alerter.post("/v1/silences", json=silence, headers=auth(ADMIN_KEY))
                statuses[("pathological silence", answer.status_code)] += 1
                listed = await asyncio.wait_for(
                    alerter.get("/v1/alerts", headers=auth(ADMIN_KEY)), 10
                )
                statuses[("alerts still answer", listed.status_code)] += 1
                cut = await asyncio.gather(*(_slow_headers(ingest_port) for _ in range(5)))
                assert all(HEADER_TIMEOUT_S - 0.2 <= s < HEADER_TIMEOUT_S + 5 for s in cut), cut
            after = {name: _rss_mb(pid) for name, pid in pids.items()}
        assert ingest.proc.poll() is None and alerts.proc.poll() is None, "a process died"
        print(dict(statuses), before, after)
        assert not [k for k in statuses if k[1] >= 500], statuses
        expected = {
            "good batch": {202},
            "40 MiB without key": {401},
            "11 MiB with key": {413},
            "10 MiB of {}": {413},
            "5000 digits": {422},
            "bad hook date": {422},
            "newline field": {422},
            "pathological silence": {201, 422},
            "alerts still answer": {200},
        }
        for (what, status), _ in statuses.items():
            assert status in expected[what], (what, status)
        for name in pids:
            assert after[name] - before[name] < 50, (name, before[name], after[name])
        records = [r for r in await tail.read() if r.headers.get("ce_source") == source.encode()]
        ids = Counter(r.headers["ce_id"].decode() for r in records)
        assert sorted(ids) == sorted(accepted)
        assert set(ids.values()) == {1}
    finally:
        ingest.stop()
        alerts.stop()
