"""SMS through Africa's Talking's messaging API (``POST {ALERTS_SMS_URL}/version1/messaging``,
form-encoded ``username``, ``to``, ``message``, optional ``from``; ``apiKey`` header; the answer's
``SMSMessageData.Recipients[]`` says per number whether it was accepted).

Retries and idempotency are the sender's, as for the other channels: one outbox row per number,
retried on a gateway outage (connection refused, timeout, 5xx, 429) and marked sent once the
gateway has accepted it, so a sent row is never sent again. The gateway has no idempotency key:
a crash between its answer and our commit can, as for e-mail, send one duplicate.

Phone numbers come from the routing configuration and are never logged or stored in an error
in full: :func:`mask_phone`.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.alerts.config import AlertSettings
from services.alerts.errors import DeliveryError

PATH = "/version1/messaging"
ACCEPTED = {100, 101, 102}
"""Africa's Talking recipient status codes: Processed, Sent, Queued."""
RETRIABLE = {500, 501, 502}
"""RiskHold, InvalidSenderId... are final; 500-502 are the gateway's own errors."""


def mask_phone(phone: str) -> str:
    """``+254711000123`` → ``+2547******23``: enough to tell numbers apart, not to call one."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:5] + "*" * (len(phone) - 7) + phone[-2:]


class SmsGateway:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(timeout=settings.alerts_sms_timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, phone: str, message: str) -> None:
        s = self.settings
        who = mask_phone(phone)
        if s.alerts_sms_api_key is None:
            raise DeliveryError("SMS: ALERTS_SMS_API_KEY is not set", retriable=False)
        form = {"username": s.alerts_sms_username, "to": phone, "message": message}
        if s.alerts_sms_from:
            form["from"] = s.alerts_sms_from
        try:
            response = await self._http.post(
                s.alerts_sms_url.rstrip("/") + PATH,
                data=form,
                headers={
                    "apiKey": s.alerts_sms_api_key.get_secret_value(),
                    "Accept": "application/json",
                    "User-Agent": "spm-monitor-alerts/1",
                },
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS to {who}: {type(exc).__name__}", retriable=True) from exc
        code = response.status_code
        if not 200 <= code < 300:
            retriable = code >= 500 or code in (408, 429)
            raise DeliveryError(f"SMS to {who}: gateway answered HTTP {code}", retriable=retriable)
        try:
            recipients: list[dict[str, Any]] = response.json()["SMSMessageData"]["Recipients"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DeliveryError(f"SMS to {who}: unexpected answer", retriable=True) from exc
        if not recipients:
            raise DeliveryError(f"SMS to {who}: no recipient accepted", retriable=False)
        status = recipients[0].get("statusCode")
        if status not in ACCEPTED:
            raise DeliveryError(
                f"SMS to {who}: {recipients[0].get('status')} ({status})",
                retriable=status in RETRIABLE,
            )
