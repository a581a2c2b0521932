"""The demo's drift scenario gives the same indicator values on the embedded mode (one process,
in-process bus, SQLite) and on the distributed stack (``spm serve ingest`` and ``spm serve
indicators`` as processes on real Kafka and PostgreSQL).

Both are fed the same simulated MFI (fixed seed and period) through the ingest HTTP API, with the
same pseudonym pepper, currency and indicator parameters. Once each has applied everything ingest
published (its stored offsets reach the end of every partition), every indicator of every segment
on a sample of days, and the day-by-day series of every indicator for the whole institution and
the drifting and control branches, must be equal: value, numerator, denominator and n.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.topics import CLIENTS, COMPLAINTS, LOANS
from services.common.auth import hash_key
from services.common.bus import Bus, KafkaBus
from services.indicators.config import IndicatorSettings
from services.indicators.service import IndicatorService
from services.indicators.store import read_offsets
from spm.devmode import build_dev_stack, demo_config
from spm.simulator import SimConfig
from spm.simulator.runner import run
from spm.simulator.sinks import HttpSink
from tests.alerts.servers import REPO, Proc, free_port
from tests.indicators.oracle.harness import sample_days, stored_offsets

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.timeout(600),  # two stacks fed one after the other (about a minute here)
]

DAYS = 90
PEPPER = "parity-pepper-0123456789abcdef01"
ADMIN = "parity-admin-secret"
SERIES_SEGMENTS = ("all", "branch:BR-MSA", "branch:BR-NAI")
CATCH_UP_S = 240.0
FIELDS = ("value", "numerator", "denominator", "n")

Key = tuple[str, str]
"""(indicator code, segment)"""
TP = tuple[str, int]


@dataclass
class Values:
    """What one stack's API answered."""

    business_date: str | None = None
    days: dict[date, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    series: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)


# --- reading the indicator API --------------------------------------------------------------


def _fields(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: item.get(name) for name in FIELDS}


async def _get(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, f"{path} {params}: {response.text[:500]}"
    return json.loads(response.text, parse_float=Decimal)


async def read_values(client: httpx.AsyncClient, config: SimConfig) -> Values:
    values = Values()
    values.business_date = (await _get(client, "/v1/indicators", code="active_clients"))["as_of"]
    for day in sample_days(config.start, config.end, 8, config.seed):
        body = await _get(client, "/v1/indicators", as_of=day.isoformat())
        values.days[day] = {(i["code"], i["segment"]): _fields(i) for i in body["items"]}
    catalog = await _get(client, "/v1/catalog")
    window = {"from": config.start.isoformat(), "to": config.end.isoformat()}
    for ind in catalog["indicators"]:
        for segment in SERIES_SEGMENTS:
            if segment.split(":")[0] not in ind["segments"]:
                continue
            body = await _get(
                client, f"/v1/indicators/{ind['code']}/series", segment=segment, **window
            )
            values.series[(ind["code"], segment)] = {p["as_of"]: _fields(p) for p in body["points"]}
    return values


# --- waiting until every published event is applied -----------------------------------------


async def end_offsets(bus: Bus, topics: list[str]) -> dict[TP, int]:
    """The end of every non-empty partition of ``topics`` (offset of its last record + 1)."""
    ends: dict[TP, int] = {}
    for topic in topics:
        for record in await bus.tail(topic, 1):
            ends[(record.topic, record.partition)] = record.offset + 1
    return ends


async def caught_up(
    ends: Mapping[TP, int],
    stored: Callable[[], Awaitable[Mapping[TP, int]]],
    check: Callable[[], None] = lambda: None,
) -> None:
    """Until the offsets the engine stored with its effects reach every end in ``ends``."""
    assert ends, "nothing was published"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CATCH_UP_S
    while True:
        offsets = await stored()
        behind = {tp: end for tp, end in ends.items() if offsets.get(tp, 0) < end}
        if not behind:
            return
        check()
        assert loop.time() < deadline, f"still behind after {CATCH_UP_S} s: {behind} {offsets}"
        await asyncio.sleep(0.5)


# --- the two stacks -------------------------------------------------------------------------


async def feed(client: httpx.AsyncClient, config: SimConfig) -> int:
    sink = HttpSink(str(client.base_url), ADMIN, client=client)
    stats = await run(config, sink)
    assert stats.days == config.days
    assert sink.accepted == stats.events, (sink.accepted, sink.duplicates, stats.events)
    return stats.events


@pytest.fixture
def embedded_dir(tmp_path: Path) -> Path:
    """The embedded mode's data directory, holding the pepper the distributed stack gets too."""
    data_dir = tmp_path / "embedded"
    data_dir.mkdir()
    (data_dir / "pseudonym_pepper").write_text(PEPPER)  # build_dev_stack uses the one it finds
    return data_dir


async def run_embedded(config: SimConfig, data_dir: Path) -> tuple[Values, IndicatorSettings]:
    stack = build_dev_stack(data_dir=data_dir, port=free_port(), api_key=ADMIN)
    async with stack.host_app.router.lifespan_context(stack.host_app):
        service = stack.services["indicators"].state.indicators
        assert isinstance(service, IndicatorService)
        settings = service.settings
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=stack.app),
            base_url=stack.base_url,
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=120,
        ) as client:
            await feed(client, config)
            topics = [settings.clients_topic, settings.loans_topic, settings.complaints_topic]
            ends = await end_offsets(service.bus, topics)

            async def stored() -> dict[TP, int]:
                async with service.sessions() as session:
                    return await read_offsets(session, settings.indicators_group_id, list(ends))

            await caught_up(ends, stored)
            return await read_values(client, config), settings


@pytest.fixture
def distributed(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> Iterator[Callable[[IndicatorSettings], dict[str, Proc]]]:
    """Starts ingest and indicators as ``spm serve`` processes with the parameters given."""
    procs: dict[str, Proc] = {}
    services = ("INGEST_", "INDICATORS_", "OBJECTIVES_", "ALERTS_", "FINERACT_")

    def start(params: IndicatorSettings) -> dict[str, Proc]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.upper().startswith(services)},
            "PYTHONPATH": str(REPO),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": postgres_url,
            "API_KEYS": json.dumps([{"name": "a", "sha256": hash_key(ADMIN), "scopes": ["admin"]}]),
            "PSEUDONYM_PEPPER": PEPPER,
            "INSTITUTION_CURRENCY": params.institution_currency,
            "INSTITUTION_TIMEZONE": params.institution_timezone,
            "INGEST_DB_SCHEMA": f"ingest_{unique}",
            "INGEST_TOPIC_SUFFIX": f".{unique}",
            "INDICATORS_TOPIC_SUFFIX": f".{unique}",
            "INDICATORS_DB_SCHEMA": f"indicators_{unique}",
            "INDICATORS_GROUP_ID": f"indicators-{unique}",
            # The parameters that change what the engine stores or shows, as the embedded had.
            "INDICATORS_SLA_DAYS": str(params.indicators_sla_days),
            "INDICATORS_DSTI_LIMIT": str(params.indicators_dsti_limit),
            "INDICATORS_LENDER_COUNT": str(params.indicators_lender_count),
            "INDICATORS_DROPOUT_DELAY_DAYS": str(params.indicators_dropout_delay_days),
            "INDICATORS_MIN_CELL_SIZE": str(params.indicators_min_cell_size),
            "INDICATORS_FOLLOW_CLOCK": str(params.indicators_follow_clock).lower(),
        }
        if params.indicators_gni_per_capita is not None:
            env["INDICATORS_GNI_PER_CAPITA"] = str(params.indicators_gni_per_capita)
        for name in ("ingest", "indicators"):
            procs[name] = Proc(env, free_port(), tmp_path / f"{name}.log", name)
            procs[name].start()
        return procs

    yield start
    for proc in procs.values():
        proc.stop()


async def run_distributed(
    config: SimConfig,
    start: Callable[[IndicatorSettings], dict[str, Proc]],
    params: IndicatorSettings,
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
) -> Values:
    procs = start(params)
    for proc in procs.values():
        await proc.ready(within=120)
    headers = {"Authorization": f"Bearer {ADMIN}"}

    def url(name: str) -> str:
        return f"http://127.0.0.1:{procs[name].port}"

    def alive() -> None:
        for proc in procs.values():
            assert proc.proc is not None and proc.proc.poll() is None, proc.log.read_text()[-3000:]

    async with httpx.AsyncClient(base_url=url("ingest"), headers=headers, timeout=120) as client:
        await feed(client, config)
    topics = [topic.name + f".{unique}" for topic in (CLIENTS, LOANS, COMPLAINTS)]
    bus = KafkaBus(kafka_bootstrap)
    try:
        ends = await end_offsets(bus, topics)
    finally:
        await bus.close()
    schema, group = f"indicators_{unique}", f"indicators-{unique}"
    await caught_up(ends, lambda: stored_offsets(postgres_url, schema, group), alive)
    async with httpx.AsyncClient(base_url=url("indicators"), headers=headers, timeout=120) as c:
        return await read_values(c, config)


# --- the comparison -------------------------------------------------------------------------


def differences(embedded: Values, distributed: Values) -> list[str]:
    out: list[str] = []
    if embedded.business_date != distributed.business_date:
        out.append(f"business date: {embedded.business_date} vs {distributed.business_date}")
    for day, want in embedded.days.items():
        got = distributed.days.get(day, {})
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                out.append(f"{day} {key}: embedded {want.get(key)} distributed {got.get(key)}")
    for key in sorted(set(embedded.series) | set(distributed.series)):
        want_s, got_s = embedded.series.get(key, {}), distributed.series.get(key, {})
        for as_of in sorted(set(want_s) | set(got_s)):
            if want_s.get(as_of) != got_s.get(as_of):
                out.append(
                    f"series {key} {as_of}: embedded {want_s.get(as_of)} "
                    f"distributed {got_s.get(as_of)}"
                )
    return out


async def test_embedded_and_distributed_give_the_same_values(
    embedded_dir: Path,
    distributed: Callable[[IndicatorSettings], dict[str, Proc]],
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
) -> None:
    config = demo_config(days=DAYS)
    embedded, params = await run_embedded(config, embedded_dir)
    other = await run_distributed(
        config, distributed, params, kafka_bootstrap, postgres_url, unique
    )

    # Not a vacuous comparison: the last day lists the drifting and control branches with values.
    assert embedded.business_date == config.end.isoformat()
    last = embedded.days[config.end]
    for segment in ("all", "branch:BR-MSA", "branch:BR-NAI"):
        assert last[("active_clients", segment)]["value"], segment
        assert last[("dsti_breach_share", segment)]["denominator"], segment
    assert all(embedded.series.values()), "a series came back empty"

    diff = differences(embedded, other)
    compared = sum(map(len, embedded.days.values())) + sum(map(len, embedded.series.values()))
    assert not diff, f"{len(diff)} of {compared} values differ; first ones:\n" + "\n".join(
        diff[:30]
    )
