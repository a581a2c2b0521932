"""Apply a batch of accepted events to one unit's state and return the exact delta rows.

Each touched entity's contribution is subtracted before and added after the change, so the
stored deltas always equal the contributions of the current state (see contributions.py). The
'before' is the contribution the entity added last (kept on the entity), not a recomputation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial

from contracts import events as ev
from contracts.registry import SOURCE_EVENTS
from services.indicators.consumers.decode import payload
from services.indicators.contributions import (
    Deltas,
    Params,
    client_contribution,
    complaint_contribution,
    diff,
    loan_contribution,
    outstanding_steps,
    resolution,
    summarize,
)
from services.indicators.state import (
    UNREGISTERED,
    Attrs,
    LoanKey,
    LoanSummary,
    Touched,
    UnitState,
)

KIND_OF_TYPE: dict[str, int] = {e.type: i for i, e in enumerate(SOURCE_EVENTS, start=1)}
MODEL_OF_KIND: dict[int, type[ev.CanonicalData]] = {
    i: e.model for i, e in enumerate(SOURCE_EVENTS, start=1)
}


@dataclass
class UnitChanges:
    deltas: Deltas = field(default_factory=lambda: defaultdict(int))
    resolutions: dict[tuple[str, str], tuple[str, int, int] | None] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)


def _attrs(unit: UnitState, pid: str) -> Attrs:
    client = unit.clients.get(pid)
    return client.attrs if client is not None else UNREGISTERED


def _summaries(unit: UnitState, pid: str) -> list[LoanSummary]:
    client = unit.clients.get(pid)
    if client is None:
        return []
    out = []
    for key in client.loans:
        summary = unit.loans[key].summary
        if summary is not None:
            out.append(summary)
    return out


def _remember(unit: UnitState, touched: Touched, clients: set[str], params: Params) -> None:
    """Before a change: make sure every entity it touches knows what it added so far (entities
    loaded from the database compute it once, from the state they were rebuilt to)."""
    for key in touched.loans:
        loan = unit.loans.get(key)
        if loan is not None and loan.added is None:
            attrs = _attrs(unit, loan.disb.client) if loan.disb is not None else UNREGISTERED
            loan.added = loan_contribution(loan, attrs, params, attrs_of=partial(_attrs, unit))
    for pid in clients:
        client = unit.clients.get(pid)
        if client is not None and client.added is None:
            client.added = client_contribution(client, _summaries(unit, pid), params)
    for ckey in touched.complaints:
        complaint = unit.complaints.get(ckey)
        if complaint is not None and complaint.added is None:
            complaint.added = complaint_contribution(complaint, params)


def _borrowing_changes(
    unit: UnitState,
    pids: set[str],
    old_summaries: dict[LoanKey, LoanSummary | None],
    old_loans: dict[str, set[LoanKey]],
    params: Params,
    acc: Deltas,
) -> None:
    """Clients touched only through their loans: their own state did not change, so their
    contribution changes only if a loan's summary did (most repayments change none)."""
    for pid in pids:
        client = unit.clients.get(pid)
        if client is None:
            continue
        before_keys = old_loans.get(pid, set())
        if client.loans == before_keys and all(
            unit.loans[k].summary == old_summaries[k] for k in client.loans if k in old_summaries
        ):
            continue
        if client.added is None:
            before = [
                s
                for k in before_keys
                if (s := old_summaries[k] if k in old_summaries else unit.loans[k].summary)
                is not None
            ]
            client.added = client_contribution(client, before, params)
        after = client_contribution(client, _summaries(unit, pid), params)
        diff(acc, client.added, after)
        client.added = after


PAUSE_EVERY = 250
"""Events or entities between two pauses of :func:`apply_steps` (about a millisecond)."""

_SEEN_TYPES = frozenset(
    {ev.ClientRegistered, ev.ComplaintOpened, ev.LoanDisbursed, ev.ClientExited, ev.PovertyAssessed}
)
"""The only payloads :func:`seen_values` finds anything in (most events are repayments)."""


def seen_values(data: ev.CanonicalData) -> list[tuple[str, str]]:
    if isinstance(data, ev.ClientRegistered | ev.ComplaintOpened):
        return [("branch", data.branch_id)]
    if isinstance(data, ev.LoanDisbursed):
        return [("branch", data.branch_id), ("product", data.product_id)]
    if isinstance(data, ev.ClientExited) and data.reason_code is not None:
        return [("reason", data.reason_code)]
    if isinstance(data, ev.PovertyAssessed):
        return [("line", data.poverty_line)]
    return []


def apply_steps(
    unit: UnitState, events: list[tuple[str, ev.CanonicalData]], params: Params
) -> Generator[None, None, UnitChanges]:
    """Apply a unit's whole batch, pausing (``yield``) every few hundred steps so the caller can
    give the event loop a turn; returns the changes.

    Mutates ``unit``; on any later failure the caller must reload it from the database. Each
    touched entity's delta is its new contribution minus the one it added last, so an entity
    with several events in the batch is recomputed once: the larger the batch, the cheaper each
    event.
    """
    changes = UnitChanges()
    acc = changes.deltas
    touched = Touched()
    for i, (source, data) in enumerate(events):
        unit.touch_before(source, data, touched)
        if i % PAUSE_EVERY == PAUSE_EVERY - 1:
            yield
    before_res = {
        k: resolution(unit.complaints[k]) for k in touched.complaints if k in unit.complaints
    }
    direct = touched.client_events
    via_loans = touched.clients - direct
    old_summaries = {k: unit.loans[k].summary if k in unit.loans else None for k in touched.loans}
    old_loans = {p: set(unit.clients[p].loans) for p in via_loans if p in unit.clients}
    _remember(unit, touched, direct, params)
    yield
    for i, (source, data) in enumerate(events):
        unit.apply(source, data)
        if type(data) in _SEEN_TYPES:
            changes.seen.update(seen_values(data))
        if i % PAUSE_EVERY == PAUSE_EVERY - 1:
            yield
    for i, key in enumerate(touched.loans):
        loan = unit.loans[key]
        if loan.disb is None:  # none in force: nothing counts but write-offs (and may be undone)
            loan.summary = None
            after = loan_contribution(loan, UNREGISTERED, params, attrs_of=partial(_attrs, unit))
        else:
            steps = outstanding_steps(loan)
            loan.summary = summarize(loan, steps)
            after = loan_contribution(loan, _attrs(unit, loan.disb.client), params, steps)
        diff(acc, loan.added or [], after)
        loan.added = after
        if i % PAUSE_EVERY == PAUSE_EVERY - 1:
            yield
    for pid in direct:
        client = unit.clients.get(pid)
        if client is not None:
            after = client_contribution(client, _summaries(unit, pid), params)
            diff(acc, client.added or [], after)
            client.added = after
    for ckey in touched.complaints:
        complaint = unit.complaints[ckey]
        after = complaint_contribution(complaint, params)
        diff(acc, complaint.added or [], after)
        complaint.added = after
    yield
    _borrowing_changes(unit, via_loans, old_summaries, old_loans, params, acc)
    for ckey in touched.complaints:
        res = resolution(unit.complaints[ckey])
        if res != before_res.get(ckey):
            changes.resolutions[ckey] = res
    return changes


def replay(unit: UnitState, facts: list[tuple[int, str, str]]) -> None:
    """Re-apply stored facts to a unit's state (no deltas: those are stored already); call
    :func:`finish_replay` once every fact is in. The bodies decode as they did live."""
    for kind, source, body in facts:
        unit.apply(source, payload(MODEL_OF_KIND[kind], body.encode()))


def finish_replay(unit: UnitState) -> None:
    for loan in unit.loans.values():
        loan.summary = summarize(loan)
