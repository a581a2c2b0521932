"""Branch scope and names on the objectives API, on PostgreSQL and SQLite: a branch manager
sees only their branch's and the institution's targets, cannot change objectives, and the audit
trail names the person who changed one (subject and display name)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common.auth import hash_key
from services.common.bus import MemoryBus
from services.objectives.app import create_app
from services.objectives.config import ObjectivesSettings
from tests.objectives.conftest import drop_schema, objective, target

KEYS = json.dumps(
    [
        {"name": "Grace Achieng", "subject": "idp|grace", "sha256": hash_key("officer"),
         "scopes": ["objectives:read", "objectives:write"]},
        {"name": "Mary Wanjiru", "subject": "idp|mary", "sha256": hash_key("msa"),
         "scopes": ["objectives:read", "objectives:write"], "branches": ["MSA"]},
        {"name": "strategy-bot", "sha256": hash_key("bot"),
         "scopes": ["objectives:read", "objectives:write"]},
    ]
)  # fmt: skip


@pytest.fixture(params=["postgresql", "sqlite"])
async def clients(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {"api_keys": KEYS, "outbox_poll_interval_s": 0.2}
    bus: MemoryBus | None = None
    if request.param == "sqlite":
        bus = MemoryBus()
        values["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"
    else:
        values.update(
            database_url=request.getfixturevalue("postgres_url"),
            kafka_bootstrap_servers=request.getfixturevalue("kafka_bootstrap"),
            objectives_db_schema=f"test_objectives_{suffix}",
            objectives_topic=f"test.objectives.{suffix}",
        )
    settings = ObjectivesSettings(**values)
    app = create_app(settings, bus=bus)
    async with app.router.lifespan_context(app):
        made = {
            who: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://objectives",
                headers={"Authorization": f"Bearer {who}"},
            )
            for who in ("officer", "msa", "bot")
        }
        yield made
        for client in made.values():
            await client.aclose()
    if bus is not None:
        await bus.close()
    else:
        await drop_schema(settings)


def _fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


async def test_a_branch_manager_sees_their_targets_and_changes_nothing(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    officer, msa = clients["officer"], clients["msa"]
    mixed = await officer.post("/v1/objectives", json=objective(
        "outreach", target(segment="branch:MSA"), target(segment="branch:NBO"), target()
    ))  # fmt: skip
    assert mixed.status_code == 201, mixed.text
    nbo_only = await officer.post(
        "/v1/objectives",
        json=objective("nbo-only", target(segment="branch:NBO", indicator="active_clients")),
    )
    assert nbo_only.status_code == 201, nbo_only.text
    oid, other = mixed.json()["id"], nbo_only.json()["id"]
    nbo_target = next(t for t in mixed.json()["targets"] if t["segment"] == "branch:NBO")

    listed = (await msa.get("/v1/objectives")).json()
    assert [o["id"] for o in listed] == [oid]
    assert {t["segment"] for t in listed[0]["targets"]} == {"branch:MSA", "all"}
    one = await msa.get(f"/v1/objectives/{oid}")
    assert {t["segment"] for t in one.json()["targets"]} == {"branch:MSA", "all"}
    r = await msa.get(f"/v1/objectives/{other}")
    assert r.status_code == 403 and _fields(r) == ["objective_id"]
    r = await msa.get(f"/v1/objectives/{other}/history")
    assert r.status_code == 403 and _fields(r) == ["objective_id"]

    targets = (await msa.get("/v1/targets")).json()
    assert {t["segment"] for t in targets} == {"branch:MSA", "all"}
    assert len((await officer.get("/v1/targets")).json()) == 4
    r = await msa.get("/v1/targets", params={"segment": "branch:NBO"})
    assert r.status_code == 403 and _fields(r) == ["query.segment"]

    # the officer raises NBO's threshold: the manager's history shows neither target nor change
    raised = await officer.patch(f"/v1/objectives/{oid}", headers={"If-Match": '"1"'}, json={
        "reason": "NBO is ahead",
        "targets": [
            {**target(segment=t["segment"]), "id": t["id"],
             **({"threshold": "0.61"} if t["id"] == nbo_target["id"] else {})}
            for t in mixed.json()["targets"]
        ],
    })  # fmt: skip
    assert raised.status_code == 200, raised.text
    history = (await msa.get(f"/v1/objectives/{oid}/history")).json()
    assert len(history) == 2 and history[1]["diff"] == []
    for version in history:
        for doc in (version["before"], version["after"]):
            assert "branch:NBO" not in json.dumps(doc)
    full = (await officer.get(f"/v1/objectives/{oid}/history")).json()
    assert [d["path"] for d in full[1]["diff"]] == [f"targets[{nbo_target['id']}].threshold"]

    # changes need a caller without a branch limit
    r = await msa.post("/v1/objectives", json=objective("mine", target(segment="branch:MSA")))
    assert r.status_code == 403 and _fields(r) == ["objective"]
    r = await msa.patch(f"/v1/objectives/{oid}", json={"name": "x", "reason": "y", "version": 2})
    assert r.status_code == 403 and _fields(r) == ["objective_id"]
    r = await msa.delete(f"/v1/objectives/{oid}", params={"reason": "no", "version": 2})
    assert r.status_code == 403 and _fields(r) == ["objective_id"]
    assert (await officer.get(f"/v1/objectives/{oid}")).json()["version"] == 2


async def test_the_audit_trail_names_the_person(clients: dict[str, httpx.AsyncClient]) -> None:
    officer, bot = clients["officer"], clients["bot"]
    created = (await bot.post("/v1/objectives", json=objective("women"))).json()
    r = await officer.patch(
        f"/v1/objectives/{created['id']}", json={"name": "Reach women", "reason": "clearer",
                                                 "version": 1},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = await officer.delete(f"/v1/objectives/{created['id']}", params={"reason": "done",
                                                                        "version": 2})  # fmt: skip
    assert r.status_code == 200, r.text
    history = (await officer.get(f"/v1/objectives/{created['id']}/history")).json()
    assert [(v["action"], v["author"], v["author_subject"]) for v in history] == [
        ("created", "strategy-bot", None),
        ("updated", "Grace Achieng", "idp|grace"),
        ("retired", "Grace Achieng", "idp|grace"),
    ]
