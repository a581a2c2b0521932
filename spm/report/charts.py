"""Trend charts: twelve months of a target's indicator with the target line, as a PNG for the
PDF. matplotlib's Agg canvas draws without a display or any system library; figures are made
without pyplot (no global state), so reports can be drawn in worker threads."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from spm.report import units

LINE = "#1f5f8b"
TARGET = "#b23b3b"
WARNING = "#d08c1e"


def trend_png(
    points: list[dict[str, Any]],
    target: dict[str, Any],
    unit: str,
    title: str,
    span: tuple[date, date],
) -> bytes:
    """The series as a line over ``span`` (first and last day), the target's threshold(s)
    dashed red, the warning line dotted."""
    days = [date.fromisoformat(p["as_of"]) for p in points if units.number(p["value"]) is not None]
    values = [float(v) for p in points if (v := units.number(p["value"])) is not None]
    fig = Figure(figsize=(7.0, 2.4), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(np.array(days, dtype="datetime64[D]"), values, color=LINE, linewidth=1.6, label="value")
    low, high = units.bounds(target.get("threshold"))
    direction = target.get("direction")
    lines = [high] if direction == "at_most" else [low] if direction == "at_least" else [low, high]
    for i, line in enumerate(x for x in lines if x is not None):
        ax.axhline(
            float(line),
            color=TARGET,
            linestyle="--",
            linewidth=1.2,
            label="target" if i == 0 else None,
        )
    wlow, whigh = units.bounds(target.get("warning_threshold"))
    warn = whigh if direction == "at_most" else wlow
    if target.get("warning_threshold") is not None and warn is not None:
        ax.axhline(float(warn), color=WARNING, linestyle=":", linewidth=1.2, label="warning")
    ax.set_xlim(*np.array(span, dtype="datetime64[D]"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: units.fmt(y, unit)))
    ax.xaxis.set_major_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))  # type: ignore[no-untyped-call]
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9, loc="left")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=7, loc="best", frameon=False)
    if not values:
        ax.text(
            0.5,
            0.5,
            "no values in these twelve months",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="#666666",
        )
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
