"""The must-show of the board report: the demo's drifting month, built from the embedded stack's
APIs, every PDF page rendered to PNG with ``pdftoppm``, and the numbers in the PDF's text
(``pdftotext``) and in the XLSX (openpyxl) checked against what the APIs answer for the month's
last day."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from spm.devmode import DevStack, demo_config, run_demo
from spm.report import texts, units
from spm.report.build import build
from spm.report.config import ReportSettings
from spm.report.fetch import ApiReader
from spm.report.schedule import send_due
from tests.e2e.demo import fires_on, running_demo, until_caught_up, wait_for

MONTH, LAST_DAY = "2026-08", "2026-08-31"
DAYS = 304  # 2025-11-01 .. 2026-08-31: August complete, the drifting branch well off target
DRIFTING = "branch:BR-MSA"
ACTION_TITLE = "Arrears visits"  # short enough for one line of its table cell


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[DevStack, httpx.AsyncClient]]:
    async with running_demo(tmp_path / "data", timeout_s=120) as running:
        yield running


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return done.stdout


def one_line(text: str) -> str:
    return " ".join(text.split())


def squeezed(text: str) -> str:
    """Without any space: pdftotext drops a narrow one (``≤ 0`` comes out as ``≤0``)."""
    return "".join(text.split())


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_demo_report_of_a_drifting_month(
    demo: tuple[DevStack, httpx.AsyncClient], tmp_path: Path
) -> None:
    stack, client = demo
    await run_demo(stack, demo_config(days=DAYS), days_per_second=None)
    await until_caught_up(client, LAST_DAY, 600)
    fired = await wait_for(client, "/v1/alerts", fires_on(DRIFTING), 120)
    assert fires_on(DRIFTING)(fired)
    alert = next(a for a in fired if a["segment"] == DRIFTING and a["state"] == "firing")
    # an action the branch recorded in August, through the alerts service's actions API
    recorded = await client.post("/v1/actions", json={
        "alert_id": alert["id"], "title": ACTION_TITLE, "owner": "Branch manager MSA",
        "due_date": "2026-08-20", "review_date": "2026-08-28",
    })  # fmt: skip
    assert recorded.status_code == 201, recorded.text

    built = await build(ApiReader(client), MONTH)
    data = built.data
    assert data.as_of.isoformat() == LAST_DAY
    pdf, xlsx = tmp_path / "report.pdf", tmp_path / "report.xlsx"
    pdf.write_bytes(built.files["pdf"])
    xlsx.write_bytes(built.files["xlsx"])

    # every page rendered to PNG
    pages = render_pages(pdf, xlsx)
    assert pages >= 4

    # the numbers in the PDF are the API's for the month's last day
    layout = run("pdftotext", "-layout", str(pdf), "-")
    lines = [one_line(line) for line in layout.splitlines()]
    text = one_line(layout)
    assert "Social performance report — August 2026" in text
    catalog = {i["code"]: i for i in (await client.get("/v1/catalog")).json()["indicators"]}
    objectives = (await client.get("/v1/objectives", params={"status": "active"})).json()
    checked = 0
    for objective in objectives:
        assert objective["name"] in text
        for target in objective["targets"]:
            answer = await client.get(
                "/v1/indicators",
                params={
                    "code": target["indicator"],
                    "segment": target["segment"],
                    "as_of": LAST_DAY,
                },
            )
            assert answer.status_code == 200, answer.text
            (item,) = answer.json()["items"]
            unit = catalog[target["indicator"]]["unit"]
            # a table row's first line holds its one-line cells (a long name wraps below)
            row = " ".join([
                units.segment_label(target["segment"]),
                units.fmt(item["value"], unit), units.target_text(target, unit),
                units.STATUS_LABEL[units.status_of(target, item["value"])],
                units.fmt_count(item["numerator"]), units.fmt_count(item["denominator"]),
            ])  # fmt: skip
            assert any(squeezed(row) in squeezed(line) for line in lines), row
            assert catalog[target["indicator"]]["name"].split()[0] in text
            checked += 1
    assert checked == len(data.rows) >= 10
    # the drifting branch is off target and among the segments furthest off
    assert any(r.target["segment"] == DRIFTING and r.status == "breached" for r in data.rows), [
        (r.target["indicator"], r.target["segment"], r.status) for r in data.rows
    ]
    assert "Branch BR-MSA" in text.split("Segments furthest off target", 1)[1]
    # alerts of the month, as the alerts API lists them
    assert f"Opened in the month ({len(data.opened)})" in text
    assert f"Resolved in the month ({len(data.resolved)})" in text
    assert data.opened or data.resolved
    # the actions section lists the action recorded through the API, and nothing invented
    actions_part = text.split("Definitions of the figures")[0].rsplit("Corrective actions", 1)[1]
    assert ACTION_TITLE in actions_part and texts.NO_ACTIONS not in actions_part
    # every figure's definition: formula, numerator and denominator of each indicator shown
    definitions = text.split("Definitions of the figures", 1)[1]
    for ind in data.used_indicators():
        assert f"{ind['name']} ({ind['code']})" in definitions
        assert one_line(f"Numerator: {', '.join(ind['numerator'])}") in definitions
    assert "0000000" not in text  # no raw decimals with 28 digits

    # the XLSX: the values sheet equals the API's snapshot, numerators and denominators included
    snapshot = (await client.get("/v1/indicators", params={"as_of": LAST_DAY})).json()["items"]
    workbook = load_workbook(xlsx)
    assert {"Values", "Targets", "Off target", "Alerts", "Actions", "Definitions"} <= set(
        workbook.sheetnames
    )
    sheet = workbook["Values"]
    header = [c.value for c in sheet[1]]
    rows = {
        (r[0], r[2]): dict(zip(header, r, strict=True))
        for r in sheet.iter_rows(min_row=2, values_only=True)
    }
    assert len(rows) == len(snapshot) > 100
    for item in snapshot:
        value_row = rows[(item["code"], item["segment"])]
        for field, column in (("value", "Value"), ("numerator", "Numerator"),
                              ("denominator", "Denominator")):  # fmt: skip
            expected = units.number(item[field])
            if expected is None:
                assert value_row[column] is None, (item, value_row)
            else:
                assert value_row[column] == pytest.approx(float(expected), rel=1e-12), (
                    item,
                    value_row,
                )
    action_rows = list(workbook["Actions"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in action_rows] == [ACTION_TITLE]
    assert action_rows[0][10] == recorded.json()["id"]
    targets = workbook["Targets"]
    theader = [c.value for c in targets[1]]
    trows = [
        dict(zip(theader, r, strict=True)) for r in targets.iter_rows(min_row=2, values_only=True)
    ]
    assert len(trows) == len(data.rows)
    for trow, target_row in zip(trows, data.rows, strict=True):
        assert trow["Indicator code"] == target_row.target["indicator"]
        item = rows[(target_row.target["indicator"], target_row.target["segment"])]
        assert trow["Value"] == item["Value"]
        assert trow["Status"] == units.STATUS_LABEL[target_row.status]
    # on demand (the dashboard's button): the same workbook from GET /v1/report
    answer = await client.get("/v1/report", params={"month": MONTH, "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="spm-report-2026-08.xlsx"'
    again = load_workbook(io.BytesIO(answer.content))["Values"]
    assert list(again.iter_rows(values_only=True)) == list(sheet.iter_rows(values_only=True))
    refused = await client.get("/v1/report", params={"month": "2026-13", "format": "pdf"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "query.month"
    future = await client.get("/v1/report", params={"month": "2027-01"})
    assert future.status_code == 422 and "business date" in future.json()["detail"]

    # on a schedule: the previous month e-mailed to the board through the alerts' SMTP settings
    alerts = stack.services["alerts"].state.alerts.settings
    settings = ReportSettings(
        **alerts.model_dump(),
        report_recipients=["board@example-mfi.co.ke", "chair@example-mfi.co.ke"],
        report_day=3,
        report_state_file=str(tmp_path / "schedule.json"),
    )
    assert await send_due(settings, datetime(2026, 9, 2, 23, tzinfo=UTC), client) is None
    assert await send_due(settings, datetime(2026, 9, 3, 8, tzinfo=UTC), client) == MONTH
    assert await send_due(settings, datetime(2026, 9, 4, 8, tzinfo=UTC), client) is None
    assert stack.mailbox is not None
    sent = [m for m in stack.mailbox.messages if "board@example-mfi.co.ke" in m["to"]]
    assert len(sent) == 1, sent
    assert sent[0]["subject"] == "Social performance report — August 2026"
    assert set(sent[0]["to"]) == {"board@example-mfi.co.ke", "chair@example-mfi.co.ke"}

    print(f"report: {pages} pages, pdf {pdf.stat().st_size:,} B, xlsx {xlsx.stat().st_size:,} B, "
          f"built in {built.seconds:.1f} s")  # fmt: skip


def render_pages(pdf: Path, xlsx: Path) -> int:
    """``pdftoppm`` renders every page; returns the page count (``pdfinfo``)."""
    info = run("pdfinfo", str(pdf))
    pages = int(next(ln for ln in info.splitlines() if ln.startswith("Pages:")).split()[1])
    run("pdftoppm", "-r", "60", "-png", str(pdf), str(pdf.parent / "page"))
    pngs = sorted(pdf.parent.glob("page-*.png"))
    assert len(pngs) == pages
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, png
    if shots := stack_shots():
        for png in pngs:
            shutil.copy(png, shots / png.name)
        shutil.copy(pdf, shots / "report.pdf")
        shutil.copy(xlsx, shots / "report.xlsx")
    return pages


def stack_shots() -> Path | None:
    """SPM_REPORT_SHOTS=<dir>: also keep the files and rendered pages there (the README's
    pictures, docs/images/report-page-*.png, are two of them)."""
    import os

    where = os.environ.get("SPM_REPORT_SHOTS")
    return Path(where) if where else None
