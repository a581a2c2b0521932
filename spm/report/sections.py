"""The report's tables described once, for both renderers: each section's columns, in order, with
the value a row gives and how that value reads.

The PDF shows the columns that have a width, as text (a measure in its unit, a count with
thousands separators, a status as a coloured label); the XLSX shows every column that is not
PDF-only, as numbers with the unit's number format where it can. A section a board reads and the
sheet an analyst copies from then cannot drift apart: a column added here reaches both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from spm.report import texts, units
from spm.report.data import OffTarget, ReportData, TargetRow

R = TypeVar("R")
Kind = Literal["text", "measure", "count", "status", "date"]
"""How a value reads: ``measure`` in the row's unit, ``count`` a plain number, ``status`` one of
``units.Status``, ``date`` a day."""


@dataclass(frozen=True)
class Column(Generic[R]):
    header: str
    value: Callable[[ReportData, R], Any]
    kind: Kind = "text"
    pdf_cm: float | None = None
    """The column's width in the PDF; None: in the workbook only."""
    pdf_header: str | None = None
    """A shorter header for the PDF's narrow column."""
    in_xlsx: bool = True
    """False: in the PDF only (the workbook has the figure in columns of its own)."""


@dataclass(frozen=True)
class Section(Generic[R]):
    sheet: str
    """The workbook's sheet title."""
    unit: Callable[[ReportData, R], str]
    """The unit of the row's measures."""
    columns: tuple[Column[R], ...]

    def pdf_columns(self) -> list[Column[R]]:
        return [c for c in self.columns if c.pdf_cm is not None]

    def xlsx_columns(self) -> list[Column[R]]:
        return [c for c in self.columns if c.in_xlsx]


def _line(target: dict[str, Any], key: str) -> Any:
    """The bound of a (warning) threshold the target's direction watches, None without one."""
    if target.get(key) is None:
        return None
    low, high = units.bounds(target.get(key))
    return high if target["direction"] == "at_most" else low


TARGETS: Section[TargetRow] = Section(
    "Targets",
    lambda _, r: r.unit,
    (
        Column("Objective", lambda _, r: r.objective["code"]),
        Column("Objective name", lambda _, r: r.objective["name"]),
        Column("Indicator code", lambda _, r: r.target["indicator"]),
        Column(
            "Indicator", lambda _, r: r.indicator.get("name", r.target["indicator"]), pdf_cm=4.2
        ),
        Column("Segment", lambda _, r: units.segment_label(r.target["segment"]), pdf_cm=2.8),
        Column("Direction", lambda _, r: r.target["direction"]),
        Column("Threshold", lambda _, r: _line(r.target, "threshold"), "measure"),
        Column("Warning threshold", lambda _, r: _line(r.target, "warning_threshold"), "measure"),
        Column("Value", lambda _, r: (r.value or {}).get("value"), "measure", pdf_cm=2.0),
        Column(
            "Target", lambda _, r: units.target_text(r.target, r.unit), pdf_cm=2.1, in_xlsx=False
        ),
        Column("Status", lambda _, r: r.status, "status", pdf_cm=1.9),
        Column("Numerator", lambda _, r: (r.value or {}).get("numerator"), "count", pdf_cm=2.1),
        Column("Denominator", lambda _, r: (r.value or {}).get("denominator"), "count", pdf_cm=2.4),
        Column("Unit", lambda _, r: r.unit),
    ),
)

OFF_TARGET: Section[OffTarget] = Section(
    "Off target",
    lambda _, o: o.row.unit,
    (
        Column("Indicator code", lambda _, o: o.row.target["indicator"]),
        Column("Indicator", lambda d, o: d.indicator_name(o.row.target["indicator"]), pdf_cm=4.0),
        Column("Segment", lambda _, o: units.segment_label(o.segment), pdf_cm=2.8),
        Column("Value", lambda _, o: o.value.get("value"), "measure", pdf_cm=1.9),
        Column("Target", lambda _, o: units.target_text(o.row.target, o.row.unit), pdf_cm=2.0),
        Column("Beyond the line", lambda _, o: o.gap, "measure", pdf_cm=2.0),
        Column("Numerator", lambda _, o: o.value.get("numerator"), "count", pdf_cm=2.1),
        Column("Denominator", lambda _, o: o.value.get("denominator"), "count", pdf_cm=2.4),
    ),
)

Alert = tuple[str, dict[str, Any]]
"""An alert and when in the month it moved (``opened`` or ``resolved``)."""

ALERTS: Section[Alert] = Section(
    "Alerts",
    lambda d, a: d.unit_of(a[1]["indicator"]),
    (
        Column("In the month", lambda _, a: a[0]),
        Column("Alert id", lambda _, a: a[1]["id"]),
        Column("Indicator", lambda d, a: d.indicator_name(a[1]["indicator"]), pdf_cm=3.8),
        Column("Segment", lambda _, a: units.segment_label(a[1]["segment"]), pdf_cm=2.6),
        Column("Kind", lambda _, a: a[1]["kind"], pdf_cm=1.5),
        Column("Severity", lambda _, a: a[1]["severity"], pdf_cm=1.8),
        Column("Since", lambda _, a: a[1]["since"], pdf_cm=2.0),
        Column(
            "Resolved on",
            lambda _, a: a[1].get("resolved_on") or "–",
            pdf_cm=2.0,
            pdf_header="Resolved",
        ),  # fmt: skip
        Column("Value", lambda _, a: a[1].get("value"), "measure", pdf_cm=1.8),
        Column("State", lambda _, a: a[1]["state"], pdf_cm=1.6),
    ),
)


def _field(key: str) -> Callable[[ReportData, dict[str, Any]], Any]:
    """A column whose value is the row's ``key``."""
    return lambda _, row: row.get(key)


def _status_label(action: dict[str, Any]) -> str:
    return texts.ACTION_STATUS.get(str(action.get("status")), str(action.get("status")))


def _effectiveness(action: dict[str, Any]) -> str:
    effectiveness = action.get("effectiveness")
    return texts.EFFECTIVENESS.get(effectiveness, str(effectiveness))


ACTIONS: Section[dict[str, Any]] = Section(
    "Actions",
    lambda d, a: d.unit_of(str(a.get("indicator", ""))),
    (
        Column("Action", lambda _, a: str(a.get("title", "")), pdf_cm=3.4),
        Column("Owner", lambda _, a: str(a.get("owner", "")), pdf_cm=1.9),
        Column("Indicator", lambda d, a: d.indicator_name(str(a.get("indicator", ""))), pdf_cm=2.5),
        Column("Segment", lambda _, a: units.segment_label(a.get("segment")), pdf_cm=2.0),
        Column("Status", lambda _, a: _status_label(a), pdf_cm=1.4),
        Column("Due", lambda _, a: str(a.get("due_date") or "–"), pdf_cm=2.1),
        Column("Effectiveness", lambda _, a: _effectiveness(a), pdf_cm=1.8),
        Column("Value when opened", _field("opened_value"), "measure", 1.4, "Opened at"),
        Column("Value when judged", _field("judged_value"), "measure", 1.3, "Judged at"),
        Column("Target line", _field("target_threshold"), "measure"),
        Column("Action id", _field("id")),
        Column("Alert id", _field("alert_id")),
    ),
)

VALUES: Section[dict[str, Any]] = Section(
    "Values",
    lambda d, v: str(v.get("unit") or d.unit_of(v["code"])),
    (
        Column("Indicator code", _field("code")),
        Column("Indicator", lambda d, v: d.indicator_name(v["code"])),
        Column("Segment code", _field("segment")),
        Column("Segment", lambda _, v: units.segment_label(v["segment"])),
        Column("As of", lambda d, _: d.as_of, "date"),
        Column("Value", _field("value"), "measure"),
        Column("Numerator", _field("numerator"), "count"),
        Column("Denominator", _field("denominator"), "count"),
        Column("Count (n)", _field("n"), "count"),
        Column("Unit", lambda d, v: str(v.get("unit") or d.unit_of(v["code"]))),
    ),
)
"""Every indicator and segment on the report day (the workbook only)."""


def _names(key: str) -> Callable[[ReportData, dict[str, Any]], str]:
    return lambda _, ind: ", ".join(ind.get(key) or [])


DEFINITIONS: Section[dict[str, Any]] = Section(
    "Definitions",
    lambda _, ind: str(ind.get("unit", "")),
    (
        Column("Indicator code", _field("code")),
        Column("Indicator", _field("name")),
        Column("Formula", _field("formula")),
        Column("Numerator", _names("numerator")),
        Column("Denominator", _names("denominator")),
        Column("Unit", _field("unit")),
        Column("Window (days)", _field("window_days")),
        Column("Reference", _field("reference")),
    ),
)
"""The catalog as a table (the workbook only; the PDF defines the indicators in prose)."""
