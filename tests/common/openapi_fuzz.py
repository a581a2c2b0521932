"""Fuzz a service's OpenAPI document with schemathesis against the real `spm serve` process.

Each operation gets ``EXAMPLES`` generated requests (schema-valid and not), sent with an admin
key; every answer must be no 5xx and match the documented schema of its status code. Bounded so
the four services take a minute or two together. Failures are collected and reported together
(operation, check, reproducing curl), so one run shows everything it found.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.common.auth import hash_key
from tests.alerts.servers import Proc, free_port
from tests.schemas import dropped_afterwards

KEY = "fuzz-admin-key"
KEYS = json.dumps([{"name": "fuzz", "sha256": hash_key(KEY), "scopes": ["admin"]}])
EXAMPLES = 12


def fuzz_operations(app: FastAPI, base_url: str) -> list[str]:
    """Run the fuzz (blocking: schemathesis calls over HTTP); the failures found."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # a document schemathesis cannot read fails the test
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    return failures


def serve_env(kafka_bootstrap: str, postgres_url: str, **settings: str) -> dict[str, str]:
    """The environment of the fuzzed ``spm serve``: the session's Kafka and PostgreSQL and the
    service's own ``settings`` (names as the environment spells them)."""
    return {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        **settings,
    }


async def assert_fuzz_passes(
    service: str, app: FastAPI, env: dict[str, str], log_dir: Path
) -> None:
    """Fuzz ``spm serve <service>`` (``app`` gives the OpenAPI document); no failure may be found.
    The schemas ``env`` names (``*_DB_SCHEMA``) are dropped afterwards."""
    schemas = [value for name, value in env.items() if name.endswith("_DB_SCHEMA")]
    async with dropped_afterwards(env["DATABASE_URL"], *schemas):
        failures = await fuzz_service(service, app, env, log_dir)
    assert not failures, "\n\n".join(failures)


async def fuzz_service(service: str, app: FastAPI, env: dict[str, str], log_dir: Path) -> list[str]:
    """``spm serve <service>`` with ``env`` (plus the fuzz key), fuzzed; the failures."""
    port = free_port()
    proc = Proc({**env, "API_KEYS": KEYS}, port, log_dir / f"{service}.log", service=service)
    proc.start()
    try:
        await proc.ready()
        failures = await asyncio.to_thread(fuzz_operations, app, f"http://127.0.0.1:{port}")
        assert proc.proc is not None and proc.proc.poll() is None, "the server died"
        return failures
    finally:
        proc.stop()
