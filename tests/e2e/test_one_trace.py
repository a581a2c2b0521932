"""One trace from the ingest request to the alert e-mail, through Kafka record headers: the
ingest POST span, the engine's batch span, the emission of the indicator values, the alert
evaluation and the e-mail's send span share one trace id and are linked parent -> child.

The services run in this process (ingest's app, the indicator service and the alert service on
the session's Kafka and PostgreSQL, a real SMTP server) so that one in-memory span exporter sees
every span."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.auth import hash_key
from services.common.bus import KafkaBus
from services.indicators.app import create_app as indicators_app
from services.indicators.config import IndicatorSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from tests.alerts.harness import Harness, settings_for, target
from tests.alerts.servers import SmtpServer
from tests.schemas import drop_schemas

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
WRITER = "trace-writer-secret"
READER = "trace-reader-secret"
KEYS = json.dumps(
    [
        {"name": "writer", "sha256": hash_key(WRITER), "scopes": ["ingest:write"]},
        {"name": "reader", "sha256": hash_key(READER), "scopes": ["indicators:read"]},
    ]
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes meanwhile (the services' tracers are the global one's)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the processor stays (the SDK cannot remove one) but keeps nothing


@asynccontextmanager
async def services(
    kafka: str, database: str, unique: str, smtp: SmtpServer
) -> AsyncIterator[tuple[httpx.AsyncClient, Harness]]:
    """Ingest (in-process HTTP), the indicator service and the alert service, wired by topic."""
    suffix = f".{unique}"
    alerts = await Harness.start(
        settings_for(
            kafka, database, unique, smtp_port=smtp.port,
            routes={"receivers": {"ops": {"email": ["ops@example.org"]}}},
            alerts_indicators_topic=f"spm.indicators.v1{suffix}",
        )
    )  # fmt: skip
    indicators = indicators_app(
        IndicatorSettings(
            kafka_bootstrap_servers=kafka, database_url=database, api_keys=KEYS,
            indicators_topic_suffix=suffix, indicators_group_id=f"indicators-{unique}",
            indicators_db_schema=f"ind_{unique}", indicators_emit_interval_seconds=0.2,
        ),
        bus=KafkaBus(kafka),
    )  # fmt: skip
    ingest = ingest_app(
        IngestSettings(
            kafka_bootstrap_servers=kafka, database_url=database, api_keys=KEYS,
            pseudonym_pepper="trace-pepper-0123456789abcdef0123",
            ingest_db_schema=f"ingest_{unique}", ingest_topic_suffix=suffix,
        )
    )  # fmt: skip
    service = indicators.state.indicators
    try:
        await service.start()
        async with ingest.router.lifespan_context(ingest):
            transport = httpx.ASGITransport(app=ingest)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
                yield client, alerts
    finally:
        await service.stop()
        await service.bus.close()
        await alerts.stop()
        await drop_schemas(database, f"ind_{unique}", f"ingest_{unique}", f"alerts_{unique}")


def _borrowers(unique: str, branch: str, genders: Sequence[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for n, gender in enumerate(genders):
        common = {
            "source": f"core:{unique}",
            "specversion": "1.0",
            "time": "2025-06-02T09:00:00+00:00",
            "datacontenttype": "application/json",
        }
        events += [
            {**common, "id": f"c-{n}", "type": "spm.client.registered.v1",
             "data": {"client_id": f"c{n}", "branch_id": branch, "gender": gender,
                      "registered_on": "2025-06-02"}},
            {**common, "id": f"l-{n}", "type": "spm.loan.disbursed.v1",
             "data": {"loan_id": f"l{n}", "client_id": f"c{n}", "branch_id": branch,
                      "product_id": "P1", "amount": "1000.00", "currency": "KES",
                      "disbursed_on": "2025-06-02"}},
        ]  # fmt: skip
    return events


def _one(spans: Sequence[ReadableSpan], name: str, **attributes: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> set[int]:
    """Span ids above ``span`` (FastAPI's own spans sit between the request and the handler)."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    found: set[int] = set()
    parent = _parent_id(span)
    while parent is not None and parent not in found:
        found.add(parent)
        above = by_id.get(parent)
        parent = None if above is None else _parent_id(above)
    return found


def _ids(spans: Sequence[ReadableSpan]) -> set[int]:
    return {s.context.span_id for s in spans if s.context is not None}


async def test_one_trace_from_the_ingest_request_to_the_alert_email(
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    spans: InMemorySpanExporter,
) -> None:
    branch = f"BR-{unique}"
    segment = f"branch:{branch}"
    async with services(kafka_bootstrap, postgres_url, unique, smtp) as (client, alerts):
        await alerts.targets(
            target("t-women", segment=segment, lower="0.5", for_days=0, notify=("ops",))
        )
        events = _borrowers(unique, branch, ["female", "female", *["male"] * 5])
        r = await client.post(
            "/v1/events/batch", json=events, headers={"Authorization": f"Bearer {WRITER}"}
        )
        assert r.status_code == 202, r.text
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not smtp.messages and loop.time() < deadline:
            await alerts.deliver()  # the alert service's clock is a manual one
            await asyncio.sleep(0.1)
        assert smtp.messages, "no alert e-mail"
        assert branch in smtp.messages[0]["Subject"]
        # the sink has the message before the sender's span ends (it ends when the SMTP
        # exchange returns): wait for the span, not only for the e-mail
        for _ in range(600):  # up to 30 s
            if any(
                s.name == "alerts.notify.send"
                and (s.attributes or {}).get("spm.channel") == "email"
                for s in spans.get_finished_spans()
            ):
                break
            await asyncio.sleep(0.05)

    finished = spans.get_finished_spans()
    [ingest] = _one(finished, "ingest.batch")
    assert ingest.context is not None
    trace_id = ingest.context.trace_id
    ours = [s for s in finished if s.context is not None and s.context.trace_id == trace_id]
    [post] = _one(ours, "POST /v1/events/batch")  # the service's server span (services.common.http)
    assert post.context is not None and post.parent is None  # the trace starts at the request
    batches = _one(ours, "indicators.batch")
    emits = _one(ours, "indicators.emit")
    evaluations = _one(ours, "alerts.evaluate", **{"spm.segment": segment})
    sends = _one(ours, "alerts.notify.send", **{"spm.channel": "email"})
    every_send = _one(finished, "alerts.notify.send")
    assert batches and emits and evaluations and sends, (
        sorted({s.name for s in ours}),
        [(s.attributes, s.parent, s.links) for s in every_send],
    )
    # parent -> child, hop by hop: request -> ingest batch -> engine batch(es) -> emission ->
    # evaluation -> e-mail
    assert post.context.span_id in _ancestors(ingest, ours)
    assert {_parent_id(b) for b in batches} == _ids([ingest])
    assert {_parent_id(e) for e in emits} <= _ids(batches)
    assert {_parent_id(e) for e in evaluations} <= _ids(emits)
    assert {_parent_id(s) for s in sends} <= _ids(evaluations)
