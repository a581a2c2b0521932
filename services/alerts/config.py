"""Settings of the alert service (environment variables, case-insensitive).

Evaluation (driven by business dates, i.e. the ``as_of`` of indicator values):

- ``ALERTS_BUSINESS_WEEKDAYS`` ([0,1,2,3,4]): weekdays (Monday = 0) that count as business days.
- ``ALERTS_HOLIDAYS`` ([]): dates that are not business days.
- ``ALERTS_HYSTERESIS_RELATIVE`` (0.02) / ``ALERTS_HYSTERESIS_ABSOLUTE`` (0): a firing alert
  resolves only once the value is back past the threshold by max(relative × |threshold|,
  absolute).
- ``ALERTS_TREND_DAYS`` (10): business days of values in the least-squares fit of trend alerts.
- ``ALERTS_TREND_MIN_POINTS`` (5): fewer values than this give no trend alert.
- ``ALERTS_TREND_HORIZON_DAYS`` (20): a trend alert fires when the fitted line crosses the
  threshold within this many business days.
- ``ALERTS_NODATA_DAYS`` (3): a target's indicator that has not updated for more than this many
  business days (behind the newest business date seen) raises a ``nodata`` alert …
- ``ALERTS_NODATA_GRACE_S`` (300): … once its last value is also this old in wall-clock time.
  The indicator service publishes a whole day's values as a burst that can span several batches
  (a replay or catch-up moves many business days in seconds); without the grace, keys later in
  the burst would look stale for an instant.

Notifications (wall-clock timers; seconds, so tests may use small values):

- ``ALERTS_ROUTES``: JSON or YAML, or ``ALERTS_ROUTES_FILE``: a path to one. Shape::

      receivers:
        ops: {email: [ops@example.org], webhooks: [{url: "https://…", format: slack,
                                                    secret_file: webhook_ops}],
              sms: ["+254711000000"],
              escalate: [{after_s: 3600, receiver: regional}]}
        regional: {email: [regional@example.org]}
      routes:
        - {receiver: ops, segment: "branch:*", severity: [critical], continue: false}
      default_receiver: ops

  A target's ``notify`` names receivers; e-mail addresses in it get a receiver of their own.
  ``escalate``: a firing alert of this receiver that nobody acknowledged ``after_s`` seconds
  after it fired is sent to the next receiver of the chain (each level once; reason
  ``escalated`` in ``/v1/notifications``).
  A webhook with ``secret_file`` is signed per Standard Webhooks (``notify/signing.py``); the
  file (relative to ``SPM_SECRETS_DIR``) holds ``whsec_`` + base64 of 24-64 random bytes.
  Without one the request is unsigned (a warning is logged at start).
- ``ALERTS_GROUP_BY`` (["objective"]): alert labels that form a group (objective, target,
  indicator, segment, kind, severity).
- ``ALERTS_GROUP_WAIT_S`` (30), ``ALERTS_GROUP_INTERVAL_S`` (300), ``ALERTS_REPEAT_INTERVAL_S``
  (86400): Alertmanager's timers.
- ``ALERTS_FLUSH_INTERVAL_S`` (1): how often groups are examined.
- ``ALERTS_SEND_MAX_ATTEMPTS`` (8), ``ALERTS_SEND_BACKOFF_S`` (2), ``ALERTS_SEND_BACKOFF_MAX_S``
  (600): delivery retries, exponential backoff (base × 2^attempt, capped).
- ``ALERTS_SMTP_HOST`` (localhost), ``ALERTS_SMTP_PORT`` (25), ``ALERTS_SMTP_USERNAME``,
  ``ALERTS_SMTP_PASSWORD``, ``ALERTS_SMTP_STARTTLS`` (false), ``ALERTS_SMTP_TIMEOUT_S`` (10),
  ``ALERTS_MAIL_FROM`` (spm-monitor@localhost).
- ``ALERTS_WEBHOOK_TIMEOUT_S`` (10).
- ``ALERTS_RETENTION_DAYS`` (400): sent and failed notifications, resolved alerts and silences
  that ended longer ago than this are deleted (looked for hourly); pending notifications and
  active alerts are kept whatever their age.
- ``ALERTS_DASHBOARD_URL`` (http://127.0.0.1:8000): base of links in notifications (the
  dashboard's own URL, e.g. ``https://spm.example.org/dashboard``).
- ``ALERTS_TEMPLATES_DIR`` (unset): a directory whose files replace the shipped notification
  templates of the same name (``notify/templates/``: email_subject.txt, email_body.txt,
  email_body.html, webhook_text.txt, sms.txt).
- ``ALERTS_SMS_URL`` (https://api.africastalking.com), ``ALERTS_SMS_USERNAME`` (sandbox),
  ``ALERTS_SMS_API_KEY``, ``ALERTS_SMS_FROM`` (unset: the gateway's default sender),
  ``ALERTS_SMS_TIMEOUT_S`` (10): the Africa's Talking messaging API used by ``sms`` receivers.

Corrective actions (``actions.py``, ``action_tick.py``; see docs/actions.md):

- ``ALERTS_ACTION_MANAGER_AFTER_S`` (604800, a week): an action overdue this long is notified
  to its owner's manager too (once): the ``manager`` of the owner's receiver, else …
- ``ALERTS_ACTION_MANAGER`` (unset): … this receiver (unset: the owner alone is told).
- A receiver's ``manager: <receiver>`` in ``ALERTS_ROUTES`` names that manager.

Runtime:

- ``ALERTS_DB_SCHEMA`` ("alerts"), ``ALERTS_GROUP_ID`` ("spm-alerts"), ``ALERTS_SOURCE``
  ("spm:alerts"), ``ALERTS_INDICATORS_TOPIC``, ``ALERTS_OBJECTIVES_TOPIC``, ``ALERTS_TOPIC``,
  ``ALERTS_ACTIONS_TOPIC``,
  ``ALERTS_DEADLETTER_TOPIC`` (the catalog's names by default; tests use their own).
- ``OBJECTIVES_URL`` (unset): when set, ``GET {OBJECTIVES_URL}/v1/targets`` is read at start-up
  (with ``ALERTS_OBJECTIVES_API_KEY``) in addition to the topic.
- ``ALERTS_CRASH_AFTER_SEND`` (false; tests only): the process kills itself (SIGKILL) after the
  first delivery and before recording it.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    model_validator,
)

from contracts.topics import ACTIONS, ALERTS, DEADLETTER, INDICATORS, OBJECTIVES, TopicSpec
from services.alerts.directory import Member
from services.alerts.notify.signing import load_secret
from services.common.settings import CommonSettings

GroupLabel = Literal["objective", "target", "indicator", "segment", "kind", "severity"]
Severity = Literal["info", "warning", "critical"]


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")
    format: Literal["generic", "slack", "teams"] = "generic"
    secret_file: Path | None = None
    """Standard Webhooks secret (``whsec_…``) of this receiver; requests are signed with it.
    Relative to ``SPM_SECRETS_DIR`` unless absolute. Read (and checked) when the routing is."""
    _key: bytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_secret(self) -> Webhook:
        if self.secret_file is not None:
            self._key = load_secret(self.secret_file)
        return self

    @property
    def signing_key(self) -> bytes | None:
        return self._key


class Escalation(BaseModel):
    """One level of an escalation chain: after ``after_s`` seconds of firing unacknowledged,
    the alert is sent to ``receiver`` too."""

    model_config = ConfigDict(extra="forbid")

    after_s: float = Field(gt=0)
    receiver: str = Field(min_length=1)


class DirectoryPick(BaseModel):
    """A receiver's people by role (services.alerts.directory): the members holding ``role``
    for ``branch``, or for the alert's own branch when ``branch`` is not given."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=64)
    branch: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")


class Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: DirectoryPick | None = None
    """Also send to the directory's members of a role for the alert's branch (e-mail, SMS)."""
    email: list[str] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    sms: list[Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]] = Field(
        default_factory=list
    )
    """Phone numbers in international format (``+254711000000``), sent through the SMS gateway."""
    escalate: list[Escalation] = Field(default_factory=list)
    """The next levels for this receiver's alerts nobody acknowledges, in order of ``after_s``."""
    manager: str | None = None
    """The receiver told when a corrective action owned through this receiver stays overdue
    (``ALERTS_ACTION_MANAGER_AFTER_S``)."""


class Route(BaseModel):
    """Sends matching alerts to ``receiver``; ``segment`` and ``indicator`` are globs."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    receiver: str
    segment: str | None = None
    indicator: str | None = None
    severity: list[Severity] | None = None
    kind: list[Literal["breach", "warning", "trend", "nodata"]] | None = None
    continue_: bool = Field(default=False, alias="continue")


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receivers: dict[str, Receiver] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    default_receiver: str | None = None
    directory: list[Member] = Field(default_factory=list)
    """The people role receivers resolve to (``ALERTS_DIRECTORY`` / ``ALERTS_DIRECTORY_FILE``)."""

    @model_validator(mode="after")
    def _known_escalations(self) -> Routing:
        for name, rec in self.receivers.items():
            for n, step in enumerate(rec.escalate):
                if step.receiver not in self.receivers:
                    raise ValueError(
                        f"receivers.{name}.escalate.{n}.receiver: no receiver {step.receiver!r}"
                    )
            if rec.manager is not None and rec.manager not in self.receivers:
                raise ValueError(f"receivers.{name}.manager: no receiver {rec.manager!r}")
            if [s.after_s for s in rec.escalate] != sorted(s.after_s for s in rec.escalate):
                raise ValueError(f"receivers.{name}.escalate: after_s must increase")
        return self


class AlertSettings(CommonSettings):
    alerts_business_weekdays: list[int] = Field(default=[0, 1, 2, 3, 4], min_length=1)
    alerts_holidays: list[date] = Field(default_factory=list)
    alerts_hysteresis_relative: float = Field(default=0.02, ge=0, le=1)
    alerts_hysteresis_absolute: float = Field(default=0.0, ge=0)
    alerts_trend_days: int = Field(default=10, ge=2, le=366)
    alerts_trend_min_points: int = Field(default=5, ge=2, le=366)
    alerts_trend_horizon_days: int = Field(default=20, ge=1, le=366)
    alerts_nodata_days: int = Field(default=3, ge=1, le=366)
    alerts_nodata_grace_s: float = Field(default=300.0, ge=0)

    alerts_routes: str | None = None
    alerts_routes_file: Path | None = None
    alerts_group_by: list[GroupLabel] = Field(default=["objective"])
    alerts_group_wait_s: float = Field(default=30.0, ge=0)
    alerts_group_interval_s: float = Field(default=300.0, ge=0)
    alerts_repeat_interval_s: float = Field(default=86_400.0, gt=0)
    alerts_flush_interval_s: float = Field(default=1.0, gt=0)
    alerts_retention_days: int = Field(default=400, ge=1)
    alerts_send_max_attempts: int = Field(default=8, ge=1, le=100)
    alerts_send_backoff_s: float = Field(default=2.0, gt=0)
    alerts_send_backoff_max_s: float = Field(default=600.0, gt=0)
    alerts_smtp_host: str = "localhost"
    alerts_smtp_port: int = Field(default=25, ge=1, le=65535)
    alerts_smtp_username: str | None = None
    alerts_smtp_password: SecretStr | None = None
    alerts_smtp_starttls: bool = False
    alerts_smtp_timeout_s: float = Field(default=10.0, gt=0)
    alerts_mail_from: str = "spm-monitor@localhost"
    alerts_webhook_timeout_s: float = Field(default=10.0, gt=0)
    alerts_dashboard_url: str = "http://127.0.0.1:8000"
    alerts_templates_dir: Path | None = None
    alerts_sms_url: str = Field(
        default="https://api.africastalking.com", pattern=r"^https?://[^\s\x00-\x1f\x7f]+$"
    )
    alerts_sms_username: str = "sandbox"
    alerts_sms_api_key: SecretStr | None = None
    alerts_sms_from: str | None = None
    alerts_sms_timeout_s: float = Field(default=10.0, gt=0)
    alerts_action_manager_after_s: float = Field(default=604_800.0, ge=0)
    alerts_action_manager: str | None = None

    alerts_db_schema: str = Field(default="alerts", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    alerts_group_id: str = Field(default="spm-alerts", min_length=1, max_length=200)
    alerts_source: str = "spm:alerts"
    alerts_indicators_topic: str = INDICATORS.name
    alerts_objectives_topic: str = OBJECTIVES.name
    alerts_topic: str = ALERTS.name
    alerts_actions_topic: str = ACTIONS.name
    alerts_deadletter_topic: str = DEADLETTER.name
    alerts_batch_size: int = Field(default=500, ge=1, le=100_000)
    objectives_url: str | None = None
    alerts_objectives_api_key: SecretStr | None = None
    alerts_crash_after_send: bool = False
    alerts_directory: str | None = Field(
        default=None,
        description="People for role receivers, JSON/YAML list of {name, email, phone, role, "
        "branches}.",
    )
    alerts_directory_file: Path | None = Field(
        default=None, description="The same directory in a file (used when ALERTS_DIRECTORY unset)."
    )

    def routing(self) -> Routing:
        """The routing tree from ``ALERTS_ROUTES`` or ``ALERTS_ROUTES_FILE`` (empty if neither)."""
        raw: str | None = self.alerts_routes
        if raw is None and self.alerts_routes_file is not None:
            raw = self.alerts_routes_file.read_text(encoding="utf-8")
        data: Any = (yaml.safe_load(raw) if raw else None) or {}  # JSON is YAML
        people: str | None = self.alerts_directory
        if people is None and self.alerts_directory_file is not None:
            people = self.alerts_directory_file.read_text(encoding="utf-8")
        if people:
            data = {**data, "directory": yaml.safe_load(people) or []}
        return Routing.model_validate(data)

    def topic_specs(self) -> list[TopicSpec]:
        return [
            dataclasses.replace(INDICATORS, name=self.alerts_indicators_topic),
            dataclasses.replace(OBJECTIVES, name=self.alerts_objectives_topic),
            dataclasses.replace(ALERTS, name=self.alerts_topic),
            dataclasses.replace(ACTIONS, name=self.alerts_actions_topic),
            dataclasses.replace(DEADLETTER, name=self.alerts_deadletter_topic),
        ]
