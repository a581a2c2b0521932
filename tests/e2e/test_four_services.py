"""End to end: events posted to the ingest API make an indicator drift from a target created
through the objectives API, and an e-mail arrives — ingest, indicators, objectives and alerts
each running as ``spm serve <service>`` in its own process, on real Kafka and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.servers import Proc, SmtpServer, free_port
from tests.e2e.four_services import SERVICES, assert_drift_reaches_the_inbox, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def stack(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, tmp_path: Path
) -> Iterator[dict[str, Proc]]:
    env = service_env(kafka_bootstrap, postgres_url, unique, smtp)
    procs = {s: Proc(env, free_port(), tmp_path / f"{s}.log", s) for s in SERVICES}
    yield procs
    for p in procs.values():
        p.stop()


async def test_drift_reaches_the_inbox(
    stack: dict[str, Proc], smtp: SmtpServer, unique: str
) -> None:
    await assert_drift_reaches_the_inbox(stack, smtp, unique)
