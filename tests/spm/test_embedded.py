"""The embedded mode keeps every key check: each service's routes through the one shared port,
and the host's own API (the demo mailbox). Only the dashboard's static page, its assets and its
config (which hold no data: the page calls the APIs with the user's key) are public."""

from __future__ import annotations

from pathlib import Path

from services.common.auth import hash_key
from spm.accounts.routes import PUBLIC_PATHS, SESSION_PATHS
from spm.devmode import build_dev_stack, free_port
from tests.common.route_auth import PUBLIC, assert_every_route_keyed

INGEST_ONLY = "embedded-ingest-only-key"
READ_ALERTS_ONLY = "embedded-alerts-reader-key"
DASHBOARD_PAGE = frozenset(
    {"/", "/dashboard", "/dashboard/", "/dashboard/config.json", "/dashboard/assets/{name}"}
)


async def test_every_route_needs_its_key(tmp_path: Path) -> None:
    keys = [
        {"name": "ingest", "sha256": hash_key(INGEST_ONLY), "scopes": ["ingest:write"]},
        {"name": "reader", "sha256": hash_key(READ_ALERTS_ONLY), "scopes": ["alerts:read"]},
    ]
    stack = build_dev_stack(data_dir=tmp_path, port=free_port(), extra_api_keys=keys)
    async with stack.host_app.router.lifespan_context(stack.host_app):
        walked = await assert_every_route_keyed(
            stack.host_app,
            wrong_scope_key=INGEST_ONLY,
            public=PUBLIC | DASHBOARD_PAGE | PUBLIC_PATHS | SESSION_PATHS,
        )
        assert ("GET", "/v1/demo/mail") in walked
        assert ("GET", "/v1/report") in walked
        for name, app in stack.services.items():
            other = READ_ALERTS_ONLY if name == "ingest" else INGEST_ONLY
            walked = await assert_every_route_keyed(app, wrong_scope_key=other, via=stack.app)
            assert walked, name
