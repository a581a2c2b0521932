"""The report's sections render from their data: an empty list of actions says so, a list of
actions shows each with its effectiveness, in the PDF (read back with ``pdftotext``) and in
the XLSX. The data here is the test's own; the product never invents any."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from spm.report import texts
from spm.report.data import ReportData, TargetRow
from spm.report.pdf import build_pdf
from spm.report.xlsx import build_xlsx

NOW = datetime(2026, 9, 3, 7, tzinfo=UTC)
INDICATOR = {
    "code": "par30",
    "name": "Portfolio at risk > 30 days",
    "unit": "fraction",
    "formula": "outstanding(par30) / outstanding(active)",
    "numerator": ["sum(outstanding_par30)"],
    "denominator": ["sum(outstanding)"],
    "segments": ["all", "branch"],
    "window_days": None,
}
OBJECTIVE = {"id": "o1", "code": "portfolio-quality", "name": "Keep loans affordable",
             "dimension": "D4", "owner": "Head of credit", "description": ""}  # fmt: skip
TARGET = {"id": "t1", "indicator": "par30", "segment": "branch:BR-MSA", "direction": "at_most",
          "threshold": "0.05", "warning_threshold": "0.04"}  # fmt: skip
VALUE = {"code": "par30", "segment": "branch:BR-MSA", "value": "0.0712", "numerator": "712000",
         "denominator": "10000000", "n": 140, "unit": "fraction"}  # fmt: skip
ACTION = {
    "id": "a1", "alert_id": "al1", "target_id": "t1", "objective_id": "o1", "indicator": "par30",
    "segment": "branch:BR-MSA", "title": "Weekly arrears follow-up by loan officers",
    "owner": "Branch manager MSA", "status": "done", "due_date": "2026-08-15",
    "review_date": "2026-08-29", "created_at": "2026-08-02T09:00:00Z",
    "done_at": "2026-08-14T16:00:00Z", "effectiveness": "not_effective",
    "opened_value": "0.0650", "judged_value": "0.0712", "target_threshold": "0.05",
}  # fmt: skip


def report(actions: list[dict[str, Any]]) -> ReportData:
    series: list[dict[str, Any]] = [
        {"as_of": "2026-08-30", "value": "0.07"},
        VALUE | {"as_of": "2026-08-31"},
    ]
    row = TargetRow(OBJECTIVE, TARGET, INDICATOR, VALUE, series)
    return ReportData(
        month="2026-08", first=date(2026, 8, 1), last=date(2026, 8, 31), as_of=date(2026, 8, 31),
        currency="KES", catalog={"par30": INDICATOR}, rows=[row], values=[VALUE], off_target=[],
        opened=[], resolved=[], actions=actions,
    )  # fmt: skip


def pdf_text(data: ReportData, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(build_pdf(data, NOW))
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def actions_sheet(data: ReportData) -> list[tuple[Any, ...]]:
    workbook = load_workbook(io.BytesIO(build_xlsx(data, NOW)))
    return list(workbook["Actions"].iter_rows(min_row=2, values_only=True))


def test_no_actions_this_month(tmp_path: Path) -> None:
    data = report([])
    text = pdf_text(data, tmp_path)
    assert "No actions recorded this month." in text
    assert "7.1 %" in text and "712,000" in text and "10,000,000" in text
    assert actions_sheet(data)[0][0] == texts.NO_ACTIONS


def test_actions_with_their_effectiveness(tmp_path: Path) -> None:
    data = report([ACTION])
    text = pdf_text(data, tmp_path)
    assert "No actions recorded" not in text
    assert "Weekly arrears follow-up by loan officers" in text
    assert "Not effective" in text and "Branch manager MSA" in text
    assert "6.5 %" in text  # the value when the action was opened, in the indicator's unit
    (row,) = actions_sheet(data)
    assert row[:7] == ("Weekly arrears follow-up by loan officers", "Branch manager MSA",
                       "Portfolio at risk > 30 days", "Branch BR-MSA", "Done", "2026-08-15",
                       "Not effective")  # fmt: skip
    assert row[7:10] == (0.065, 0.0712, 0.05)
