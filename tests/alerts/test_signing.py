"""Outgoing webhooks are signed per Standard Webhooks with their receiver's secret: a real HTTP
receiver gets them and the ``standardwebhooks`` package (what a receiver would use) verifies."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from services.alerts.config import AlertSettings
from tests.alerts.harness import Harness, business_days, settings_for, target
from tests.alerts.servers import HttpReceiver, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


def write_secret(directory: Path, name: str) -> str:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    (directory / name).write_text(secret + "\n", encoding="utf-8")
    return secret


@pytest.fixture
async def plain() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_webhooks_are_signed_per_receiver(
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    webhook: HttpReceiver,
    plain: HttpReceiver,
    tmp_path: Path,
) -> None:
    secret = write_secret(tmp_path, "ops.whsec")
    routes = {
        "receivers": {
            "ops": {"webhooks": [{"url": webhook.url, "secret_file": str(tmp_path / "ops.whsec")}]},
            "legacy": {"webhooks": [{"url": plain.url}]},
        }
    }
    h = await Harness.start(
        settings_for(kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=routes)
    )
    try:
        await h.targets(target(for_days=0, notify=("ops", "legacy")))
        await h.values(business_days(1)[0], (CODE, "all", "0.40"))
        await h.settle()
    finally:
        await h.stop()
    [request] = webhook.requests
    verified = Webhook(secret).verify(request.raw, request.headers)
    assert verified == request.body and verified["status"] == "firing"
    assert request.headers["webhook-id"] == request.headers["idempotency-key"]
    assert request.headers["webhook-signature"].startswith("v1,")
    tampered = json.dumps({**request.body, "status": "resolved"}).encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):  # another receiver's secret does not fit
        Webhook(other).verify(request.raw, request.headers)
    [unsigned] = plain.requests  # a receiver without a secret: no signature to fake trust with
    assert "webhook-signature" not in unsigned.headers


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not-a-secret", "must start with whsec_"),
        ("whsec_!!!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
    ],
)
def test_a_bad_secret_refuses_the_configuration(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "bad").write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError, match=reason):
        _settings(str(tmp_path / "bad")).routing()
    with pytest.raises(ValidationError, match="cannot read"):
        _settings("nowhere.whsec").routing()


def _settings(secret_file: str) -> AlertSettings:
    hook = {"url": "https://x.example/h", "secret_file": secret_file}
    return AlertSettings(alerts_routes=json.dumps({"receivers": {"ops": {"webhooks": [hook]}}}))
