"""Settings of the board report's schedule: where the APIs are, the key it reads them with,
the board's recipients and the day of the month. The e-mail goes out through the alerts
service's SMTP settings (``ALERTS_SMTP_*``, ``ALERTS_MAIL_FROM``): one mail server to
configure, not two."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints

from services.alerts.config import AlertSettings

Email = Annotated[str, StringConstraints(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")]


class ReportSettings(AlertSettings):
    report_recipients: list[Email] = Field(
        default_factory=list, description="The board's addresses (JSON list); empty: no e-mail."
    )
    report_day: int = Field(
        default=3,
        ge=1,
        le=28,
        description="Day of the month the previous month's report is sent (after the month's "
        "last figures are in).",
    )
    report_hour: int = Field(default=7, ge=0, le=23, description="Hour (UTC) it is sent.")
    report_formats: list[Literal["pdf", "xlsx"]] = Field(default=["pdf", "xlsx"], min_length=1)
    report_api_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
        description="Base URL of the APIs (one origin: the embedded mode or a gateway).",
    )
    report_indicators_url: str | None = None
    report_objectives_url: str | None = None
    report_alerts_url: str | None = None
    report_api_key: SecretStr | None = Field(
        default=None,
        description="Bearer key with indicators:read, objectives:read and alerts:read.",
    )
    report_state_file: str = Field(
        default="report-schedule.json",
        description="Where the schedule remembers the last month it sent (no month twice).",
    )

    def bases(self) -> dict[str, str]:
        return {
            name: url
            for name, url in (
                ("indicators", self.report_indicators_url),
                ("objectives", self.report_objectives_url),
                ("alerts", self.report_alerts_url),
            )
            if url
        }
