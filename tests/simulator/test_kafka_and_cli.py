"""``spm simulate`` from the command line, and straight onto the real Kafka broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.envelope import from_kafka
from contracts.topics import CLIENTS, COMPLAINTS, LOANS
from services.common.bus import KafkaBus, Record
from spm.cli import app
from spm.simulator import Scenario, SimConfig, simulate_days
from spm.simulator.runner import run
from spm.simulator.sinks import BusSink

PEPPER = "simulator-kafka-pepper-0123456789"


def test_cli_writes_ndjson(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    args = ["simulate", "--days", "15", "--clients", "60", "--branches", "2", "--seed", "9"]
    result = CliRunner().invoke(app, [*args, "--scenario", "drift", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "15 days" in result.output
    expected = SimConfig(seed=9, days=15, clients=60, branches=2, scenario=Scenario.drift)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [e for day in simulate_days(expected) for e in day]


def test_cli_refuses_a_bad_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", "drift", "--branches", "1", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code != 0
    assert "at least two branches" in result.output


@pytest.mark.kafka
async def test_bus_sink_on_real_kafka(kafka_bootstrap: str, unique: str) -> None:
    """Canonical events land on the (suffixed) topics, keyed by the client pseudonym."""
    config = SimConfig(seed=2, days=20, clients=80, branches=2)
    suffix = f"-sim-{unique}"
    bus = KafkaBus(kafka_bootstrap)
    sink = BusSink(bus, PEPPER, "KES", topic_suffix=suffix)
    try:
        await run(config, sink)
        topics = [t.name + suffix for t in (CLIENTS, LOANS, COMPLAINTS)]
        consumer = bus.consumer(f"sim-{unique}", topics)
        await consumer.start()
        try:
            records: list[Record] = []
            while len(records) < sink.published:
                batch = await consumer.getmany(timeout_ms=5000)
                assert batch, f"only {len(records)} of {sink.published} records arrived"
                records += batch
        finally:
            await consumer.stop()
    finally:
        await bus.close()
    assert len(records) == sink.published == sum(len(d) for d in simulate_days(config))
    for record in records:
        event = from_kafka(record.value, record.headers)
        if record.topic != COMPLAINTS.name + suffix:
            assert record.key == event.partitionkey.encode()
            assert len(event.partitionkey) == 64
