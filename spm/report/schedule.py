"""The board report on a schedule: on ``REPORT_DAY`` of each month, at ``REPORT_HOUR`` UTC, the
previous month's report is built and e-mailed to ``REPORT_RECIPIENTS`` through the alerts
service's SMTP sender (``services.alerts.notify.channels.send_mail``). ``spm report --schedule``
runs this loop as its own small process next to the services (a systemd unit or a compose
service); it remembers the last month sent in ``REPORT_STATE_FILE``, so a restart never sends a
month twice, and a failed month is retried at the next check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import httpx

from services.alerts.notify.channels import send_mail
from services.common.errors import SpmError
from spm.report.build import MEDIA, Built, build
from spm.report.config import ReportSettings
from spm.report.fetch import ApiReader

log = logging.getLogger("spm.report")
CHECK_EVERY_S = 300.0


def due_month(now: datetime, settings: ReportSettings, last_sent: str | None) -> str | None:
    """The month to send now (``YYYY-MM``, the previous month), or None when it is not yet
    the day and hour, or that month was sent already."""
    if (now.day, now.hour) < (settings.report_day, settings.report_hour):
        return None
    previous = (now.date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return None if last_sent is not None and previous <= last_sent else previous


def message(built: Built, settings: ReportSettings) -> EmailMessage:
    msg = EmailMessage()
    month = f"{built.data.first:%B %Y}"
    msg["Message-ID"] = make_msgid(domain="spm-monitor")
    msg["From"] = settings.alerts_mail_from
    msg["To"] = ", ".join(settings.report_recipients)
    msg["Subject"] = f"Social performance report — {month}"
    msg["Date"] = formatdate(localtime=False)
    msg.set_content(
        f"Dear board members,\n\nattached is the social performance report for {month}: where "
        f"the institution stands against its social objectives on {built.data.as_of:%d %B %Y}, "
        f"twelve months of each target, the alerts of the month and the corrective actions.\n\n"
        f"The dashboard shows the same figures: {settings.alerts_dashboard_url}\n\n"
        "SPM Monitor\n"
    )
    for fmt, content in built.files.items():
        maintype, subtype = MEDIA[fmt].split("/", 1)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=built.name(fmt))
    return msg


def _last_sent(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("last_sent")
    except (OSError, ValueError):
        return None
    return str(value) if value else None


async def send_due(
    settings: ReportSettings, now: datetime, client: httpx.AsyncClient | None = None
) -> str | None:
    """Build and send the due month, if any; returns the month sent."""
    state = Path(settings.report_state_file)
    month = due_month(now, settings, await asyncio.to_thread(_last_sent, state))
    if month is None or not settings.report_recipients:
        return None
    key = settings.report_api_key.get_secret_value() if settings.report_api_key else ""
    async with _client(client, settings, key) as http:
        built = await build(ApiReader(http, settings.bases()), month, settings.report_formats)
    await send_mail(settings, message(built, settings))
    await asyncio.to_thread(
        state.write_text, json.dumps({"last_sent": month, "at": now.isoformat()}), "utf-8"
    )
    log.info("report: %s sent to %d recipients", month, len(settings.report_recipients))
    return month


@contextlib.asynccontextmanager
async def _client(
    client: httpx.AsyncClient | None, settings: ReportSettings, key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The given client, or one on ``REPORT_API_URL`` with the report's key."""
    if client is not None:
        yield client
        return
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=settings.report_api_url, headers=headers, timeout=120
    ) as own:
        yield own


async def run_schedule(settings: ReportSettings, check_every_s: float = CHECK_EVERY_S) -> None:
    """Check every few minutes whether a report is due; an error is logged and retried later."""
    log.info(
        "report schedule: day %d at %02d:00 UTC, %d recipients",
        settings.report_day,
        settings.report_hour,
        len(settings.report_recipients),
    )
    while True:
        try:
            await send_due(settings, datetime.now(UTC))
        except SpmError as exc:
            log.warning("report: not sent (%s); retrying in %.0f s", exc, check_every_s)
        except Exception:  # a bug or an unexpected answer must not stop later months
            log.exception("report: not sent; retrying in %.0f s", check_every_s)
        await asyncio.sleep(check_every_s)
