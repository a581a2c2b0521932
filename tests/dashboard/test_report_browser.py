"""The dashboard's Board report page in headless Chromium: a chosen month's PDF and XLSX are
downloaded with the signed-in staff key, and the workbook holds the API's values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.async_api import Browser, expect

from spm.simulator import Scenario, SimConfig
from tests.dashboard.harness import Stack, browser, dashboard_stack, signed_in

__all__ = ["browser"]  # the fixture (tests/dashboard/harness.py)

CONFIG = SimConfig(seed=5, start=date(2026, 1, 1), days=62, clients=400, scenario=Scenario.drift)

pytestmark = pytest.mark.slow


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with dashboard_stack(tmp_path / "data", CONFIG) as running:
        yield running


@pytest.mark.timeout(600)
async def test_the_board_report_is_downloaded_for_a_chosen_month(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    page = await signed_in(browser, stack.url, accept_downloads=True)
    await page.get_by_role("link", name="Board report").click()
    await expect(page.get_by_role("heading", name="Board report")).to_be_visible()
    await page.get_by_label("Month").fill("2026-02")

    async with page.expect_download(timeout=300_000) as pdf_download:
        await page.get_by_role("button", name="Download PDF").click()
    pdf = tmp_path / (await pdf_download.value).suggested_filename
    await (await pdf_download.value).save_as(pdf)
    assert pdf.name == "spm-report-2026-02.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")

    async with page.expect_download(timeout=300_000) as xlsx_download:
        await page.get_by_role("button", name="Download XLSX").click()
    xlsx = tmp_path / "report.xlsx"
    await (await xlsx_download.value).save_as(xlsx)
    snapshot = await stack.get("indicators", "/v1/indicators", as_of="2026-02-28")
    items = {(i["code"], i["segment"]): i["value"] for i in snapshot.json()["items"]}
    rows = list(load_workbook(xlsx)["Values"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[2]) for r in rows} == set(items)
    assert page.errors == []  # type: ignore[attr-defined]
