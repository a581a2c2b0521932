"""Corrections (contract v1.1) through the engine, on both modes, against the independent oracle:
disbursals undone and done again, undone for good, write-offs undone after the inferred exit,
write-offs of loans without a disbursal in force; in the order made, in reverse (every reversal
before what it cancels), across a restart (the state rebuilt from the stored facts) with every
event sent twice; and a generated stream with such sequences among late and duplicate events.
Every indicator, every segment, on many days: zero differing cells."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from contracts.envelope import CanonicalEvent
from tests.indicators.conftest import Harness
from tests.indicators.oracle.builders import day
from tests.indicators.oracle.generator import GenConfig, corrections, generate
from tests.indicators.oracle.harness import compare_day, report, sample_days
from tests.indicators.oracle.oracle import Oracle, Params
from tests.indicators.oracle.test_oracle import correction_streams

GNI = Decimal("1000")  # the harness's INDICATORS_GNI_PER_CAPITA
DAYS = [day(n) for n in (-1, 0, 1, 2, 3, 4, 5, 10, 11, 12, 20, 29, 30, 40, 50, 60, 95, 96, 100,
                         119, 120, 139, 140, 200, 250, 339, 340, 364, 500)]  # fmt: skip


async def api_day(h: Harness, on: date) -> dict[tuple[str, str], dict[str, Any]]:
    response = await h.get("/v1/indicators", as_of=on.isoformat())
    assert response.status_code == 200, response.text
    items = json.loads(response.text, parse_float=Decimal)["items"]
    return {(i["code"], i["segment"]): i for i in items}


async def assert_equals_oracle(h: Harness, events: list[CanonicalEvent], days: list[date]) -> None:
    oracle = Oracle(events, Params(gni_per_capita=GNI))
    await h.tick(max(days))  # values exist up to the business date
    mismatches, compared = [], 0
    for on in days:
        api = await api_day(h, on)
        compared += len(api)
        mismatches += compare_day(oracle, on, api)
    assert compared and not mismatches, report(mismatches, compared)


@pytest.mark.parametrize("name", sorted(correction_streams()))
@pytest.mark.parametrize("order", ["as_made", "reversed", "restart_and_duplicates"])
async def test_undo_and_redo_equal_the_oracle(harness: Harness, name: str, order: str) -> None:
    events = correction_streams()[name]
    if order == "as_made":
        await harness.send(events)
    elif order == "reversed":
        events = events[::-1]
        await harness.send(events)
    else:
        half = len(events) // 2
        await harness.send(events[:half])
        await harness.restart()  # the state is rebuilt from the stored facts
        await harness.send(events[half:] + events)  # every event again: duplicates
    await assert_equals_oracle(harness, events, DAYS)


async def test_a_generated_stream_with_corrections_equals_the_oracle(harness: Harness) -> None:
    cfg = GenConfig(seed=4242, n_events=6000)
    events = list(generate(cfg))
    assert len(corrections(events)) == 4, corrections(events)  # every kind of undo is in
    for start in range(0, len(events), 1500):  # several batches
        await harness.send(events[start : start + 1500])
    oracle = Oracle(events)
    assert oracle.business_date is not None
    days = sample_days(cfg.start + (cfg.end - cfg.start) // 40, oracle.business_date, 8, cfg.seed)
    await assert_equals_oracle(harness, events, days)
