"""Session-wide fixtures: the real Kafka broker and PostgreSQL every test talks to, the real
Keycloak of the identity tests (started only in a session that has one of them), and a real SMTP
server per test that sends e-mail.

They are started by the project's own scripts (deploy/local/infra.sh) unless
KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL point at running ones. A missing service is a failure,
never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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
_CONTROLLER_INFRA: pytest.StashKey[Infra] = pytest.StashKey()


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _xdist_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("dsession")


def pytest_sessionstart(session: pytest.Session) -> None:
    """With pytest-xdist, the controller starts the shared Kafka and PostgreSQL once, before the
    workers start (they inherit the exported addresses and never stop them)."""
    if not _xdist_controller(session.config):
        return
    from tests.infra import ensure_infra

    running = ensure_infra()
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = running.kafka_bootstrap
    os.environ["DATABASE_URL"] = running.database_url
    session.config.stash[_CONTROLLER_INFRA] = running


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts Keycloak beside the first tests when any collected test will need it (with
    pytest-xdist the controller does, from the workers' collections: see below)."""
    if session.config.option.collectonly:
        return
    from tests.keycloak import KEYCLOAK_MODULES, external_keycloak, start_in_background

    needing = {
        item.nodeid for item in session.items if "keycloak" in getattr(item, "fixturenames", ())
    }
    stray = sorted(node for node in needing if not node.startswith(KEYCLOAK_MODULES))
    if stray:
        raise pytest.UsageError(f"tests.keycloak.KEYCLOAK_MODULES must list the module of {stray}")
    if needing and not _xdist_worker(session.config) and not external_keycloak():
        session.config.stash[_KEYCLOAK_START] = start_in_background()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The controller starts the one Keycloak of the run as soon as a worker has collected a
    test that needs it; the workers' `keycloak.sh up` then waits for it and reuses it."""
    from tests.keycloak import KEYCLOAK_MODULES, external_keycloak, start_in_background

    config: pytest.Config = node.config
    if _KEYCLOAK_START in config.stash or external_keycloak():
        return
    if any(nodeid.startswith(KEYCLOAK_MODULES) for nodeid in ids):
        config.stash[_KEYCLOAK_START] = start_in_background()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stops a background Keycloak no test of this process got to use (the controller's, or an
    interrupted or failed-early run's), and the controller's shared infrastructure."""
    background = session.config.stash.get(_KEYCLOAK_START, None)
    if background is not None and not background.collected:
        from tests.keycloak import ensure_keycloak, stop_keycloak

        stop_keycloak(ensure_keycloak(background))
    running = session.config.stash.get(_CONTROLLER_INFRA, None)
    if running is not None:
        from tests.infra import stop_infra

        stop_infra(running)


@pytest.fixture(scope="session")
def keycloak(request: pytest.FixtureRequest) -> Iterator[Keycloak]:
    """A real Keycloak for the session, started in the background when collection ended."""
    from tests.keycloak import ensure_keycloak, stop_keycloak

    running = ensure_keycloak(request.config.stash.get(_KEYCLOAK_START, None))
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
