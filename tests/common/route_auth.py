"""Walk every route of an app and check that it refuses a missing key and a key without its scope.

Each service's tests call :func:`assert_every_route_keyed` on the running app, so a route added
without ``require(...)`` (or one whose check is removed) fails a test whatever its path. The only
routes answered without a key are listed in :data:`PUBLIC`: health, readiness, metrics and the
API documentation (each service's own tests check what they answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

PUBLIC = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
"""Routes every service answers without a key. Nothing else may be added here."""

ANY_KEY = frozenset({"/v1/me"})
"""Routes every known key may call, whatever its scopes (the caller asking about themselves):
401 without a key, 200 with the wrong-scope key."""

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def keyed_requests(app: FastAPI, public: Iterable[str] = PUBLIC) -> list[tuple[str, str]]:
    """``(method, path)`` for every route outside ``public``, path parameters filled in."""
    exempt = set(public)
    requests: list[tuple[str, str]] = []
    for route in _leaves(app.routes):
        assert hasattr(route, "path_format"), f"unexpected route {route!r} (a mount?)"
        if route.path in exempt:
            continue
        path = route.path_format.format(**dict.fromkeys(route.param_convertors, "1"))
        requests.extend((method, path) for method in sorted(route.methods or ()))
    assert requests, "no routes found"
    return requests


def _leaves(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes with their full paths: FastAPI keeps included routers as lazy nodes, expanded by
    ``effective_candidates()`` (the pinned FastAPI's only way to list them with prefixes)."""
    for route in routes:
        expand = getattr(route, "effective_candidates", None)
        if expand is None:
            yield route
        else:
            yield from _leaves(expand())


async def assert_every_route_keyed(
    app: FastAPI,
    *,
    wrong_scope_key: str,
    public: Iterable[str] = PUBLIC,
    via: ASGIApp | None = None,
    wrong_scope_token: str | None = None,
) -> list[tuple[str, str]]:
    """401 without a key or with an unknown key, 403 with ``wrong_scope_key``; returns the
    requests made (so a caller can check the walk covered the routes it expects). ``via``: send
    the requests through this ASGI app instead (the embedded mode's path dispatcher).
    ``wrong_scope_token``: a person's valid bearer JWT without the routes' scopes, also 403."""
    requests = keyed_requests(app, public)
    failures: list[str] = []
    transport = httpx.ASGITransport(app=via or app)  # a client with no default headers
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for method, path in requests:
            await _probe(client, method, path, wrong_scope_key, failures)
            if wrong_scope_token is not None:
                await _probe(client, method, path, wrong_scope_token, failures)
    assert not failures, "routes answering without the right key:\n" + "\n".join(failures)
    return requests


async def _probe(
    client: httpx.AsyncClient, method: str, path: str, wrong_scope_key: str, failures: list[str]
) -> None:
    body: dict[str, object] | None = {} if method in _BODY_METHODS else None
    for what, headers, expected in (
        ("no key", {}, 401),
        ("unknown key", {"Authorization": "Bearer not-a-configured-key"}, 401),
        (
            "key without the scope",
            {"Authorization": f"Bearer {wrong_scope_key}"},
            200 if path in ANY_KEY else 403,
        ),
    ):
        response = await client.request(method, path, headers=headers, json=body)
        if response.status_code != expected:
            failures.append(f"{method} {path} with {what}: {response.status_code}, not {expected}")
