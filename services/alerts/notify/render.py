"""What a notification says: e-mail (subject, plain text, HTML), webhook payloads (generic JSON,
Slack- and Teams-compatible) and SMS texts. Built once, when the notification is decided, and
stored with it, so a retry or a resend after a crash carries exactly the same content.

The words come from Jinja2 templates (``notify/templates/``, one per channel and part); an
operator overrides any of them by putting a file of the same name in ``ALERTS_TEMPLATES_DIR``.
This module only prepares the values the templates show: names, the segment in words, values in
the indicator's unit as the dashboard formats them, and a link to the alert's page in the
dashboard (a hash route).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from contracts.indicator_codes import INDICATOR_CODES
from services.alerts.notify import gsm

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
NAMES = ("email_subject.txt", "email_body.txt", "email_body.html", "webhook_text.txt", "sms.txt")
ACTION_NAMES = ("action_subject.txt", "action_body.txt", "action_body.html", "action_sms.txt")
"""The texts of an overdue corrective action (to its owner, then to the owner's manager)."""
SMS_LIMIT = 160

_KIND = {
    "breach": "off target",
    "warning": "in the warning band",
    "trend": "heading for its target line",
    "nodata": "not updated",
}
_ACRONYMS = {"dsti", "par30", "par90", "gni", "sla", "p50", "p90"}
_DIMENSIONS = {"branch": "Branch", "product": "Product", "gender": "Gender", "rural": "Area"}


@dataclass(frozen=True, slots=True)
class Texts:
    subject: str
    text: str
    html: str
    webhook_text: str
    sms: str


class Templates:
    """The shipped templates, each overridable by a file of the same name in ``override``."""

    def __init__(self, override: Path | None = None, currency: str = "") -> None:
        self.currency = currency
        self.override = override
        self._shipped = _Set([jinja2.FileSystemLoader(TEMPLATES)])
        self._chosen = self._shipped
        if override is not None:
            if not override.is_dir():
                raise ValueError(f"ALERTS_TEMPLATES_DIR {override} is not a directory")
            self._chosen = _Set([jinja2.FileSystemLoader(override), *self._shipped.loaders])
            self._chosen.check()  # a syntax error stops the start, not a notification

    def render(self, context: Mapping[str, Any], link: str) -> Texts:
        one = partial(self._one, context)
        sms_body = gsm.safe(one("sms.txt").strip())
        return Texts(
            subject=one("email_subject.txt").strip(),
            text=one("email_body.txt").strip() + "\n",
            html=one("email_body.html"),
            webhook_text=one("webhook_text.txt").strip(),
            sms=gsm.fit(sms_body, link, SMS_LIMIT),
        )

    def render_action(self, context: Mapping[str, Any], link: str) -> Texts:
        """The texts of an action notice (``context``: see :func:`action_context`)."""
        one = partial(self._one, context)
        subject = one("action_subject.txt").strip()
        return Texts(
            subject=subject,
            text=one("action_body.txt").strip() + "\n",
            html=one("action_body.html"),
            webhook_text=one("action_body.txt").strip(),
            sms=gsm.fit(gsm.safe(one("action_sms.txt").strip()), link, SMS_LIMIT),
        )

    def _one(self, context: Mapping[str, Any], name: str) -> str:
        """One text from the operator's template or, should it fail on this notification (a
        variable that does not exist), from the shipped one: an alert is never lost to a
        template."""
        try:
            return self._chosen.get(name).render(context)
        except jinja2.TemplateError as exc:
            if self._chosen is self._shipped:
                raise
            log.error("alerts: template %s of %s failed (%s); shipped one used",
                      name, self.override, exc)  # fmt: skip
            return self._shipped.get(name).render(context)


class _Set:
    """One set of templates: plain-text environment and an auto-escaping one for HTML."""

    def __init__(self, loaders: list[jinja2.BaseLoader]) -> None:
        self.loaders = loaders
        self._plain = jinja2.Environment(  # noqa: S701 - plain text; HTML is escaped below
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701
        )
        self._html = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined, autoescape=True
        )

    def get(self, name: str) -> jinja2.Template:
        return (self._html if name.endswith(".html") else self._plain).get_template(name)

    def check(self) -> None:
        for name in NAMES + ACTION_NAMES:
            self.get(name)


def indicator_name(code: str) -> str:
    """``dsti_breach_share`` → ``DSTI breach share`` (the catalog in contracts has no titles)."""
    words = code.replace(".", " ").split("_")
    out = " ".join(w.upper() if w in _ACRONYMS else w for w in words if w)
    return out[:1].upper() + out[1:]


def segment_label(segment: str) -> str:
    """``all`` → ``whole institution``; ``branch:BR-MSA`` → ``Branch BR-MSA``."""
    if segment == "all":
        return "whole institution"
    parts = []
    for piece in segment.split(","):
        dim, _, value = piece.partition(":")
        parts.append(f"{_DIMENSIONS.get(dim, dim.capitalize())} {value}".strip())
    return ", ".join(parts)


def _number(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def fmt(value: Any, unit: str | None, currency: str = "") -> str:
    """A value as the dashboard shows it (``spm/dashboard/static/format.js``)."""
    v = _number(value)
    if v is None:
        return "no value"
    if unit == "fraction":
        return f"{v * 100:.1f} %"
    if unit == "count":
        return f"{round(v):,}"
    if unit == "amount":
        return f"{currency} {round(v):,}".strip()
    if unit == "days":
        return f"{v:.1f} days"
    if unit == "per_1k":
        return f"{v:.2f} per 1,000 clients"
    if unit == "ratio":
        return f"{v:.3f}"
    return f"{v.normalize():,f}"


def _plain_number(value: Any) -> str:
    v = _number(value)
    return "?" if v is None else f"{v.normalize():,f}"


def _target_text(
    target: Mapping[str, Any], alert: Mapping[str, Any], unit: str | None, cur: str
) -> str:
    direction = target.get("direction") or alert["detail"].get("direction")
    lower, upper = target.get("lower"), target.get("upper")
    if direction == "at_least" and lower is not None:
        return f"at least {fmt(lower, unit, cur)}"
    if direction == "at_most" and upper is not None:
        return f"at most {fmt(upper, unit, cur)}"
    if direction == "within" and lower is not None and upper is not None:
        return f"between {fmt(lower, unit, cur)} and {fmt(upper, unit, cur)}"
    if alert["threshold"] is not None:
        return f"line at {fmt(alert['threshold'], unit, cur)}"
    return "no target line"


def _day(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def link(dashboard: str, alert: Mapping[str, Any]) -> str:
    """The dashboard's page of the alert (``#/alert/<id>``: its value, notifications, actions and
    buttons). A hash route: the server never sees the part after ``#``, so it cannot answer 404."""
    return f"{dashboard.rstrip('/')}/#/alert/{quote(alert['id'], safe='')}"


def _line(
    alert: Mapping[str, Any],
    status: str,
    dashboard: str,
    target: Mapping[str, Any],
    currency: str,
) -> dict[str, Any]:
    detail = alert["detail"]
    code = INDICATOR_CODES.get(alert["indicator"])
    unit = code.unit if code is not None else None
    trend = None
    if detail.get("slope_per_day") is not None:
        trend = f"{fmt(detail['slope_per_day'], unit, currency)} per business day"
        if detail.get("crosses_in_days") is not None:
            trend += f", crosses the line in about {detail['crosses_in_days']} business days"
    num, den = detail.get("numerator"), detail.get("denominator")
    figures = (
        f"{_plain_number(num)} out of {_plain_number(den)}"
        if num is not None and den is not None
        else "the indicator service sent no numerator and denominator with this value"
    )
    owner = target.get("owner")
    return {
        "alert_id": alert["id"],
        "fingerprint": alert["fingerprint"],
        "status": status,
        "kind": alert["kind"],
        "what": _KIND.get(alert["kind"], alert["kind"]),
        "severity": alert["severity"],
        "objective": alert["objective_code"],
        "objective_name": target.get("objective_name") or alert["objective_code"],
        "target_id": alert["target_id"],
        "indicator": alert["indicator"],
        "indicator_name": indicator_name(alert["indicator"]),
        "unit": unit,
        "segment": alert["segment"],
        "segment_label": segment_label(alert["segment"]),
        "segment_words": "the whole institution"
        if alert["segment"] == "all"
        else segment_label(alert["segment"]),
        "value": alert["value"],
        "value_text": fmt(alert["value"], unit, currency),
        "threshold": alert["threshold"],
        "target_text": _target_text(target, alert, unit, currency),
        "direction": detail.get("direction") or target.get("direction"),
        "since": alert["since"].isoformat(),
        "since_text": _day(alert["since"]),
        "as_of": alert["as_of"].isoformat(),
        "as_of_text": _day(alert["as_of"]),
        "business_days": detail.get("business_days"),
        "slope_per_day": detail.get("slope_per_day"),
        "crosses_in_days": detail.get("crosses_in_days"),
        "trend_text": trend,
        "figures_text": figures,
        "owner_text": owner or "no owner recorded on the target; receivers come from routing",
        "acknowledged_by": alert["acked_by"],
        "dashboard_url": link(dashboard, alert),
    }


def build(
    *,
    key: str,
    receiver: str,
    reason: str,
    group: Mapping[str, str],
    firing: Sequence[Mapping[str, Any]],
    resolved: Sequence[Mapping[str, Any]],
    dashboard: str,
    templates: Templates,
    targets: Mapping[str, Mapping[str, Any]],
    escalation: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Texts]:
    """The generic payload and the texts of one group notification."""
    cur = templates.currency

    def line(a: Mapping[str, Any], status: str) -> dict[str, Any]:
        return _line(a, status, dashboard, targets.get(a["target_id"], {}), cur)

    lines = [line(a, "firing") for a in firing] + [line(a, "resolved") for a in resolved]
    status = "firing" if firing else "resolved"
    context = {
        "status": status,
        "reason": reason,
        "receiver": receiver,
        "group": dict(group),
        "alerts": lines,
        "count": len(lines),
        "escalation": escalation,
    }
    texts = templates.render(context, lines[0]["dashboard_url"])
    payload = {
        "version": "1",
        "idempotency_key": key,
        "receiver": receiver,
        "status": status,
        "reason": reason,
        "group": dict(group),
        "summary": texts.subject,
        "alerts": lines,
    }
    return payload, texts


def webhook_payload(fmt: str, generic: dict[str, Any], subject: str, text: str) -> dict[str, Any]:
    """The body for a webhook of format ``generic``, ``slack`` or ``teams``."""
    if fmt == "slack":
        return {
            "text": subject,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
            ],
        }
    if fmt == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": subject,
            "title": subject,
            "text": text.replace("\n", "<br>"),
            "themeColor": "D93F0B" if generic["status"] == "firing" else "2EB886",
        }
    return generic


def action_link(dashboard: str, action_id: str) -> str:
    """The dashboard's page of one action (a hash route, like :func:`link`)."""
    return f"{dashboard.rstrip('/')}/#/action/{quote(action_id, safe='')}"


def action_context(
    action: Mapping[str, Any],
    notice: str,
    receiver: str,
    dashboard: str,
    today: date,
    currency: str = "",
) -> dict[str, Any]:
    """What the action templates show: ``notice`` is ``owner`` or ``manager``."""
    code = INDICATOR_CODES.get(action["indicator"])
    unit = code.unit if code is not None else None
    days = max((today - action["due_date"]).days, 0)
    target = {"direction": action["direction"], "lower": action["lower"],
              "upper": action["upper"]}  # fmt: skip
    fake_alert = {"detail": {}, "threshold": action["target_threshold"]}
    return {
        "notice": notice,
        "receiver": receiver,
        "a": {
            "id": action["id"],
            "title": action["title"],
            "owner": action["owner"],
            "due_text": _day(action["due_date"]),
            "review_text": _day(action["review_date"]),
            "overdue_days_text": f"{days} day{'s' if days != 1 else ''}",
            "indicator_name": indicator_name(action["indicator"]),
            "segment_words": "the whole institution"
            if action["segment"] == "all"
            else segment_label(action["segment"]),
            "opened_text": fmt(action["opened_value"], unit, currency),
            "target_text": _target_text(target, fake_alert, unit, currency),
            "dashboard_url": action_link(dashboard, action["id"]),
        },
    }
