"""The report as a PDF for the board: ReportLab's platypus lays it out (pip-only, no system
libraries), with the DejaVu fonts matplotlib ships (they have ≥, ≤ and ‰, which the PDF core
fonts lack), so the PDF carries every glyph it shows."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from spm.report import sections, texts, units
from spm.report.charts import trend_png
from spm.report.data import TREND_DAYS, ReportData

R = TypeVar("R")
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"
STATUS_COLOUR = {"ok": "#2e7d32", "warning": "#b26a00", "breached": "#b23b3b", "nodata": "#666666"}
HEAD = colors.HexColor("#1f5f8b")


def _fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(FONTS / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName=FONT, fontSize=9, leading=12)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=BOLD, fontSize=20),
        "h1": ParagraphStyle(
            "h1", parent=base["Heading1"], fontName=BOLD, fontSize=14, textColor=HEAD, spaceBefore=6
        ),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=BOLD, fontSize=11),
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9.5),
        "small": ParagraphStyle(
            "small", parent=body, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#555555")
        ),
    }


def build_pdf(data: ReportData, generated: datetime) -> bytes:
    _fonts()
    st = _styles()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=1.6 * cm,
        rightMargin=1.6 * cm,
        topMargin=1.6 * cm,
        bottomMargin=1.6 * cm,
        title=f"Social performance report {texts.month_name(data)}",
        author="SPM Monitor",
    )
    story: list[Flowable] = []
    story += _cover(data, st, generated)
    for objective, rows in texts.by_objective(data):
        story += _objective(data, objective, rows, st)
    story += _off_target(data, st)
    story += _alerts(data, st)
    story += _actions(data, st)
    story += _definitions(data, st)

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(
            1.6 * cm,
            1 * cm,
            f"Social performance report · {texts.month_name(data)}"
            f" · figures as of {data.as_of.isoformat()}",
        )
        canvas.drawRightString(A4[0] - 1.6 * cm, 1 * cm, f"page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    st: dict[str, ParagraphStyle],
) -> Table:
    cells: list[list[Flowable]] = [[_p(h, st["cell"]) for h in header]]
    cells += [[c if isinstance(c, Flowable) else _p(str(c), st["cell"]) for c in r] for r in rows]
    table = Table(cells, colWidths=[w * cm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef3")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, HEAD),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _section_table(
    section: sections.Section[R], data: ReportData, rows: Sequence[R], st: dict[str, ParagraphStyle]
) -> Table:
    """A section's table (sections.py): its PDF columns, each value as text in its unit."""
    columns = section.pdf_columns()
    header = [c.pdf_header or c.header for c in columns]
    cells = [[_cell(c, data, row, section.unit(data, row), st) for c in columns] for row in rows]
    return _table(header, cells, [c.pdf_cm or 0.0 for c in columns], st)


def _cell(
    column: sections.Column[R], data: ReportData, row: R, unit: str, st: dict[str, ParagraphStyle]
) -> Any:
    value = column.value(data, row)
    if column.kind == "measure":
        return units.fmt(value, unit)
    if column.kind == "count":
        return units.fmt_count(value)
    if column.kind == "status":
        return _status(value, st)
    return value


def _status(key: units.Status, st: dict[str, ParagraphStyle]) -> Paragraph:
    colour = STATUS_COLOUR[key]
    return Paragraph(f'<font color="{colour}"><b>{units.STATUS_LABEL[key]}</b></font>', st["cell"])


def _cover(data: ReportData, st: dict[str, ParagraphStyle], generated: datetime) -> list[Flowable]:
    counts = texts.status_counts(data)
    summary = [
        ["Targets on target", str(counts["ok"])],
        ["Targets in the warning band", str(counts["warning"])],
        ["Targets off target", str(counts["breached"])],
        ["Targets without data", str(counts["nodata"])],
        ["Alerts opened in the month", str(len(data.opened))],
        ["Alerts resolved in the month", str(len(data.resolved))],
        ["Corrective actions", texts.actions_count(data)],
    ]
    table = Table(summary, colWidths=[8 * cm, 4 * cm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 10),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
            ]
        )
    )
    return [
        _p(f"Social performance report — {texts.month_name(data)}", st["title"]),
        _p(texts.intro(data), st["body"]),
        _p(
            f"Generated {generated:%d %B %Y %H:%M} UTC by SPM Monitor from the services' APIs.",
            st["small"],
        ),
        Spacer(1, 0.4 * cm),
        _p("At a glance", st["h1"]),
        table,
        Spacer(1, 0.4 * cm),
        _p(texts.READING_GUIDE, st["small"]),
        PageBreak(),
    ]


def _objective(
    data: ReportData, objective: dict[str, Any], rows: list[Any], st: dict[str, ParagraphStyle]
) -> list[Flowable]:
    head = [
        CondPageBreak(8 * cm),
        _p(f"{objective['name']}", st["h1"]),
        _p(
            f"Objective {objective['code']} · dimension {objective['dimension']} · owner "
            f"{objective['owner']}",
            st["small"],
        ),
    ]
    if objective.get("description"):
        head.append(_p(objective["description"], st["body"]))
    head += [Spacer(1, 0.2 * cm), _section_table(sections.TARGETS, data, rows, st)]
    charts: list[Flowable] = []
    for row in rows:
        title = (
            f"{row.indicator.get('name', row.target['indicator'])} — "
            f"{units.segment_label(row.target['segment'])}, last 12 months"
        )
        span = (data.as_of - timedelta(days=TREND_DAYS - 1), data.as_of)
        png = trend_png(row.series, row.target, row.unit, title, span)
        charts.append(KeepTogether([Image(io.BytesIO(png), width=17.5 * cm, height=6.0 * cm)]))
    return [*head, Spacer(1, 0.3 * cm), *charts]


def _off_target(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), _p("Segments furthest off target", st["h1"])]
    out.append(_p(texts.OFF_TARGET_NOTE, st["small"]))
    if not data.off_target:
        return [
            *out,
            _p("Every segment meets its targets on " + data.as_of.isoformat() + ".", st["body"]),
        ]
    table = _section_table(sections.OFF_TARGET, data, data.off_target, st)
    return [*out, Spacer(1, 0.2 * cm), table]


def _alerts(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    out: list[Flowable] = [CondPageBreak(6 * cm), _p("Alerts", st["h1"])]
    for title, alerts, empty in (
        ("Opened in the month", data.opened, "No alert opened this month."),
        ("Resolved in the month", data.resolved, "No alert resolved this month."),
    ):
        out.append(_p(f"{title} ({len(alerts)})", st["h2"]))
        if not alerts:
            out.append(_p(empty, st["body"]))
            continue
        rows = [(title, a) for a in alerts]
        out.append(_section_table(sections.ALERTS, data, rows, st))
    return out


def _actions(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    out: list[Flowable] = [CondPageBreak(6 * cm), _p("Corrective actions", st["h1"])]
    if not data.actions:
        return [*out, _p(texts.NO_ACTIONS, st["body"])]
    return [*out, _section_table(sections.ACTIONS, data, data.actions, st)]


def _definitions(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), _p("Definitions of the figures", st["h1"])]
    out.append(_p(texts.DEFINITIONS_NOTE, st["small"]))
    for ind in data.used_indicators():
        lines = texts.definition_lines(ind)
        block: list[Flowable] = [_p(f"{ind.get('name')} ({ind['code']})", st["h2"])]
        block += [_p(line, st["body"]) for line in lines]
        out.append(KeepTogether(block))
    return out
