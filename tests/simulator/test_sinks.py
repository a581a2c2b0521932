"""The simulator's outputs: NDJSON and CSV files, the bus (pseudonymised), the ingest HTTP API."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from contracts.envelope import from_kafka
from contracts.topics import CLIENTS, COMPLAINTS, LOANS
from services.common.auth import hash_key
from services.common.bus import MemoryBus
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.mapping import load_mappings, to_event
from spm.simulator import Scenario, SimConfig, simulate_days
from spm.simulator.runner import run
from spm.simulator.sinks import BusSink, CsvSink, HttpSink, NdjsonSink

CONFIG = SimConfig(seed=21, days=45, clients=150, branches=2, scenario=Scenario.drift)
PEPPER = "simulator-test-pepper-0123456789"
WRITER_KEY = "sim-writer-key"


def _events(config: SimConfig = CONFIG) -> list[dict[str, Any]]:
    return [event for day in simulate_days(config) for event in day]


async def test_ndjson_holds_every_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.ndjson"
    stats = await run(CONFIG, NdjsonSink(path))
    lines = path.read_text().splitlines()
    assert stats.days == CONFIG.days
    assert stats.events == len(lines)
    assert [json.loads(line) for line in lines] == _events()


def _rebuild_from_csv(directory: Path) -> dict[str, dict[str, Any]]:
    """Every CSV row through its mapping, as ``spm import csv`` reads it."""
    rebuilt: dict[str, dict[str, Any]] = {}
    for mapping_file in sorted(directory.glob("*.mapping.yaml")):
        (mapping,) = load_mappings(mapping_file)
        csv_file = mapping_file.with_name(mapping_file.name.replace(".mapping.yaml", ".csv"))
        with csv_file.open(newline="") as handle:
            for row in csv.DictReader(handle):
                event = to_event(
                    mapping, row, source=CONFIG.source, timezone="UTC", hash_id=lambda s, t: t
                )
                assert event is not None
                rebuilt[event["id"]] = event
    return rebuilt


async def test_csv_files_map_back_to_the_same_events(tmp_path: Path) -> None:
    """Each CSV comes with a mapping; ``spm import csv``'s mapper rebuilds the input events."""
    await run(CONFIG, CsvSink(tmp_path, CONFIG.source))
    originals = {e["id"]: e for e in _events()}
    rebuilt = _rebuild_from_csv(tmp_path)
    assert rebuilt.keys() == originals.keys()
    for event_id, event in rebuilt.items():
        original = originals[event_id]
        assert event["type"] == original["type"]
        assert event["time"] == original["time"]
        sent = {k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in original["data"].items()}  # fmt: skip
        assert {k: str(v) for k, v in event["data"].items()} == sent


async def test_bus_sink_publishes_pseudonymised_canonical_events() -> None:
    bus = MemoryBus()
    sink = BusSink(bus, PEPPER, "KES")
    await run(CONFIG, sink)
    consumer = bus.consumer("sim-test", [CLIENTS.name, LOANS.name, COMPLAINTS.name])
    await consumer.start()
    try:
        records = []
        while batch := await consumer.getmany(timeout_ms=200):
            records += batch
    finally:
        await consumer.stop()
        await bus.close()
    assert len(records) == sink.published == len(_events())
    types: Counter[str] = Counter()
    for record in records:
        event = from_kafka(record.value, record.headers)
        types[event.type] += 1
        raw = record.value or b""
        assert b'"client_id"' not in raw and b'"officer_id"' not in raw
    assert types["spm.loan.disbursed.v1"] > 0 and types["spm.complaint.opened.v1"] > 0


async def test_http_sink_posts_to_the_real_ingest_api(tmp_path: Path) -> None:
    """The ingest app in embedded mode (in-process bus, SQLite): every event accepted, and a
    replay of the same run is recognised as duplicates."""
    settings = IngestSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
        pseudonym_pepper=PEPPER,
        api_keys=json.dumps(
            [{"name": "sim", "sha256": hash_key(WRITER_KEY), "scopes": ["ingest:write"]}]
        ),
    )
    bus = MemoryBus()
    app = create_app(settings, bus=bus)
    config = SimConfig(seed=4, days=20, clients=80, branches=2)
    total = len(_events(config))
    async with app.router.lifespan_context(app):
        for expect_accepted in (total, 0):
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://ingest"
            )
            sink = HttpSink("http://ingest", WRITER_KEY, batch_size=500, client=client)
            try:
                await run(config, sink)
            finally:
                await client.aclose()
            assert sink.accepted == expect_accepted
            assert sink.accepted + sink.duplicates == total
    await bus.close()
