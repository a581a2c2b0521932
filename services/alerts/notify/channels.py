"""Delivery adapters: SMTP (aiosmtplib), webhooks (httpx) and SMS (:mod:`.sms`). Each translates
its errors into :class:`DeliveryError`, retriable or not, and sends the notification's
idempotency key along (``Message-ID`` for e-mail, an ``Idempotency-Key`` header for
webhooks). Webhooks whose receiver
has a secret are signed per Standard Webhooks (:mod:`services.alerts.notify.signing`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import httpx

from services.alerts.config import AlertSettings, Routing
from services.alerts.errors import DeliveryError
from services.alerts.notify.signing import signature_headers
from services.alerts.notify.sms import SmsGateway

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"


def message_id(key: str) -> str:
    return f"<{key}@spm-monitor>"


class Channels:
    def __init__(self, settings: AlertSettings, routing: Routing | None = None) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(timeout=settings.alerts_webhook_timeout_s)
        self.sms = SmsGateway(settings)
        self._keys: dict[tuple[str, str], bytes] = {}
        """(receiver, url) -> signing key."""
        for name, receiver in (routing or settings.routing()).receivers.items():
            for hook in receiver.webhooks:
                if hook.signing_key is not None:
                    self._keys[(name, hook.url)] = hook.signing_key
                else:
                    log.warning("alerts: webhooks of receiver %s are sent unsigned", name)

    async def close(self) -> None:
        await self._http.aclose()
        await self.sms.close()

    async def deliver(self, row: Mapping[str, Any]) -> None:
        if row["channel"] == "email":
            await self.email(row)
        elif row["channel"] == "sms":
            await self.sms.send(row["destination"], row["payload"]["message"])
        else:
            await self.webhook(row)

    async def email(self, row: Mapping[str, Any]) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["Message-ID"] = message_id(row["id"])
        msg["From"] = s.alerts_mail_from
        msg["To"] = row["destination"]
        msg["Subject"] = row["subject"]
        msg["Date"] = formatdate(localtime=False)
        msg["X-SPM-Idempotency-Key"] = row["id"]
        msg.set_content(row["body_text"])
        msg.add_alternative(row["body_html"], subtype="html")
        await send_mail(s, msg)

    async def webhook(self, row: Mapping[str, Any]) -> None:
        body = json.dumps(row["payload"], separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            IDEMPOTENCY_HEADER: row["id"],
            "User-Agent": "spm-monitor-alerts/1",
            "Content-Type": "application/json",
        }
        key = self._keys.get((row["receiver"], row["destination"]))
        if key is not None:  # the timestamp is this attempt's: receivers refuse stale ones
            headers |= signature_headers(key, row["id"], int(time.time()), body)
        try:
            response = await self._http.post(row["destination"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"webhook: {type(exc).__name__}: {exc}"[:500], retriable=True
            ) from exc
        code = response.status_code
        if 200 <= code < 300:
            return
        retriable = code >= 500 or code in (408, 409, 425, 429)
        raise DeliveryError(f"webhook answered HTTP {code}", retriable=retriable)


async def send_mail(s: AlertSettings, msg: EmailMessage) -> None:
    """Send one message through the configured SMTP server (``ALERTS_SMTP_*``); failures are
    ``DeliveryError``s saying whether a retry may succeed. Also the board report's sender."""
    try:
        await aiosmtplib.send(
            msg,
            hostname=s.alerts_smtp_host,
            port=s.alerts_smtp_port,
            username=s.alerts_smtp_username,
            password=(
                s.alerts_smtp_password.get_secret_value() if s.alerts_smtp_password else None
            ),
            start_tls=s.alerts_smtp_starttls,
            use_tls=False,
            timeout=s.alerts_smtp_timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        raise DeliveryError(
            f"SMTP refused all recipients ({codes})",
            retriable=any(400 <= c < 500 for c in codes),
        ) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {exc.code}: {exc.message}"[:500], retriable=400 <= exc.code < 500
        ) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}"[:500], retriable=True) from exc
