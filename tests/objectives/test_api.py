"""The objectives API on real PostgreSQL and Kafka: CRUD, validation, history, concurrency,
events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import text

from contracts.envelope import from_kafka
from contracts.events import TargetChanged
from services.common.bus import KafkaBus
from services.common.db import create_engine
from services.common.paging import NEXT_CURSOR_HEADER
from services.objectives.config import ObjectivesSettings
from tests.common.route_auth import assert_every_route_keyed
from tests.objectives.conftest import KEYS, ClientFactory, objective, target

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def _segment() -> str:
    return f"branch:BR-{uuid.uuid4().hex[:8]}"


def _errors(response: Any) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


async def test_create_read_list_and_query_targets(client_as: ClientFactory) -> None:
    alice = client_as("alice")
    segment = _segment()
    body = objective(
        "outreach-" + segment[-8:].lower(),
        target(segment=segment),
        target(
            indicator="par30",
            segment=segment,
            direction="at_most",
            threshold="0.05",
            warning_threshold="0.04",
            severity="critical",
        ),
    )
    created = await alice.post("/v1/objectives", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    doc = created.json()
    assert created.headers["Location"] == f"/v1/objectives/{doc['id']}"
    assert doc["status"] == "active" and doc["version"] == 1
    assert [t["indicator"] for t in doc["targets"]] == ["women_borrower_share", "par30"]
    assert Decimal(doc["targets"][1]["threshold"]) == Decimal("0.05")

    fetched = await alice.get(f"/v1/objectives/{doc['id']}")
    assert fetched.status_code == 200 and fetched.json() == doc
    listed = await alice.get("/v1/objectives", params={"status": "active"})
    assert doc["id"] in [o["id"] for o in listed.json()]

    found = await alice.get(
        "/v1/targets",
        params={"indicator": "par30", "segment": segment, "active_on": "2026-06-30"},
    )
    assert [t["id"] for t in found.json()] == [doc["targets"][1]["id"]]
    assert found.json()[0]["objective_code"] == body["code"]
    outside = await alice.get("/v1/targets", params={"segment": segment, "active_on": "2027-01-01"})
    assert outside.json() == []
    missing = await alice.get(f"/v1/objectives/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_scopes(client_as: ClientFactory) -> None:
    anonymous = await client_as("nobody").get("/v1/objectives")
    assert anonymous.status_code == 401
    dashboard = client_as("dashboard")
    assert (await dashboard.get("/v1/targets")).status_code == 200
    refused = await dashboard.post("/v1/objectives", json=objective("x-readonly"))
    assert refused.status_code == 403


async def test_every_route_needs_its_key(app: Any) -> None:
    walked = await assert_every_route_keyed(app, wrong_scope_key=KEYS["stranger"][0])
    assert {path for _, path in walked} >= {"/v1/objectives", "/v1/targets"}


@pytest.mark.parametrize(
    ("override", "field", "reason"),
    [
        ({"indicator": "women_share_typo"}, "targets.0.indicator", "unknown indicator code"),
        ({"warning_threshold": "0.55"}, "targets.0.warning_threshold", "above the threshold"),
        (
            {"direction": "at_most", "threshold": "0.05", "warning_threshold": "0.06"},
            "targets.0.warning_threshold",
            "below the threshold",
        ),
        (
            {"direction": "within", "threshold": "0.5", "warning_threshold": None},
            "targets.0.threshold",
            "within needs two bounds",
        ),
        (
            {
                "direction": "within",
                "threshold": ["0.3", "0.7"],
                "warning_threshold": ["0.2", "0.6"],
            },
            "targets.0.warning_threshold",
            "inside the threshold bounds",
        ),
        ({"threshold": "60", "warning_threshold": None}, "targets.0.threshold", "between 0 and 1"),
        (
            {
                "indicator": "open_complaints_past_sla",
                "segment": "product:P1",
                "direction": "at_most",
                "threshold": "0",
                "warning_threshold": None,
            },
            "targets.0.segment",
            "no product breakdown",
        ),
        ({"effective_to": "2025-12-31"}, "targets.0.effective_to", "before effective_from"),
        ({"notify": ["not an address"]}, "targets.0.notify.0", "neither an e-mail"),
        # a final line break once passed Python's `$`: header injection, a dead sender task
        ({"notify": ["ops@example.org\n"]}, "targets.0.notify.0", "not an e-mail address"),
        ({"notify": ["ops@example.org\r\nBcc: x@example.net"]}, "targets.0.notify.0", "not an"),
        ({"notify": ["a,b@example.org"]}, "targets.0.notify.0", "not an e-mail address"),
        ({"notify": ["ops@example.org, x@example.net"]}, "targets.0.notify.0", "not an e-mail"),
        ({"segment": "branch:Y\n"}, "targets.0.segment", "segment must be"),
        ({"segment": "all\r"}, "targets.0.segment", "segment must be"),
    ],
)
async def test_invalid_targets_are_refused_with_field_and_reason(
    client_as: ClientFactory, override: dict[str, Any], field: str, reason: str
) -> None:
    alice = client_as("alice")
    before = (await alice.get("/v1/objectives")).json()
    code = f"bad-{uuid.uuid4().hex[:8]}"
    response = await alice.post(
        "/v1/objectives", json=objective(code, target(**{"segment": _segment(), **override}))
    )
    assert response.status_code == 422, response.text
    errors = _errors(response)
    assert field in errors, errors
    assert reason in errors[field]
    assert (await alice.get("/v1/objectives")).json() == before


async def test_overlapping_periods_for_same_indicator_and_segment(client_as: ClientFactory) -> None:
    alice = client_as("alice")
    segment = _segment()
    first = await alice.post(
        "/v1/objectives", json=objective(f"a-{segment[-8:].lower()}", target(segment=segment))
    )
    assert first.status_code == 201
    clash = objective(
        f"b-{segment[-8:].lower()}",
        target(segment=segment, effective_from="2026-06-01", effective_to=None),
    )
    refused = await alice.post("/v1/objectives", json=clash)
    assert refused.status_code == 422
    reason = _errors(refused)["targets.0.effective_from"]
    assert "overlaps" in reason and "2026-01-01..2026-12-31" in reason
    fresh = _segment()
    within_one = objective(
        f"c-{segment[-8:].lower()}",
        target(segment=fresh),
        target(segment=fresh, effective_from="2026-12-01", effective_to="2027-03-31"),
    )
    assert _errors(await alice.post("/v1/objectives", json=within_one)) == {
        "targets.1.effective_from": "overlaps target 0 (2026-01-01..2026-12-31) for the same "
        "indicator and segment"
    }
    later = objective(
        f"d-{segment[-8:].lower()}",
        target(segment=segment, effective_from="2027-01-01", effective_to=None),
    )
    assert (await alice.post("/v1/objectives", json=later)).status_code == 201
    other_segment = objective(f"e-{segment[-8:].lower()}", target(segment=_segment()))
    assert (await alice.post("/v1/objectives", json=other_segment)).status_code == 201
    # once the first objective is retired its period is free again
    retired = await alice.delete(
        f"/v1/objectives/{first.json()['id']}",
        params={"reason": "replaced"},
        headers={"If-Match": '"1"'},
    )
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert (
        await alice.post("/v1/objectives", json=clash)
    ).status_code == 422  # d still covers 2027
    clash["targets"][0]["effective_to"] = "2026-12-31"
    assert (await alice.post("/v1/objectives", json=clash)).status_code == 201


async def test_history_records_author_time_reason_and_diff(
    client_as: ClientFactory, settings: ObjectivesSettings
) -> None:
    alice, bob = client_as("alice"), client_as("bob")
    segment = _segment()
    created = (
        await alice.post(
            "/v1/objectives",
            json=objective(f"h-{segment[-8:].lower()}", target(segment=segment), reason="board"),
        )
    ).json()
    oid, tid = created["id"], created["targets"][0]["id"]
    renamed = await bob.patch(
        f"/v1/objectives/{oid}",
        json={"name": "Reach women", "reason": "clearer name"},
        headers={"If-Match": '"1"'},
    )
    assert renamed.status_code == 200 and renamed.headers["ETag"] == '"2"'
    raised = await alice.patch(
        f"/v1/objectives/{oid}",
        json={
            "version": 2,
            "reason": "board meeting 2026-03: raise the bar",
            "targets": [
                {**target(segment=segment, threshold="0.62", warning_threshold="0.65"), "id": tid}
            ],
        },
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["targets"][0]["id"] == tid
    retired = await bob.delete(
        f"/v1/objectives/{oid}", params={"reason": "merged into strategy 2027", "version": 3}
    )
    assert retired.status_code == 200

    history = (await alice.get(f"/v1/objectives/{oid}/history")).json()
    assert [(v["version"], v["action"], v["author"], v["reason"]) for v in history] == [
        (1, "created", "alice", "board"),
        (2, "updated", "bob", "clearer name"),
        (3, "updated", "alice", "board meeting 2026-03: raise the bar"),
        (4, "retired", "bob", "merged into strategy 2027"),
    ]
    times = [datetime.fromisoformat(v["changed_at"]) for v in history]
    assert all(t.tzinfo is not None for t in times) and times == sorted(times)
    assert history[0]["before"] is None and history[0]["after"]["name"] == created["name"]
    for previous, current in zip(history, history[1:], strict=False):
        assert current["before"] == previous["after"]
    assert history[1]["diff"] == [
        {"path": "name", "before": created["name"], "after": "Reach women"}
    ]
    assert {(d["path"], d["before"], d["after"]) for d in history[2]["diff"]} == {
        (f"targets[{tid}].threshold", "0.60", "0.62"),
        (f"targets[{tid}].warning_threshold", "0.63", "0.65"),
    }
    assert ("status", "active", "retired") in {
        (d["path"], d["before"], d["after"]) for d in history[3]["diff"]
    }

    engine = create_engine(settings.database_url, settings.objectives_db_schema)
    try:
        with pytest.raises(Exception, match="append-only"):
            async with engine.begin() as conn:
                table = f'"{settings.objectives_db_schema}".objective_versions'
                await conn.execute(text(f"UPDATE {table} SET reason = 'rewritten'"))  # noqa: S608
    finally:
        await engine.dispose()


async def test_concurrent_updates_second_stale_writer_gets_409(client_as: ClientFactory) -> None:
    alice, bob = client_as("alice"), client_as("bob")
    segment = _segment()
    oid = (
        await alice.post(
            "/v1/objectives", json=objective(f"c-{segment[-8:].lower()}", target(segment=segment))
        )
    ).json()["id"]
    url = f"/v1/objectives/{oid}"
    responses = await asyncio.gather(
        alice.patch(url, json={"owner": "Alice", "reason": "a"}, headers={"If-Match": '"1"'}),
        bob.patch(url, json={"description": "Bob's", "reason": "b"}, headers={"If-Match": '"1"'}),
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.headers["ETag"] == '"2"'
    assert "version" in _errors(loser)
    lost_change = (
        {"owner": "Alice", "reason": "a"}
        if responses[0].status_code == 409
        else {"description": "Bob's", "reason": "b"}
    )
    retry = await alice.patch(url, json={**lost_change, "version": 2})
    assert retry.status_code == 200
    final = (await alice.get(url)).json()
    assert (final["owner"], final["description"], final["version"]) == ("Alice", "Bob's", 3)
    assert len((await alice.get(f"{url}/history")).json()) == 3

    nulled = await alice.patch(url, json={"name": None, "reason": "oops", "version": 3})
    assert nulled.status_code == 422 and "name" in _errors(nulled)
    no_reason = await alice.patch(url, json={"owner": "x", "version": 3})
    assert no_reason.status_code == 422 and "reason" in _errors(no_reason)
    no_version = await alice.patch(url, json={"owner": "x", "reason": "no version"})
    assert no_version.status_code == 428
    stale_body = await alice.patch(url, json={"owner": "x", "reason": "old", "version": 1})
    assert stale_body.status_code == 409


async def _events_for(
    kafka: KafkaBus, topic: str, objective_id: str, count: int
) -> list[tuple[bytes, TargetChanged]]:
    """Wait until ``count`` events of the objective are on the topic (the relay is async)."""
    for _ in range(100):
        found = []
        for record in await kafka.tail(topic, 10_000):
            event = from_kafka(record.value, record.headers)
            assert isinstance(event.data, TargetChanged)
            if event.data.objective_id == objective_id:
                assert record.key is not None
                found.append((record.key, event.data))
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {len(found)} of {count} events arrived")


async def test_changes_are_published_as_target_states(
    client_as: ClientFactory, kafka: KafkaBus, settings: ObjectivesSettings
) -> None:
    alice = client_as("alice")
    segment = _segment()
    created = (
        await alice.post(
            "/v1/objectives",
            json=objective(
                f"ev-{segment[-8:].lower()}",
                target(segment=segment),
                target(
                    indicator="dropout_rate",
                    segment=segment,
                    direction="within",
                    threshold=["0.05", "0.20"],
                    warning_threshold=["0.07", "0.17"],
                ),
            ),
        )
    ).json()
    oid = created["id"]
    women, dropout = (t["id"] for t in created["targets"])
    events = await _events_for(kafka, settings.objectives_topic, oid, 2)
    assert {key.decode() for key, _ in events} == {women, dropout}
    states = {e.target_id: e for _, e in events}
    assert states[women].status == "active"
    assert states[women].owner == states[dropout].owner == "SPM officer"  # for the notifications
    assert (states[women].lower, states[women].upper) == (Decimal("0.60"), None)
    assert states[women].warning_lower == Decimal("0.63")
    assert (states[dropout].lower, states[dropout].upper) == (Decimal("0.05"), Decimal("0.20"))
    assert (states[dropout].warning_lower, states[dropout].warning_upper) == (
        Decimal("0.07"),
        Decimal("0.17"),
    )

    # a rename changes every target's state; dropping a target retires it
    await alice.patch(
        f"/v1/objectives/{oid}",
        json={
            "reason": "drop-out is handled by operations",
            "version": 1,
            "targets": [{**target(segment=segment), "id": women}],
        },
    )
    events = await _events_for(kafka, settings.objectives_topic, oid, 3)
    assert [(k.decode(), e.status, e.version) for k, e in events[2:]] == [(dropout, "retired", 2)]
    await alice.delete(f"/v1/objectives/{oid}", params={"reason": "end", "version": 2})
    events = await _events_for(kafka, settings.objectives_topic, oid, 4)
    assert [(k.decode(), e.status, e.version) for k, e in events[3:]] == [(women, "retired", 3)]


async def test_topic_is_created_compacted(
    app: Any, kafka_bootstrap: str, settings: ObjectivesSettings
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.objectives_topic)]
        )
    finally:
        await admin.close()
    configs = {
        entry[0]: entry[1]
        for response in responses
        for resource in response.resources
        for entry in resource[4]
    }
    assert configs["cleanup.policy"] == "compact"


async def test_history_pages_by_version_while_it_grows(client_as: ClientFactory) -> None:
    alice = client_as("alice")
    segment = _segment()
    body = objective(f"p-{segment[-8:].lower()}", target(segment=segment), reason="board")
    oid = (await alice.post("/v1/objectives", json=body)).json()["id"]
    for n in range(2, 5):
        r = await alice.patch(
            f"/v1/objectives/{oid}", json={"version": n - 1, "name": f"v{n}", "reason": f"r{n}"}
        )
        assert r.status_code == 200, r.text
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        r = await alice.get(f"/v1/objectives/{oid}/history", params=params)
        assert r.status_code == 200, r.text
        seen += [v["version"] for v in r.json()]
        if len(seen) == 2:  # a change between page fetches lands on a later page
            await alice.patch(
                f"/v1/objectives/{oid}", json={"version": 4, "name": "v5", "reason": "r5"}
            )
        cursor = r.headers.get(NEXT_CURSOR_HEADER)
        if cursor is None:
            break
        params = {"limit": 2, "cursor": cursor}
    assert seen == [1, 2, 3, 4, 5]
    # a cursor of a timestamped list (the alerts'), or garbage, names the field
    for bad in ["WyIyMDI1LTA2LTAxVDA4OjAwOjAwKzAwOjAwIiwieCJd", "%%%"]:
        r = await alice.get(f"/v1/objectives/{oid}/history", params={"cursor": bad})
        assert r.status_code == 422 and "query.cursor" in _errors(r), r.text
