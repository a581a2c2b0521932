"""The report as an XLSX workbook (openpyxl): a ``Values`` sheet with every indicator and segment
on the report day — value, numerator and denominator as numbers, ready to copy into the SPI4 or
ALINUS social audit spreadsheets — and one sheet per section of the PDF. Every sheet's columns
are described in sections.py.

Cells hold numbers, not text, with a number format in the indicator's unit (a share shows as
10.6 % but keeps its full value), so a spreadsheet can compute with them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from spm.report import sections, texts, units
from spm.report.data import ReportData

R = TypeVar("R")
DATE = "yyyy-mm-dd"
HEAD_FILL = PatternFill("solid", fgColor="E8EEF3")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def number_format(unit: str) -> str:
    """The Excel format of a unit, matching the dashboard's rounding."""
    if unit in units.SHARE_UNITS:
        return "0.0%"
    if unit == "count":
        return "#,##0"
    if unit == "days":
        return '0.0" days"'
    if unit in ("per_1k", "per_1000"):
        return '0.00" ‰"'
    if unit == "ratio":
        return "0.000"
    if _CURRENCY.match(unit):
        return f'#,##0" {unit}"'
    return "#,##0.####"


def _num(value: Any) -> float | None:
    v = units.number(value)
    return None if v is None else float(v)


def _sheet(wb: Workbook, title: str, header: Sequence[str]) -> Worksheet:
    ws: Worksheet = wb.create_sheet(title)
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = HEAD_FILL
    ws.freeze_panes = "A2"
    return ws


def _widths(ws: Worksheet) -> None:
    for i, column in enumerate(ws.iter_cols(values_only=True), start=1):
        longest = max((len(str(v)) for v in column if v is not None), default=8)
        ws.column_dimensions[get_column_letter(i)].width = min(max(longest + 2, 8), 60)


def build_xlsx(data: ReportData, generated: datetime) -> bytes:
    wb = Workbook()
    about = wb.active
    if about is None:  # a new workbook always has one sheet
        raise RuntimeError("openpyxl made a workbook without a sheet")
    about.title = "About"
    about.append([f"Social performance report — {texts.month_name(data)}"])
    about["A1"].font = Font(bold=True, size=14)
    about.append([texts.intro(data)])
    about.append(["Figures as of", data.as_of])
    about.append(["Generated (UTC)", generated.replace(tzinfo=None)])
    about.append(["Currency", data.currency])
    about.append([texts.READING_GUIDE])
    about.column_dimensions["A"].width = 30
    about.column_dimensions["B"].width = 20

    _values(wb, data)
    _targets(wb, data)
    _off_target(wb, data)
    _alerts(wb, data)
    _actions(wb, data)
    _definitions(wb, data)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _values(wb: Workbook, data: ReportData) -> None:
    _widths(_section_sheet(wb, sections.VALUES, data, data.values))


def _section_sheet(
    wb: Workbook, section: sections.Section[R], data: ReportData, rows: Iterable[R]
) -> Worksheet:
    """A section's sheet (sections.py): its workbook columns, measures as numbers in the row's
    unit format, days as dates."""
    columns = section.xlsx_columns()
    ws = _sheet(wb, section.sheet, [c.header for c in columns])
    for row in rows:
        ws.append([_cell(c, data, row) for c in columns])
        formats = {"measure": number_format(section.unit(data, row)), "date": DATE}
        for i, column in enumerate(columns, start=1):
            if column.kind in formats:
                ws.cell(ws.max_row, i).number_format = formats[column.kind]
    return ws


def _cell(column: sections.Column[R], data: ReportData, row: R) -> Any:
    value = column.value(data, row)
    if column.kind in ("measure", "count"):
        return _num(value)
    if column.kind == "status":
        return units.STATUS_LABEL[value]
    return value


def _targets(wb: Workbook, data: ReportData) -> None:
    _widths(_section_sheet(wb, sections.TARGETS, data, data.rows))


def _off_target(wb: Workbook, data: ReportData) -> None:
    _widths(_section_sheet(wb, sections.OFF_TARGET, data, data.off_target))


def _alerts(wb: Workbook, data: ReportData) -> None:
    moved = [*(("opened", a) for a in data.opened), *(("resolved", a) for a in data.resolved)]
    _widths(_section_sheet(wb, sections.ALERTS, data, moved))


def _actions(wb: Workbook, data: ReportData) -> None:
    ws = _section_sheet(wb, sections.ACTIONS, data, data.actions)
    if not data.actions:
        ws.append([texts.NO_ACTIONS])
    _widths(ws)


def _definitions(wb: Workbook, data: ReportData) -> None:
    _widths(_section_sheet(wb, sections.DEFINITIONS, data, data.catalog.values()))
