"""What the month's report holds, gathered from the APIs (``fetch``): the objectives' targets
with their values on the month's last day, twelve months of each target's indicator, the
segments furthest off target, the alerts opened and resolved in the month, the actions, and the
catalog's definitions. Everything the PDF and the XLSX show comes from here, so both show the
same figures."""

from __future__ import annotations

import calendar
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from spm.report import units
from spm.report.fetch import ApiReader, ReportError, fetch_actions

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TREND_DAYS = 365
WORST_SEGMENTS = 12
DIMENSIONS = ("branch", "product", "gender", "rural")
ActionsSource = Callable[[ApiReader, date, date], Awaitable[list[dict[str, Any]]]]


def month_range(month: str) -> tuple[date, date]:
    """``2026-08`` → (2026-08-01, 2026-08-31); ValueError naming the expected form."""
    match = MONTH.fullmatch(month)
    if match is None:
        raise ValueError(f"month {month!r} is not of the form YYYY-MM (e.g. 2026-08)")
    year, mon = int(match[1]), int(match[2])
    return date(year, mon, 1), date(year, mon, calendar.monthrange(year, mon)[1])


@dataclass
class TargetRow:
    objective: dict[str, Any]
    target: dict[str, Any]
    indicator: dict[str, Any]
    """The catalog entry (name, unit, formula, numerator, denominator…)."""
    value: dict[str, Any] | None
    """The API's value on the report day: value, numerator, denominator, n."""
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return str(self.indicator.get("unit", ""))

    @property
    def status(self) -> units.Status:
        return units.status_of(self.target, None if self.value is None else self.value["value"])


@dataclass
class OffTarget:
    row: TargetRow
    segment: str
    value: dict[str, Any]
    gap: Decimal

    @property
    def relative(self) -> Decimal:
        low, high = units.bounds(self.row.target.get("threshold"))
        line = high if self.row.target.get("direction") == "at_most" else low
        return self.gap / abs(line) if line else self.gap


@dataclass
class ReportData:
    month: str
    first: date
    last: date
    as_of: date
    """The day the figures are for: the month's last day (or the business date, if earlier)."""
    currency: str
    catalog: dict[str, dict[str, Any]]
    rows: list[TargetRow]
    values: list[dict[str, Any]]
    """Every indicator and segment on ``as_of`` (the XLSX's values sheet)."""
    off_target: list[OffTarget]
    opened: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    """None: the alerts service has no actions API."""

    def indicator_name(self, code: str) -> str:
        return str(self.catalog.get(code, {}).get("name") or code)

    def unit_of(self, code: str) -> str:
        return str(self.catalog.get(code, {}).get("unit", ""))

    def used_indicators(self) -> list[dict[str, Any]]:
        """The catalog entries of every indicator a figure of the report shows, in order."""
        codes = dict.fromkeys(r.target["indicator"] for r in self.rows)
        return [self.catalog[c] for c in codes if c in self.catalog]


async def gather(
    reader: ApiReader, month: str, actions_source: ActionsSource = fetch_actions
) -> ReportData:
    first, last = month_range(month)
    catalog_doc = await reader.get("indicators", "/v1/catalog")
    catalog = {i["code"]: i for i in catalog_doc["indicators"]}
    business = (await reader.get("indicators", "/v1/indicators", {"code": "active_clients"}))[
        "as_of"
    ]
    if business is None or date.fromisoformat(business) < first:
        raise ReportError(
            f"no figures for {month} yet: the indicators' business date is {business or 'unset'}"
        )
    as_of = min(last, date.fromisoformat(business))
    snapshot = await reader.get("indicators", "/v1/indicators", {"as_of": as_of.isoformat()})
    values = sorted(
        snapshot["items"], key=lambda v: (v["code"], v["segment"] != "all", v["segment"])
    )
    by_key = {(v["code"], v["segment"]): v for v in values}

    objectives = await reader.get("objectives", "/v1/objectives", {"status": "active"})
    rows: list[TargetRow] = []
    for objective in sorted(objectives, key=lambda o: (o["dimension"], o["code"])):
        for target in objective["targets"]:
            if not _in_force(target, as_of):
                continue
            code = target["indicator"]
            indicator = catalog.get(code, {"code": code, "name": code, "unit": ""})
            row = TargetRow(objective, target, indicator, by_key.get((code, target["segment"])))
            row.series = await _series(reader, code, target["segment"], as_of)
            rows.append(row)
    off = await _off_target(reader, rows, as_of)
    alerts = [a async for a in reader.pages("alerts", "/v1/alerts", {"state": "firing"})]
    alerts += [a async for a in reader.pages("alerts", "/v1/alerts", {"state": "pending"})]
    alerts += [a async for a in reader.pages("alerts", "/v1/alerts", {"state": "resolved"})]
    opened = [a for a in alerts if first <= date.fromisoformat(a["since"]) <= last]
    resolved = [
        a
        for a in alerts
        if a["resolved_on"] and first <= date.fromisoformat(a["resolved_on"]) <= last
    ]
    return ReportData(
        month=month,
        first=first,
        last=last,
        as_of=as_of,
        currency=str(catalog_doc["parameters"].get("currency", "")),
        catalog=catalog,
        rows=rows,
        values=values,
        off_target=off,
        opened=sorted(opened, key=lambda a: (a["since"], a["id"])),
        resolved=sorted(resolved, key=lambda a: (a["resolved_on"], a["id"])),
        actions=await actions_source(reader, first, last),
    )


def _in_force(target: dict[str, Any], day: date) -> bool:
    start = date.fromisoformat(target["effective_from"])
    end = target.get("effective_to")
    return start <= day and (end is None or day <= date.fromisoformat(end))


async def _series(reader: ApiReader, code: str, segment: str, as_of: date) -> list[dict[str, Any]]:
    """Twelve months of the target's indicator; none for a branch or product the indicators
    have never seen (404: a target set ahead of a new branch's first loan)."""
    start = as_of - timedelta(days=TREND_DAYS - 1)
    path = f"/v1/indicators/{code}/series"
    params = {"segment": segment, "from": start.isoformat(), "to": as_of.isoformat()}
    body = await reader.get("indicators", path, params, missing_ok=True)
    points: list[dict[str, Any]] = [] if body is None else body["points"]
    return points


async def _off_target(reader: ApiReader, rows: list[TargetRow], as_of: date) -> list[OffTarget]:
    """The segments (branches, products, genders, areas) furthest beyond their targets' lines,
    relative to the line: each institution-wide target applied to every segment of its
    indicator, and each segment's own target to that segment."""
    found: dict[tuple[str, str], OffTarget] = {}
    for row in rows:
        if row.target["segment"] == "all":
            for dim in _dimensions(row):
                body = await reader.get(
                    "indicators",
                    f"/v1/indicators/{row.target['indicator']}/breakdown",
                    {"by": dim, "as_of": as_of.isoformat()},
                )
                for item in body["items"]:
                    _keep(found, row, item)
        elif row.value is not None:
            _keep(found, row, row.value)
    ranked = sorted(found.values(), key=lambda o: o.relative, reverse=True)
    return ranked[:WORST_SEGMENTS]


def _dimensions(row: TargetRow) -> list[str]:
    """The dimensions a target is compared across; not gender for a share of women (its male
    segment is 0 % by definition, not a gap anyone can close)."""
    dims = [d for d in row.indicator.get("segments", []) if d in DIMENSIONS]
    return [d for d in dims if not (d == "gender" and "women" in row.target["indicator"])]


def _keep(found: dict[tuple[str, str], OffTarget], row: TargetRow, item: dict[str, Any]) -> None:
    segment = item.get("segment") or row.target["segment"]
    beyond = units.gap(row.target, item.get("value"))
    if beyond is None:
        return
    candidate = OffTarget(row, segment, item, beyond)
    key = (row.target["indicator"], segment)
    if key not in found or candidate.relative > found[key].relative:
        found[key] = candidate
