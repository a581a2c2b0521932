"""Read indicator values from the stored deltas: a snapshot of every indicator and segment on
one day (one aggregate query), or one indicator's daily series.

Stocks are cumulative sums of deltas up to D; flows sums over the window D-N+1..D; a ``mean``
term is the mean over the window's days of a stock. Partial rows of every unit are summed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Numeric

from services.indicators import models as m
from services.indicators.catalog import (
    GENDERS,
    Indicator,
    Seen,
    Term,
    component_scale,
    indicators,
)

MICROS_PER_DAY = 86_400_000_000
WINDOWS = (30, 90, 365)


@dataclass(frozen=True, slots=True)
class Value:
    value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    n: int | None


@dataclass(frozen=True, slots=True)
class Parameters:
    gni_per_capita: Decimal | None
    min_cell_size: int
    poverty_line: str = "national"


async def business_date(session: AsyncSession) -> date | None:
    marks = (await session.execute(select(func.max(m.watermarks.c.max_day)))).scalar()
    tick = (await session.execute(select(m.clock.c.day).where(m.clock.c.name == "tick"))).scalar()
    days = [d for d in (marks, tick) if d is not None]
    return date.fromordinal(max(days)) if days else None


async def seen(session: AsyncSession) -> dict[str, list[str]]:
    rows = await session.execute(select(m.seen_values.c.dimension, m.seen_values.c.value))
    out: dict[str, list[str]] = defaultdict(list)
    for dimension, value in rows:
        out[dimension].append(value)
    return {k: sorted(v) for k, v in out.items()}


def catalog_seen(seen_values: dict[str, list[str]], primary_line: str) -> Seen:
    """What the catalog's open-ended families (exit reasons, poverty lines) need."""
    return Seen(
        frozenset(seen_values.get("reason", [])),
        frozenset(seen_values.get("line", [])),
        primary_line,
    )


def segments_for(ind: Indicator, seen_values: dict[str, list[str]]) -> list[str]:
    out = ["all"]
    for dim in ind.segments[1:]:
        if dim == "gender":
            out += [f"gender:{g}" for g in GENDERS]
        elif dim == "rural":
            out += ["rural:true", "rural:false"]
        else:
            out += [f"{dim}:{v}" for v in seen_values.get(dim, [])]
    return out


def _exact(raw: int, component: str) -> Fraction:
    return Fraction(raw, 10 ** component_scale(component))


def to_decimal(value: Fraction) -> Decimal:
    """Exact when the fraction terminates (sums, counts); else rounded to 28 digits."""
    if value.denominator == 1:
        return Decimal(value.numerator)
    return Decimal(value.numerator) / Decimal(value.denominator)


def _finish(ind: Indicator, num: Fraction, den: Fraction | None, params: Parameters) -> Value:
    """Value = multiplier × numerator ÷ denominator, computed exactly and rounded once."""
    if ind.denominator is None:
        return Value(to_decimal(num), to_decimal(num), None, None)
    assert den is not None  # noqa: S101
    if ind.gni_denominator:
        if params.gni_per_capita is None:
            return Value(None, to_decimal(num), None, None)
        den = den * Fraction(params.gni_per_capita)
    value = None if den == 0 else to_decimal(num * ind.multiplier / den)
    if params.min_cell_size and den < params.min_cell_size:
        value = None
    return Value(value, to_decimal(num), to_decimal(den), None)


def percentile(sorted_micros: list[int], q: Decimal) -> Decimal:
    """percentile_cont / numpy 'linear' over resolution times, in fractional days."""
    n = len(sorted_micros)
    h = Fraction(q) * (n - 1)
    lo = int(h)
    hi = min(lo + 1, n - 1)
    exact = sorted_micros[lo] + (h - lo) * (sorted_micros[hi] - sorted_micros[lo])
    frac = exact / MICROS_PER_DAY
    return Decimal(frac.numerator) / Decimal(frac.denominator)


def _quantile_value(ind: Indicator, values: list[int], params: Parameters) -> Value:
    n = len(values)
    if n == 0 or ind.quantile is None:
        return Value(None, None, None, n)
    value: Decimal | None = percentile(sorted(values), ind.quantile)
    if params.min_cell_size and n < params.min_cell_size:
        value = None
    return Value(value, None, None, n)


# --- snapshot on one day ------------------------------------------------------------------------


async def snapshot(
    session: AsyncSession, day: date, params: Parameters, codes: Iterable[Indicator] | None = None
) -> dict[tuple[str, str], Value]:
    """Every indicator (or the given ones) for every listed segment on ``day``."""
    d = day.toordinal()
    c = m.deltas.c
    value = c.value

    def window_sum(n: int) -> Any:
        return func.sum(case((and_(c.day > d - n, c.day <= d), value), else_=0))

    weight = case((c.day <= d - 364, literal(365)), else_=literal(d + 1) - c.day)
    per_set = (
        select(
            c.component,
            c.set_id,
            func.sum(case((c.day <= d, value), else_=0)).label("s0"),
            func.sum(case((c.day <= d - 365, value), else_=0)).label("s1"),
            window_sum(30).label("s2"),
            window_sum(90).label("s3"),
            window_sum(365).label("s4"),
            func.sum(case((c.day <= d, cast(value, Numeric(38, 0)) * weight), else_=0)).label("s5"),
        )
        .group_by(c.component, c.set_id)
        .subquery()
    )
    members = m.segment_sets.c
    columns = [per_set.c[f"s{i}"] for i in range(6)]
    query = (
        select(per_set.c.component, members.segment, *[func.sum(col) for col in columns])
        .join(m.segment_sets, members.set_id == per_set.c.set_id)
        .group_by(per_set.c.component, members.segment)
    )
    sums: dict[tuple[str, str], tuple[int, ...]] = {}
    for row in await session.execute(query):
        sums[(row[0], row[1])] = tuple(int(x or 0) for x in row[2:])
    seen_values = await seen(session)
    catalog = (
        list(codes)
        if codes is not None
        else indicators(catalog_seen(seen_values, params.poverty_line))
    )
    quantiles = await _resolutions_in_window(session, d)
    out: dict[tuple[str, str], Value] = {}
    for ind in catalog:
        for seg in segments_for(ind, seen_values):
            if ind.kind == "quantile":
                out[(ind.code, seg)] = _quantile_value(ind, quantiles.get(seg, []), params)
                continue

            rows = {t.component: sums.get((t.component, seg), (0,) * 6) for t in ind.terms()}
            num = sum((_term(t, rows, ind.window) for t in ind.numerator), Fraction(0))
            den = None
            if ind.denominator is not None:
                den = sum((_term(t, rows, ind.window) for t in ind.denominator), Fraction(0))
            out[(ind.code, seg)] = _finish(ind, num, den, params)
    return out


def _term(t: Term, rows: dict[str, tuple[int, ...]], window: int | None) -> Fraction:
    row = rows[t.component]
    if t.measure == "stock":
        raw = row[0]
    elif t.measure == "stock_before":
        raw = row[1]
    elif t.measure == "mean":
        return _exact(row[5], t.component) / (window or 1)
    else:
        raw = row[2 + WINDOWS.index(window or 0)]
    return _exact(raw, t.component)


async def _resolutions_in_window(session: AsyncSession, d: int) -> dict[str, list[int]]:
    c = m.resolutions.c
    rows = await session.execute(
        select(c.branch, c.micros).where(c.resolved_day > d - 90, c.resolved_day <= d)
    )
    out: dict[str, list[int]] = defaultdict(list)
    for branch, micros in rows:
        out["all"].append(micros)
        out[f"branch:{branch}"].append(micros)
    return out


# --- one indicator's series ---------------------------------------------------------------------


class _Cumulative:
    """Cumulative sums of one component's deltas, queried by day."""

    def __init__(self, deltas: dict[int, int]) -> None:
        self.days = sorted(deltas)
        self.cum: list[int] = []
        self.weighted: list[int] = []
        total = weighted = 0
        for day in self.days:
            total += deltas[day]
            weighted += day * deltas[day]
            self.cum.append(total)
            self.weighted.append(weighted)

    def at(self, d: int) -> int:
        i = bisect_right(self.days, d) - 1
        return self.cum[i] if i >= 0 else 0

    def level_sum(self, d: int) -> int:
        """Σ over days x <= d of the stock on x: Σ delta_t × (d - t + 1)."""
        i = bisect_right(self.days, d) - 1
        return (d + 1) * self.cum[i] - self.weighted[i] if i >= 0 else 0


async def series(
    session: AsyncSession,
    ind: Indicator,
    segment: str,
    first: date,
    last: date,
    params: Parameters,
) -> list[tuple[date, Value]]:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if ind.kind == "quantile":
        return await _quantile_series(session, ind, segment, days, params)
    comps = sorted(ind.components())
    c = m.deltas.c
    members = m.segment_sets.c
    rows = await session.execute(
        select(c.component, c.day, func.sum(c.value))
        .join(m.segment_sets, members.set_id == c.set_id)
        .where(members.segment == segment, c.component.in_(comps), c.day <= last.toordinal())
        .group_by(c.component, c.day)
    )
    per: dict[str, dict[int, int]] = {comp: {} for comp in comps}
    for comp, day, total in rows:
        per[comp][day] = int(total)
    cums = {comp: _Cumulative(v) for comp, v in per.items()}
    window = ind.window or 0

    def term(t: Term, d: int) -> Fraction:
        cum = cums[t.component]
        if t.measure == "stock":
            raw = cum.at(d)
        elif t.measure == "stock_before":
            raw = cum.at(d - window)
        elif t.measure == "mean":
            total = cum.level_sum(d) - cum.level_sum(d - window)
            return _exact(total, t.component) / window
        else:
            raw = cum.at(d) - cum.at(d - window)
        return _exact(raw, t.component)

    out = []
    for day in days:
        d = day.toordinal()
        num = sum((term(t, d) for t in ind.numerator), Fraction(0))
        den = (
            None
            if ind.denominator is None
            else sum((term(t, d) for t in ind.denominator), Fraction(0))
        )
        out.append((day, _finish(ind, num, den, params)))
    return out


async def _quantile_series(
    session: AsyncSession, ind: Indicator, segment: str, days: list[date], params: Parameters
) -> list[tuple[date, Value]]:
    c = m.resolutions.c
    lo, hi = days[0].toordinal() - 89, days[-1].toordinal()
    query = select(c.resolved_day, c.micros).where(c.resolved_day >= lo, c.resolved_day <= hi)
    if segment != "all":
        query = query.where(c.branch == segment.split(":", 1)[1])
    rows = sorted((int(day), int(us)) for day, us in await session.execute(query))
    out = []
    for day in days:
        d = day.toordinal()
        values = [us for rd, us in rows if d - 90 < rd <= d]
        out.append((day, _quantile_value(ind, values, params)))
    return out
