"""One report: gather the month from the APIs, then render the chosen formats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from spm.report.data import ActionsSource, ReportData, gather
from spm.report.fetch import ApiReader, fetch_actions

Format = Literal["pdf", "xlsx"]
MEDIA: dict[str, str] = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass
class Built:
    data: ReportData
    files: dict[str, bytes]
    """Format → bytes."""
    seconds: float

    def name(self, fmt: str) -> str:
        return f"spm-report-{self.data.month}.{fmt}"


async def build(
    reader: ApiReader,
    month: str,
    formats: Iterable[Format] = ("pdf", "xlsx"),
    actions_source: ActionsSource = fetch_actions,
) -> Built:
    started = time.monotonic()
    data = await gather(reader, month, actions_source)
    now = datetime.now(UTC)
    # imported here, not at the top: matplotlib writes its caches under $HOME when imported,
    # and every `spm` command (and the embedded host) imports this module
    from spm.report.pdf import build_pdf
    from spm.report.xlsx import build_xlsx

    renderers = {"pdf": build_pdf, "xlsx": build_xlsx}
    files: dict[str, bytes] = {}
    for fmt in dict.fromkeys(formats):  # CPU work in a thread: a server's loop keeps answering
        files[fmt] = await asyncio.to_thread(renderers[fmt], data, now)
    return Built(data, files, time.monotonic() - started)
