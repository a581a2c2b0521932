"""The simulator: deterministic, contract-valid, and its drift scenario drifts where it should."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts.envelope import CanonicalEvent
from contracts.registry import EVENT_TYPES
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import DateBounds, InputEnvelope, Validator
from spm.simulator import Scenario, SimConfig, simulate, simulate_days
from tests.simulator.metrics import Ledger

SMALL = SimConfig(seed=7, days=60, clients=300, branches=3, officers=5)


def _all(config: SimConfig) -> list[dict[str, Any]]:
    return [event for day in simulate_days(config) for event in day]


def test_same_seed_same_events() -> None:
    first, second = _all(SMALL), _all(SMALL)
    assert first == second
    assert json.dumps(first) == json.dumps(second)


def test_other_seed_other_events() -> None:
    other = SimConfig(seed=8, days=60, clients=300, branches=3, officers=5)
    assert _all(SMALL) != _all(other)


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    """Days are produced one at a time: stopping early changes nothing already produced."""
    short = list(simulate_days(SimConfig(seed=7, days=20, clients=300, branches=3, officers=5)))
    long = list(simulate_days(SMALL))
    assert short == long[:20]


def test_one_list_per_day_in_event_time_order() -> None:
    days = list(simulate(SMALL))
    assert [d.day for d in days] == [SMALL.start + timedelta(days=i) for i in range(SMALL.days)]
    for sim_day in days:
        times = [e["time"] for e in sim_day.events]
        assert times == sorted(times)
        if sim_day.day > SMALL.start:  # day 0 also carries the opening book's history
            assert all(t.startswith(sim_day.day.isoformat()) for t in times), sim_day.day


def test_every_event_is_a_valid_input_event_and_becomes_canonical() -> None:
    validator = Validator(
        Pseudonymiser("a-test-pepper-of-enough-length-32"), "KES", DateBounds(date(1970, 1, 1), 1)
    )
    counts: Counter[str] = Counter()
    for event in _all(SimConfig(seed=3, days=240, clients=400, scenario=Scenario.drift)):
        InputEnvelope.model_validate(event)
        spec = EVENT_TYPES[event["type"]]
        assert spec.input_model is not None
        payload = spec.input_model.model_validate(event["data"])
        # nothing the input model would drop: every field we send is part of the contract
        assert set(event["data"]) <= set(payload.model_fields_set)
        assert isinstance(validator.canonical(event), CanonicalEvent)
        counts[event["type"]] += 1
    source_types = {t for t, spec in EVENT_TYPES.items() if spec.input_model is not None}
    assert set(counts) == source_types, "every source event type appears"


def test_exits_carry_types_and_reasons_and_complaints_conduct_categories() -> None:
    events = _all(SimConfig(seed=5, days=365, clients=800, scenario=Scenario.drift))
    exits = [e["data"] for e in events if e["type"] == "spm.client.exited.v1"]
    assert {"voluntary", "involuntary"} <= {x["exit_type"] for x in exits}
    assert all(x.get("reason_code") for x in exits if x["exit_type"] != "deceased")
    categories = {e["data"]["category"] for e in events if e["type"] == "spm.complaint.opened.v1"}
    assert {"staff_misconduct", "coercive_collection"} <= categories
    late = [e for e in events if e["type"] == "spm.loan.delinquency.v1"]
    assert any(e["data"]["days_past_due"] == 0 for e in late)
    assert any(e["data"]["days_past_due"] > 30 for e in late)


@pytest.fixture(scope="module")
def drift_run() -> tuple[SimConfig, Ledger]:
    config = SimConfig(seed=11, days=365, scenario=Scenario.drift)
    ledger = Ledger()
    for event in _all(config):
        ledger.add(event)
    return config, ledger


def test_drifting_branch_drifts_and_control_stays_healthy(
    drift_run: tuple[SimConfig, Ledger],
) -> None:
    config, ledger = drift_run
    drift, control = config.drift_branch_id, config.control_branch_id
    early_end = config.start + timedelta(days=59)
    late_end = config.end

    def window(branch: str, last: date, days: int) -> Any:
        return ledger.figures(branch, last - timedelta(days=days - 1), last)

    d_early, d_late = window(drift, early_end, 60), window(drift, late_end, 90)
    c_early, c_late = window(control, early_end, 60), window(control, late_end, 90)
    # loan sizes and DSTI breaches rise
    assert d_late.avg_amount > d_early.avg_amount * Decimal("1.4")
    assert d_early.dsti_share == 0
    assert d_late.dsti_share > 0.3
    # then PAR30
    assert ledger.par30(drift, early_end) < 0.03
    assert ledger.par30(drift, late_end) > 0.06
    # women's share of new borrowers falls
    assert d_early.women_share > 0.6
    assert d_late.women_share < 0.5
    # the complaint backlog grows past the 30-day SLA
    assert d_early.open_past_sla == 0
    assert d_late.open_past_sla >= 5
    # the control branch stays healthy all along
    for figures in (c_early, c_late):
        assert figures.dsti_share == 0
        assert figures.women_share > 0.65
        assert figures.open_past_sla == 0
    for month in range(12):
        day = config.start + timedelta(days=30 * month + 29)
        assert ledger.par30(control, day) < 0.04, day
        assert window(control, day, 90).open_past_sla == 0


def test_baseline_has_no_drift() -> None:
    config = SimConfig(seed=11, days=200, clients=800)
    ledger = Ledger()
    for event in _all(config):
        ledger.add(event)
    for branch in config.branch_list:
        figures = ledger.figures(branch, config.end - timedelta(days=89), config.end)
        assert figures.dsti_share == 0
        assert figures.open_past_sla == 0
        assert ledger.par30(branch, config.end) < 0.04


def test_config_refuses_a_drift_without_a_distinct_control() -> None:
    with pytest.raises(ValueError, match="differ"):
        SimConfig(scenario=Scenario.drift, drift_branch="BR-NAI", control_branch="BR-NAI")
    with pytest.raises(ValueError, match="unknown branch"):
        SimConfig(scenario=Scenario.drift, drift_branch="BR-NOPE")


def test_the_demo_makes_a_few_corrections_the_contract_can_cancel() -> None:
    """Disbursals posted wrong, undone and redone with another amount and date; write-offs
    undone (contract v1.1); no closure for a write-off, since a closure cannot be undone."""
    from spm.devmode import demo_config

    events = _all(demo_config())
    disbursals: dict[str, list[dict[str, Any]]] = {}
    write_offs: dict[str, dict[str, Any]] = {}
    undone_disbursals, undone_write_offs = [], []
    for event in events:
        data, kind = event["data"], event["type"]
        if kind == "spm.loan.disbursed.v1":
            assert data["transaction_id"]
            disbursals.setdefault(data["loan_id"], []).append(data)
        elif kind == "spm.loan.written_off.v1":
            write_offs[data["transaction_id"]] = data
        elif kind == "spm.loan.transaction_reversed.v1":
            loan = disbursals.get(data["loan_id"], [])
            if any(d["transaction_id"] == data["transaction_id"] for d in loan):
                undone_disbursals.append(data)
            elif data["transaction_id"] in write_offs:
                undone_write_offs.append(data)
        elif kind == "spm.loan.closed.v1":
            assert data["closure_type"] != "written_off"
    assert 3 <= len(undone_disbursals) <= 40
    assert 1 <= len(undone_write_offs) <= 20
    for reversal in undone_disbursals:
        first, second = disbursals[reversal["loan_id"]]  # the wrong one, then the right one
        assert reversal["transaction_id"] == first["transaction_id"] != second["transaction_id"]
        assert first["amount"] != second["amount"]
        assert first["disbursed_on"] < second["disbursed_on"] == reversal["reversed_on"]
    for reversal in undone_write_offs:
        write_off = write_offs[reversal["transaction_id"]]
        assert write_off["loan_id"] == reversal["loan_id"]
        assert write_off["written_off_on"] < reversal["reversed_on"]
