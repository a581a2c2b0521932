"""Every route of every service (the embedded mode's one port) answers a person's valid token
that lacks the route's scope with 403, and a tampered one with 401, as it does for API keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spm.devmode import build_dev_stack, free_port
from tests.common.identity.local_issuer import AUDIENCE, local_issuer
from tests.common.route_auth import assert_every_route_keyed

INGEST_ONLY = "walk-ingest-only-key"


async def test_every_route_refuses_a_person_without_its_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.common.auth import hash_key

    async with local_issuer() as issuer:
        trusted = [{"issuer": issuer.issuer, "audience": AUDIENCE}]
        monkeypatch.setenv("OIDC_ISSUERS", json.dumps(trusted))
        keys = [{"name": "ingest", "sha256": hash_key(INGEST_ONLY), "scopes": ["ingest:write"]}]
        stack = build_dev_stack(data_dir=tmp_path, port=free_port(), extra_api_keys=keys)
        nobody = issuer.token(realm_access={"roles": ["offline_access"]})  # valid, no our role
        async with stack.host_app.router.lifespan_context(stack.host_app):
            for name, app in stack.services.items():
                other = INGEST_ONLY if name != "ingest" else nobody
                walked = await assert_every_route_keyed(
                    app, wrong_scope_key=other, via=stack.app, wrong_scope_token=nobody
                )
                assert walked, name
