"""Fixtures of the accounts tests: a real SMTP server (the distributed stack's alerts send)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.servers import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
