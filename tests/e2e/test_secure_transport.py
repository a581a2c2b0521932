"""Transport security end to end: the four services over Kafka SASL_SSL (SCRAM-SHA-512) and
PostgreSQL TLS (verify-full), on infrastructure of this module's own started by
``infra.sh up --secure``; and clients without credentials, or not trusting the CA, refused."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from contracts.topics import TopicSpec
from services.common.bus import BusError, KafkaBus
from services.common.db import create_engine
from services.common.settings import CommonSettings
from services.common.transport import kafka_client_options
from tests.alerts.servers import Proc, SmtpServer, free_port
from tests.e2e.four_services import SERVICES, assert_drift_reaches_the_inbox, service_env
from tests.infra import OwnInfra, own_infra

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.secure]

SECURE_ENV = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "DATABASE_SSLMODE",
    "DATABASE_SSL_ROOT_CERT",
)


@pytest.fixture(scope="module")
def secure() -> Iterator[OwnInfra]:
    run_dir = tempfile.mkdtemp(prefix="spm-secure-")
    infra = own_infra(
        {
            "SPM_SECURE": "1",
            "SPM_RUN_DIR": run_dir,
            "SPM_KAFKA_PORT": str(free_port()),
            "SPM_KAFKA_CONTROLLER_PORT": str(free_port()),
            "SPM_PG_PORT": str(free_port()),
            **_passed_through("SPM_CACHE_DIR", "SPM_KAFKA_VERSION", "SPM_PG_BIN"),
        }
    )
    yield infra
    infra.down()
    shutil.rmtree(run_dir, ignore_errors=True)


def _passed_through(*names: str) -> dict[str, str]:
    return {n: os.environ[n] for n in names if os.environ.get(n)}


@pytest.fixture
def secure_env(secure: OwnInfra, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment set to the secure infrastructure (the engine reads it)."""
    for name, value in secure.exports.items():
        monkeypatch.setenv(name, value)
    return secure.exports


@pytest.fixture
def stack(
    secure: OwnInfra, unique: str, smtp: SmtpServer, tmp_path: Path
) -> Iterator[dict[str, Proc]]:
    e = secure.exports
    env = service_env(e["KAFKA_BOOTSTRAP_SERVERS"], e["DATABASE_URL"], unique, smtp)
    env |= {name: e[name] for name in SECURE_ENV}
    procs = {s: Proc(env, free_port(), tmp_path / f"{s}.log", s) for s in SERVICES}
    yield procs
    for p in procs.values():
        p.stop()


async def test_drift_reaches_the_inbox_over_sasl_ssl_and_tls(
    stack: dict[str, Proc], smtp: SmtpServer, unique: str, secure_env: dict[str, str]
) -> None:
    await assert_drift_reaches_the_inbox(stack, smtp, unique)
    # the services' database connections were encrypted (the server says so, not the client)
    engine = create_engine(secure_env["DATABASE_URL"], "public")
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s "
                    "JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'spm-%'"
                )
            )
            encrypted, total = rows.one()
    finally:
        await engine.dispose()
    assert total > 0 and encrypted == total


def _kafka(exports: dict[str, str], **overrides: Any) -> KafkaBus:
    fields: dict[str, Any] = {
        "kafka_bootstrap_servers": exports["KAFKA_BOOTSTRAP_SERVERS"],
        "kafka_security_protocol": exports["KAFKA_SECURITY_PROTOCOL"],
        "kafka_sasl_username": exports["KAFKA_SASL_USERNAME"],
        "kafka_sasl_password": exports["KAFKA_SASL_PASSWORD"],
        "kafka_ssl_cafile": exports["KAFKA_SSL_CAFILE"],
    }
    settings = CommonSettings(**(fields | overrides))
    return KafkaBus(
        exports["KAFKA_BOOTSTRAP_SERVERS"],
        request_timeout_ms=5_000,
        security=kafka_client_options(settings),
    )


def _topic(unique: str) -> TopicSpec:
    return TopicSpec(f"spm.secure-{unique}", 1, "k", "delete", 60_000, "transport test")


async def test_kafka_with_credentials_and_the_ca_is_served(
    secure_env: dict[str, str], unique: str
) -> None:
    bus = _kafka(secure_env)
    await bus.ensure_topics([_topic(unique)])
    assert await bus.partition_count(_topic(unique).name) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"kafka_security_protocol": "SSL"}, id="tls-without-credentials"),
        pytest.param({"kafka_security_protocol": "PLAINTEXT"}, id="plain-text"),
        pytest.param({"kafka_sasl_password": "not-the-password"}, id="wrong-password"),
        pytest.param({"kafka_ssl_cafile": None}, id="does-not-trust-the-ca"),
    ],
)
async def test_kafka_refuses(
    secure_env: dict[str, str], unique: str, overrides: dict[str, Any]
) -> None:
    bus = _kafka(secure_env, **overrides)
    with pytest.raises(BusError):
        await bus.ensure_topics([_topic(unique)])


async def _select_one(url: str) -> int:
    engine = create_engine(url, "public")
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())
    finally:
        await engine.dispose()


async def test_postgres_with_password_and_the_ca_is_served(secure_env: dict[str, str]) -> None:
    assert await _select_one(secure_env["DATABASE_URL"]) == 1


def _without_password(url: str) -> str:
    password = make_url(url).password  # URL.set(password=None) keeps the password
    assert password
    return url.replace(f":{password}@", "@")


@pytest.mark.parametrize(
    ("env", "without_password", "reason"),
    [
        pytest.param({}, True, "password", id="without-credentials"),
        pytest.param({"DATABASE_SSLMODE": "disable"}, False, "no encryption", id="plain-text"),
        pytest.param(
            {"DATABASE_SSL_ROOT_CERT": None}, False, "certificate verify failed",
            id="does-not-trust-the-ca",
        ),
    ],
)  # fmt: skip
async def test_postgres_refuses(
    secure_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str | None],
    without_password: bool,
    reason: str,
) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    url = secure_env["DATABASE_URL"]
    with pytest.raises(Exception, match=reason):  # noqa: PT011 - the message names the reason
        await _select_one(_without_password(url) if without_password else url)
