"""Session-wide fixtures: the real Kafka broker and PostgreSQL every test talks to, the real
Keycloak of the identity tests (started only in a session that has one of them), and a real SMTP
server per test that sends e-mail.

They are started by the project's own scripts (deploy/local/infra.sh) unless
KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL point at running ones. A missing service is a failure,
never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.alerts.servers import SmtpServer
    from tests.infra import Infra
    from tests.keycloak import BackgroundStart, Keycloak


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    from tests.infra import ensure_infra, stop_infra  # only sessions that need infra start it

    running = ensure_infra()
    yield running
    stop_infra(running)


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_url(infra: Infra) -> str:
    return infra.database_url


_KEYCLOAK_START: pytest.StashKey[BackgroundStart] = pytest.StashKey()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts Keycloak beside the first tests when any collected test will need it."""
    if session.config.option.collectonly:
        return
    if not any("keycloak" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from tests.keycloak import external_keycloak, start_in_background

    if not external_keycloak():
        session.stash[_KEYCLOAK_START] = start_in_background()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stops a background Keycloak no test got to use (an interrupted or failed-early run)."""
    background = session.stash.get(_KEYCLOAK_START, None)
    if background is not None and not background.collected:
        from tests.keycloak import ensure_keycloak, stop_keycloak

        stop_keycloak(ensure_keycloak(background))


@pytest.fixture(scope="session")
def keycloak(request: pytest.FixtureRequest) -> Iterator[Keycloak]:
    """A real Keycloak for the session, started in the background when collection ended."""
    from tests.keycloak import ensure_keycloak, stop_keycloak

    running = ensure_keycloak(request.session.stash.get(_KEYCLOAK_START, None))
    yield running
    stop_keycloak(running)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    from tests.alerts.servers import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, group and schema names, so tests never collide."""
    return uuid.uuid4().hex[:10]
