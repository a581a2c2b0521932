"""What each client, loan and complaint contributes to the daily component deltas.

Every contribution is a pure function of the entity's state (and its client's attributes), so an
engine that subtracts an entity's contribution before a change and adds it after stays exact
whatever the order of arrival: late events, re-registrations, reversals, cancelled inferred exits.
Deltas are integers in the component's unit (see ``catalog.COMPONENT_SCALE``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from services.indicators.catalog import CONDUCT_CATEGORIES, EXIT_REASON_PREFIX
from services.indicators.state import (
    Attrs,
    ClientState,
    ComplaintState,
    LoanState,
    LoanSummary,
)

Deltas = defaultdict[tuple[str, tuple[str, ...], int], int]
"""(component, segment set, day) -> delta: one row counts in every segment of its set."""


@dataclass(frozen=True, slots=True)
class Params:
    sla_days: int = 30
    dsti_limit: Decimal = Decimal("0.5")
    lender_count: int = 3
    dropout_delay_days: int = 90


def _rural(attrs: Attrs) -> list[str]:
    return [] if attrs.rural is None else [f"rural:{'true' if attrs.rural else 'false'}"]


def client_segments(attrs: Attrs) -> list[str]:
    if not attrs.registered:
        return ["all", "gender:unknown"]
    return ["all", f"branch:{attrs.branch}", f"gender:{attrs.gender}", *_rural(attrs)]


def _add(
    acc: Deltas, segs: Iterable[str], items: Iterable[tuple[str, int, int]], sign: int
) -> None:
    seg_set = tuple(segs)
    for component, day, value in items:
        if value:
            acc[(component, seg_set, day)] += sign * value


# --- loans -------------------------------------------------------------------------------------


def _outstanding_steps(loan: LoanState) -> tuple[list[int], list[int]]:
    """Cumulative principal repaid by value date (reversed transactions excluded)."""
    paid: dict[int, int] = defaultdict(int)
    for tx, payments in loan.repayments.items():
        if tx not in loan.reversed:
            for day, principal in payments:
                paid[day] += principal
    days = sorted(paid)
    cumulative, total = [], 0
    for day in days:
        total += paid[day]
        cumulative.append(total)
    return days, cumulative


def _dpd_reports(loan: LoanState) -> tuple[list[int], list[int]]:
    days = sorted(loan.delinquency)
    return days, [loan.delinquency[d][1] for d in days]


def summarize(loan: LoanState) -> LoanSummary | None:
    """The positive-outstanding open interval and the end of a disbursed loan."""
    d = loan.disb
    if d is None:
        return None
    end = loan.end
    days, cumulative = _outstanding_steps(loan)
    stop = end
    for day in [d.day, *[x for x in days if x > d.day]]:
        idx = bisect_right(days, day) - 1
        if d.amount - (cumulative[idx] if idx >= 0 else 0) <= 0:
            stop = day if stop is None else min(stop, day)
            break
    return LoanSummary(d.branch, d.product, d.day, stop, end)


def loan_contribution(
    loan: LoanState, attrs: Attrs, params: Params, acc: Deltas, sign: int
) -> None:
    d = loan.disb
    if d is None:
        return
    female = attrs.registered and attrs.gender == "female"
    items: list[tuple[str, int, int]] = [("disb_n", d.day, 1), ("disb_amount", d.day, d.amount)]
    if d.cycle == 1:
        items.append(("fc_n", d.day, 1))
        if female:
            items.append(("fc_female", d.day, 1))
    if d.instalment is not None and d.income is not None and d.instalment > 0 and d.income > 0:
        items.append(("dsti_n", d.day, 1))
        if d.instalment > params.dsti_limit * d.income:
            items.append(("dsti_breach", d.day, 1))
    if d.lenders is not None:
        items.append(("ml_n", d.day, 1))
        if d.lenders >= params.lender_count:
            items.append(("ml_hit", d.day, 1))
    items += [("writeoff", day, amount) for day, amount in loan.writeoffs]
    items += _portfolio_items(loan)
    if attrs.registered:
        segs = client_segments(attrs)
        segs[1:2] = [f"branch:{d.branch}", f"product:{d.product}"]
    else:
        segs = ["all", "gender:unknown"]
    _add(acc, segs, items, sign)


def _portfolio_items(loan: LoanState) -> list[tuple[str, int, int]]:
    """glp / par30 / par90 deltas: outstanding principal while open, split by days past due."""
    d = loan.disb
    assert d is not None  # noqa: S101 - checked by the caller
    end = loan.end
    if end is not None and end <= d.day:
        return []
    pay_days, cumulative = _outstanding_steps(loan)
    rep_days, dpds = _dpd_reports(loan)
    points = {d.day}
    points.update(x for x in pay_days if x > d.day)
    for i, a in enumerate(rep_days):
        points.add(a)
        if dpds[i] > 0:
            points.update((a + 31 - dpds[i], a + 91 - dpds[i]))
    ordered = sorted(p for p in points if p >= d.day and (end is None or p < end))
    items: list[tuple[str, int, int]] = []
    prev = (0, 0, 0)
    for day in ordered:
        idx = bisect_right(pay_days, day) - 1
        outstanding = max(0, d.amount - (cumulative[idx] if idx >= 0 else 0))
        r = bisect_right(rep_days, day) - 1
        dpd = 0 if r < 0 or dpds[r] == 0 else dpds[r] + day - rep_days[r]
        now = (outstanding, outstanding if dpd > 30 else 0, outstanding if dpd > 90 else 0)
        for name, before, after in zip(("glp", "par30", "par90"), prev, now, strict=True):
            if after != before:
                items.append((name, day, after - before))
        prev = now
    if end is not None:
        items += [(n, end, -v) for n, v in zip(("glp", "par30", "par90"), prev, strict=True) if v]
    return items


# --- clients -----------------------------------------------------------------------------------


def _union(intervals: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    out: list[tuple[int, int | None]] = []
    for start, stop in sorted(intervals, key=lambda iv: iv[0]):
        if stop is not None and stop <= start:
            continue
        if out and (out[-1][1] is None or start <= out[-1][1]):
            last_start, last_stop = out[-1]
            merged = None if last_stop is None or stop is None else max(last_stop, stop)
            out[-1] = (last_start, merged)
        else:
            out.append((start, stop))
    return out


def client_contribution(
    client: ClientState,
    summaries: list[LoanSummary],
    params: Params,
    acc: Deltas,
    sign: int,
) -> None:
    attrs = client.attrs
    segs = client_segments(attrs)
    items: list[tuple[str, int, int]] = []
    if attrs.registered and client.reg_day is not None:
        reg = client.reg_day
        items += [("clients_active", reg, 1), ("registrations", reg, 1)]
        exit_day: int | None = None
        if client.exit is not None:
            exit_day, exit_type, reason = client.exit
            if exit_type != "deceased":
                items.append(("exits_dropout", exit_day, 1))
            if reason is not None:
                items += [
                    ("exits_with_reason", exit_day, 1),
                    (EXIT_REASON_PREFIX + reason, exit_day, 1),
                ]
        elif summaries and all(s.end is not None for s in summaries):
            exit_day = (
                max(s.end for s in summaries if s.end is not None) + params.dropout_delay_days
            )
            items.append(("exits_dropout", exit_day, 1))
        if exit_day is not None:
            items.append(("clients_active", max(reg, exit_day), -1))
    items += [("poverty_n", day, 1) for day, _ in client.assessments]
    items += [("poverty_sum", day, value) for day, value in client.assessments]
    _add(acc, segs, items, sign)
    _borrower_contribution(attrs, summaries, acc, sign)


def _borrower_contribution(
    attrs: Attrs, summaries: list[LoanSummary], acc: Deltas, sign: int
) -> None:
    """Active borrowers: a client counts once per segment while any of its loans there is open
    with outstanding principal > 0."""
    if not summaries:
        return
    groups: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for s in summaries:
        groups[""].append((s.start, s.stop))
        if attrs.registered:
            groups[f"branch:{s.branch}"].append((s.start, s.stop))
            groups[f"product:{s.product}"].append((s.start, s.stop))
    names = ["ab"]
    if attrs.registered and attrs.gender == "female":
        names.append("ab_female")
    if attrs.registered and attrs.rural is True:
        names.append("ab_rural")
    segs_all = client_segments(attrs)
    segs_all = [s for s in segs_all if not s.startswith("branch:")]
    for group, intervals in groups.items():
        items: list[tuple[str, int, int]] = []
        for start, stop in _union(intervals):
            for name in names:
                items.append((name, start, 1))
                if stop is not None:
                    items.append((name, stop, -1))
        _add(acc, segs_all if group == "" else [group], items, sign)


# --- complaints --------------------------------------------------------------------------------


def complaint_contribution(c: ComplaintState, params: Params, acc: Deltas, sign: int) -> None:
    if c.opened_day is None:
        return
    opened = c.opened_day
    items: list[tuple[str, int, int]] = [("cmp_opened", opened, 1)]
    if c.category in CONDUCT_CATEGORIES:
        items.append(("cmp_conduct", opened, 1))
    resolved = c.resolved_day
    if resolved is not None:
        items.append(("cmp_resolved", resolved, 1))
        if resolved - opened <= params.sla_days:
            items.append(("cmp_resolved_sla", resolved, 1))
    past = opened + params.sla_days + 1
    if resolved is None or past < resolved:
        items.append(("cmp_open_past_sla", past, 1))
        if resolved is not None:
            items.append(("cmp_open_past_sla", resolved, -1))
    _add(acc, ["all", f"branch:{c.branch}"], items, sign)


def resolution(c: ComplaintState) -> tuple[str, int, int] | None:
    """(branch, resolved day, resolution time in microseconds) of a resolved, opened complaint."""
    if c.opened_us is None or c.resolved_us is None or c.resolved_day is None:
        return None
    return (c.branch or "", c.resolved_day, c.resolved_us - c.opened_us)
