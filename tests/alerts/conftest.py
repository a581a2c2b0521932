"""Fixtures of the alert tests: a real HTTP receiver per test (the SMTP server is the root
conftest's ``smtp``) and the alert service harness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerts.harness import Harness, settings_for
from tests.alerts.servers import HttpReceiver, SmtpServer


@pytest.fixture
async def webhook() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def h(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, webhook: HttpReceiver
) -> AsyncIterator[Harness]:
    """An alert service whose receiver ``ops`` has one e-mail address and one webhook."""
    routes = {
        "receivers": {
            "ops": {
                "email": ["ops@example.org"],
                "webhooks": [{"url": webhook.url, "format": "generic"}],
            }
        }
    }
    harness = await Harness.start(
        settings_for(kafka_bootstrap, postgres_url, unique, smtp_port=smtp.port, routes=routes)
    )
    yield harness
    await harness.stop()
