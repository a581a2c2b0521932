"""Transport security of the connections to Kafka and PostgreSQL, from the shared settings.

One home for how a client authenticates and which CA it trusts, so every Kafka client the
project creates (producers, consumers, admin clients, the transactional relay) and every
database engine connect the same way. Plain text stays the local default; production sets
``KAFKA_SECURITY_PROTOCOL=SASL_SSL`` and ``DATABASE_SSLMODE=verify-full``.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from services.common.settings import CommonSettings


def kafka_client_options(settings: CommonSettings) -> dict[str, Any]:
    """Keyword arguments for every ``AIOKafka*`` client: protocol, TLS context, SASL login."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        # hostname checked against the certificate's SANs, as with PostgreSQL's verify-full
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def database_ssl(settings: CommonSettings) -> ssl.SSLContext | bool | None:
    """asyncpg's ``ssl`` argument for ``DATABASE_SSLMODE``: None keeps the driver's default.

    ``verify-full`` checks the chain and the host name, ``verify-ca`` the chain only,
    ``require`` encrypts without checking (libpq's meanings of the same words).
    """
    mode = settings.database_sslmode
    if mode is None:
        return None
    if mode == "disable":
        return False
    if mode == "prefer":
        return None
    if mode == "require":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=settings.database_ssl_root_cert)
    context.check_hostname = mode == "verify-full"
    return context


def database_connect_args() -> dict[str, Any]:
    """asyncpg connect arguments for TLS, read from the environment when an engine is made.

    Read here rather than passed down so that every engine (services, migrations, tools) gets
    the same TLS without each caller threading settings through.
    """
    context = database_ssl(CommonSettings())
    return {} if context is None else {"ssl": context}
