"""What each client, loan and complaint contributes to the daily component deltas.

Every contribution is a pure function of the entity's state (and its client's attributes), so an
engine that subtracts an entity's contribution before a change and adds it after stays exact
whatever the order of arrival: late events, re-registrations, reversals, cancelled inferred exits.
A contribution is returned as a value (a list of (segment set, items)) so the engine can keep the
last one it added per entity and subtract exactly that, instead of recomputing it.
Deltas are integers in the component's unit (see ``catalog.COMPONENT_SCALE``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate

from services.indicators.catalog import (
    CONDUCT_CATEGORIES,
    EXIT_REASON_PREFIX,
    POVERTY_N,
    POVERTY_SUM,
)
from services.indicators.state import (
    UNREGISTERED,
    Attrs,
    ClientState,
    ComplaintState,
    Contribution,
    LoanState,
    LoanSummary,
)

Deltas = defaultdict[tuple[str, tuple[str, ...], int], int]
"""(component, segment set, day) -> delta: one row counts in every segment of its set."""

Steps = tuple[list[int], list[int]]
"""(value dates, cumulative principal repaid up to each) of a loan."""


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


def add(acc: Deltas, contribution: Contribution, sign: int) -> None:
    for segs, items in contribution:
        for component, day, value in items:
            if value:
                acc[(component, segs, day)] += sign * value


def diff(acc: Deltas, before: Contribution, after: Contribution) -> None:
    """``add(after, +1)`` and ``add(before, -1)``, skipping the items they share at the start
    and the end of each segment set's list (they cancel exactly; most changes touch a few)."""
    if before == after:
        return
    if len(before) != len(after) or any(b[0] != a[0] for b, a in zip(before, after, strict=True)):
        add(acc, before, -1)
        add(acc, after, +1)
        return
    for (segs, old), (_, new) in zip(before, after, strict=True):
        if old == new:
            continue
        n = min(len(old), len(new))
        i = 0
        while i < n and old[i] == new[i]:
            i += 1
        j = 0
        while j < n - i and old[-1 - j] == new[-1 - j]:
            j += 1
        for component, day, value in old[i : len(old) - j]:
            if value:
                acc[(component, segs, day)] -= value
        for component, day, value in new[i : len(new) - j]:
            if value:
                acc[(component, segs, day)] += value


# --- loans -------------------------------------------------------------------------------------


def outstanding_steps(loan: LoanState) -> Steps:
    """Cumulative principal repaid by value date (reversed transactions excluded)."""
    paid: dict[int, int] = defaultdict(int)
    reversed_ = loan.reversed
    for tx, payments in loan.repayments.items():
        if tx not in reversed_:
            for day, principal in payments:
                paid[day] += principal
    days = sorted(paid)
    return days, list(accumulate(map(paid.__getitem__, days)))


def _dpd_reports(loan: LoanState) -> tuple[list[int], list[int]]:
    days = sorted(loan.delinquency)
    return days, [loan.delinquency[d][1] for d in days]


def summarize(loan: LoanState, steps: Steps | None = None) -> LoanSummary | None:
    """The positive-outstanding open interval and the end of a disbursed loan."""
    d = loan.disb
    if d is None:
        return None
    end = loan.end
    repaid = _repaid_on(d.amount, d.day, outstanding_steps(loan) if steps is None else steps)
    stop = end if repaid is None or (end is not None and end < repaid) else repaid
    return LoanSummary(d.branch, d.product, d.day, stop, end)


def _repaid_on(amount: int, start: int, steps: Steps) -> int | None:
    """The first day from ``start`` on (``start`` or a value date after it) by which the
    principal repaid reaches ``amount``; None if it has not. Repayments are never negative, so
    the cumulative sums never decrease and two bisections find it (summarize runs for every
    touched loan of every batch: a walk over every value date cost more)."""
    days, cumulative = steps
    idx = bisect_right(days, start) - 1
    if amount <= (cumulative[idx] if idx >= 0 else 0):
        return start
    first = bisect_left(cumulative, amount)
    return days[first] if first < len(days) else None


def loan_contribution(
    loan: LoanState,
    attrs: Attrs,
    params: Params,
    steps: Steps | None = None,
    attrs_of: Callable[[str], Attrs] | None = None,
) -> Contribution:
    """``attrs``: the attributes of the disbursal in force's client; ``attrs_of`` those of any
    client (needed only for write-offs of a loan without a disbursal in force)."""
    d = loan.disb
    if d is None:
        return _loose_writeoffs(loan, attrs_of) if loan.writeoffs else []
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
    items += [("writeoff", w.day, w.amount) for w in loan.writeoffs_in_force()]
    items += _portfolio_items(loan, outstanding_steps(loan) if steps is None else steps)
    segs = client_segments(attrs)  # the loan's own branch and product, registered client or not
    segs[1 : 2 if attrs.registered else 1] = [f"branch:{d.branch}", f"product:{d.product}"]
    return [(tuple(segs), items)]


def _loose_writeoffs(loan: LoanState, attrs_of: Callable[[str], Attrs] | None) -> Contribution:
    """Write-offs of a loan with no disbursal in force count in ``write_off_ratio``'s numerator
    only: in ``all`` and the gender and rural segments of each write-off's own client."""
    by_segs: dict[tuple[str, ...], list[tuple[str, int, int]]] = defaultdict(list)
    for w in loan.writeoffs_in_force():
        attrs = attrs_of(w.client) if attrs_of is not None else UNREGISTERED
        segs = client_segments(attrs)
        if attrs.registered:
            del segs[1]  # no branch: that would come from a disbursal
        by_segs[tuple(segs)].append(("writeoff", w.day, w.amount))
    return sorted(by_segs.items())


def _portfolio_items(loan: LoanState, steps: Steps) -> list[tuple[str, int, int]]:
    """glp / par30 / par90 deltas: outstanding principal while open, split by days past due."""
    d = loan.disb
    assert d is not None  # noqa: S101 - checked by the caller
    end = loan.end
    start = d.day
    if end is not None and end <= start:
        return []
    pay_days, cumulative = steps
    rep_days, dpds = _dpd_reports(loan)
    points = {start}
    points.update(pay_days[bisect_right(pay_days, start) :])  # value dates are sorted
    for a, dpd in zip(rep_days, dpds, strict=True):
        points.add(a)
        if dpd > 0:
            points.update((a + 31 - dpd, a + 91 - dpd))
    ordered = sorted(points)
    ordered = ordered[
        bisect_left(ordered, start) : None if end is None else bisect_left(ordered, end)
    ]
    items: list[tuple[str, int, int]] = []
    glp = par30 = par90 = 0
    amount = d.amount
    n_pay, n_rep = len(pay_days), len(rep_days)
    p = r = -1  # the last payment / report on or before the day (both lists are sorted)
    for day in ordered:
        while p + 1 < n_pay and pay_days[p + 1] <= day:
            p += 1
        while r + 1 < n_rep and rep_days[r + 1] <= day:
            r += 1
        outstanding = amount - cumulative[p] if p >= 0 else amount
        if outstanding < 0:
            outstanding = 0
        dpd = 0 if r < 0 or dpds[r] == 0 else dpds[r] + day - rep_days[r]
        o30 = outstanding if dpd > 30 else 0
        o90 = outstanding if dpd > 90 else 0
        if outstanding != glp:
            items.append(("glp", day, outstanding - glp))
        if o30 != par30:
            items.append(("par30", day, o30 - par30))
        if o90 != par90:
            items.append(("par90", day, o90 - par90))
        glp, par30, par90 = outstanding, o30, o90
    if end is not None:
        items += [(n, end, -v) for n, v in (("glp", glp), ("par30", par30), ("par90", par90)) if v]
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
    client: ClientState, summaries: list[LoanSummary], params: Params
) -> Contribution:
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
    items += [(POVERTY_N + line, day, 1) for day, _, line in client.assessments]
    items += [(POVERTY_SUM + line, day, value) for day, value, line in client.assessments]
    return [(tuple(segs), items), *_borrower_contribution(attrs, summaries)]


def _borrower_contribution(attrs: Attrs, summaries: list[LoanSummary]) -> Contribution:
    """Active borrowers: a client counts once per segment while any of its loans there is open
    with outstanding principal > 0."""
    if not summaries:
        return []
    groups: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for s in summaries:
        groups[""].append((s.start, s.stop))
        groups[f"branch:{s.branch}"].append((s.start, s.stop))  # the loan's, registered or not
        groups[f"product:{s.product}"].append((s.start, s.stop))
    names = ["ab"]
    if attrs.registered and attrs.gender == "female":
        names.append("ab_female")
    if attrs.registered and attrs.rural is True:
        names.append("ab_rural")
    segs_all = tuple(s for s in client_segments(attrs) if not s.startswith("branch:"))
    out: Contribution = []
    for group, intervals in groups.items():
        items: list[tuple[str, int, int]] = []
        for start, stop in _union(intervals):
            for name in names:
                items.append((name, start, 1))
                if stop is not None:
                    items.append((name, stop, -1))
        out.append((segs_all if group == "" else (group,), items))
    return out


# --- complaints --------------------------------------------------------------------------------


def complaint_contribution(c: ComplaintState, params: Params) -> Contribution:
    if c.opened_day is None:
        return []
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
    return [(("all", f"branch:{c.branch}"), items)]


def resolution(c: ComplaintState) -> tuple[str, int, int] | None:
    """(branch, resolved day, resolution time in microseconds) of a resolved, opened complaint."""
    if c.opened_us is None or c.resolved_us is None or c.resolved_day is None:
        return None
    return (c.branch or "", c.resolved_day, c.resolved_us - c.opened_us)
