"""The report's words, shared by the PDF and the XLSX so that both say the same (their tables
are described in sections.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from spm.report.data import ReportData, TargetRow

NO_ACTIONS = "No actions recorded this month."
READING_GUIDE = (
    "How to read this report: each objective lists its targets with the value on the report "
    "day, the target line and the status (on target, warning band, off target), then twelve "
    "months of each indicator with its target line. Shares are shown in per cent, amounts in "
    "the institution's currency. Every value is a numerator divided by a denominator; both are "
    "shown beside it, and the last pages define each indicator."
)
OFF_TARGET_NOTE = (
    "Branches, products, genders and areas ranked by how far they are beyond the target line "
    "(relative to the line): institution-wide targets are applied to every segment of their "
    "indicator, branch targets to their branch."
)
DEFINITIONS_NOTE = (
    "Each indicator as the indicator service computes it (its catalog): the formula, what is "
    "counted in the numerator and the denominator, and the window of days it covers."
)
EFFECTIVENESS = {
    "effective": "Effective",
    "not_effective": "Not effective",
    "too_early": "Too early to tell",
    None: "Not judged yet",
}
ACTION_STATUS = {"open": "Open", "done": "Done", "cancelled": "Cancelled", "overdue": "Overdue"}


def month_name(data: ReportData) -> str:
    return f"{data.first:%B %Y}"


def intro(data: ReportData) -> str:
    day = f"{data.as_of.day} {data.as_of:%B %Y}"
    partial = "" if data.as_of == data.last else " (the latest day with figures so far)"
    return (
        f"Where the institution stands against its social objectives on {day}{partial}, how the "
        f"figures moved over the last twelve months, which alerts were raised and closed in "
        f"{month_name(data)}, and what was done about them."
    )


def by_objective(data: ReportData) -> list[tuple[dict[str, Any], list[TargetRow]]]:
    groups: dict[str, tuple[dict[str, Any], list[TargetRow]]] = {}
    for row in data.rows:
        groups.setdefault(row.objective["id"], (row.objective, []))[1].append(row)
    return list(groups.values())


def status_counts(data: ReportData) -> Counter[str]:
    return Counter(row.status for row in data.rows)


def actions_count(data: ReportData) -> str:
    return str(len(data.actions))


def definition_lines(ind: dict[str, Any]) -> list[str]:
    denominator = ind.get("denominator")
    lines = [
        f"Formula: {ind.get('formula', '–')}",
        f"Numerator: {', '.join(ind.get('numerator') or []) or '–'}",
        f"Denominator: {', '.join(denominator) if denominator else 'none (a count or a sum)'}",
        f"Unit: {ind.get('unit', '–')}"
        + (f" · window: {ind['window_days']} days" if ind.get("window_days") else ""),
    ]
    if ind.get("reference"):
        lines.append(f"Reference: {ind['reference']}")
    return lines
