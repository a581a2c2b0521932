"""What a notification says: e-mail (plain text + HTML) and webhook payloads (generic JSON,
Slack- and Teams-compatible). Built once, when the notification is decided, and stored with it,
so a retry or a resend after a crash carries exactly the same content."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

_DIRECTION = {"at_least": "at least", "at_most": "at most", "within": "within"}
_KIND = {
    "breach": "off target",
    "warning": "in the warning band",
    "trend": "heading for its target line",
    "nodata": "not updated",
}


@dataclass(frozen=True, slots=True)
class Content:
    subject: str
    text: str
    html: str
    payload: dict[str, Any]


def _line(alert: Mapping[str, Any], status: str, dashboard: str) -> dict[str, Any]:
    detail = alert["detail"]
    link = f"{dashboard.rstrip('/')}/indicators/{quote(alert['indicator'])}?segment=" + quote(
        alert["segment"]
    )
    return {
        "alert_id": alert["id"],
        "fingerprint": alert["fingerprint"],
        "status": status,
        "kind": alert["kind"],
        "severity": alert["severity"],
        "objective": alert["objective_code"],
        "target_id": alert["target_id"],
        "indicator": alert["indicator"],
        "segment": alert["segment"],
        "value": alert["value"],
        "threshold": alert["threshold"],
        "direction": detail.get("direction"),
        "since": alert["since"].isoformat(),
        "as_of": alert["as_of"].isoformat(),
        "business_days": detail.get("business_days"),
        "slope_per_day": detail.get("slope_per_day"),
        "crosses_in_days": detail.get("crosses_in_days"),
        "acknowledged_by": alert["acked_by"],
        "dashboard_url": link,
    }


def _sentence(a: Mapping[str, Any]) -> str:
    what = _KIND.get(a["kind"], a["kind"])
    target = (
        f"target {_DIRECTION.get(a['direction'] or '', '')} {a['threshold']}".replace("  ", " ")
        if a["threshold"] is not None
        else "no target line"
    )
    verb = "is" if a["status"] == "firing" else "is no longer"
    parts = [
        f"[{a['status'].upper()}] {a['indicator']} ({a['segment']}) {verb} {what}",
        f"  value {a['value'] if a['value'] is not None else 'n/a'}, {target}",
        f"  since {a['since']} ({a['business_days'] or 0} business days), last value {a['as_of']}",
    ]
    if a["slope_per_day"] is not None:
        trend = f"  trend {a['slope_per_day']:+.6f} per business day"
        if a["crosses_in_days"] is not None:
            trend += f", crosses the line in about {a['crosses_in_days']} business days"
        parts.append(trend)
    if a["acknowledged_by"]:
        parts.append(f"  acknowledged by {a['acknowledged_by']}")
    parts.append(f"  {a['dashboard_url']}")
    return "\n".join(parts)


def build(
    *,
    key: str,
    receiver: str,
    reason: str,
    group: Mapping[str, str],
    firing: Sequence[Mapping[str, Any]],
    resolved: Sequence[Mapping[str, Any]],
    dashboard: str,
) -> tuple[dict[str, Any], str, str, str]:
    """The generic payload, subject, text and HTML of one group notification."""
    lines = [_line(a, "firing", dashboard) for a in firing] + [
        _line(a, "resolved", dashboard) for a in resolved
    ]
    status = "firing" if firing else "resolved"
    label = ", ".join(f"{k}={v}" for k, v in sorted(group.items())) or "all"
    head = lines[0]
    subject = (
        f"[SPM {status.upper()}:{len(firing) or len(resolved)}] {label}: "
        f"{head['indicator']} ({head['segment']}) "
        f"{'' if firing else 'no longer '}{_KIND.get(head['kind'], head['kind'])}"
    )
    if reason == "repeat":
        subject += " (reminder)"
    payload = {
        "version": "1",
        "idempotency_key": key,
        "receiver": receiver,
        "status": status,
        "reason": reason,
        "group": dict(group),
        "alerts": lines,
    }
    text = f"{subject}\n\n" + "\n\n".join(_sentence(a) for a in lines) + "\n"
    items = "".join(
        f"<li><pre>{html.escape(_sentence(a))}</pre>"
        f'<a href="{html.escape(a["dashboard_url"])}">Open in the dashboard</a></li>'
        for a in lines
    )
    body = f"<html><body><h2>{html.escape(subject)}</h2><ul>{items}</ul></body></html>"
    return payload, subject, text, body


def webhook_payload(fmt: str, generic: dict[str, Any], subject: str, text: str) -> dict[str, Any]:
    """The body for a webhook of format ``generic``, ``slack`` or ``teams``."""
    if fmt == "slack":
        return {
            "text": subject,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"```{text[:2900]}```"}},
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
