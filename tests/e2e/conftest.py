"""Fixtures of the end-to-end tests: a real SMTP server."""

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
