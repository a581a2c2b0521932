"""Transport settings: what every Kafka client and database engine is given, and settings that
cannot work refused at start-up (the connections themselves: tests/e2e/test_secure_transport.py)."""

from __future__ import annotations

import ssl

import pytest
from pydantic import ValidationError

from services.common.bus.kafka import min_insync, replication_for
from services.common.settings import CommonSettings
from services.common.transport import database_ssl, kafka_client_options


def test_plain_text_is_the_default() -> None:
    settings = CommonSettings()
    assert kafka_client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert database_ssl(settings) is None


def test_sasl_ssl_gives_every_client_the_login_and_a_verifying_context() -> None:
    settings = CommonSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="spm",
        kafka_sasl_password="s3cret",
    )
    options = kafka_client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("spm", "s3cret")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_without_credentials_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username and kafka_sasl_password"):
        CommonSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="spm")


@pytest.mark.parametrize(
    ("mode", "verify", "hostname"),
    [("verify-full", ssl.CERT_REQUIRED, True), ("verify-ca", ssl.CERT_REQUIRED, False),
     ("require", ssl.CERT_NONE, False)],
)  # fmt: skip
def test_database_sslmode_as_libpq_means_it(
    mode: str, verify: ssl.VerifyMode, hostname: bool
) -> None:
    context = database_ssl(CommonSettings(database_sslmode=mode))
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, hostname)


def test_database_sslmode_disable_turns_tls_off() -> None:
    assert database_ssl(CommonSettings(database_sslmode="disable")) is False


@pytest.mark.parametrize(
    ("brokers", "replicas", "insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)]
)
def test_replication_follows_the_cluster_size(brokers: int, replicas: int, insync: int) -> None:
    assert (replication_for(brokers), min_insync(replication_for(brokers))) == (replicas, insync)
