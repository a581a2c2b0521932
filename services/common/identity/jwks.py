"""The signing keys of one trusted issuer, cached, and refetched when a token names a new one.

A provider rotates keys by publishing the new one in its JWKS and signing with it; the first
token with an unknown ``kid`` triggers a refetch, so a rotated key works without a restart. The
refetch is rate-limited (at most one per ``min_refresh_s``, failed ones included), so tokens
with made-up ``kid`` values cannot turn the services into a flood of requests to the provider.
Fetching is async (httpx) and serialised by a lock: requests waiting for the same refetch share
it, and the event loop never blocks (the request guard authenticates on the hot path).

An issuer living in the same process (the embedded mode's dashboard, which tests run over ASGI
without a port) publishes its JWKS with :func:`publish_in_process` under its ``jwks_url``; a
refetch of that URL reads the published document instead of making an HTTP request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

from services.common.identity.settings import TrustedIssuer

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"

_in_process: dict[str, dict[str, Any]] = {}


def publish_in_process(jwks_url: str, jwks: dict[str, Any]) -> None:
    """Serve ``jwks`` for ``jwks_url`` without HTTP (an issuer in this very process)."""
    _in_process[jwks_url] = jwks


class IssuerKeys:
    """``key(kid)``: the issuer's public key with that id, or None once a refetch did not find
    it either."""

    def __init__(self, issuer: TrustedIssuer, *, min_refresh_s: float, timeout_s: float) -> None:
        self.issuer = issuer
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self._jwks_url = str(issuer.jwks_url) if issuer.jwks_url else None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the JWKS was requested (tests, metrics)

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        found = self._find(kid)
        if found is not None or (not self._may_refresh() and not self._lock.locked()):
            return found
        # a fetch under way (the page's first requests come together): wait for its keys
        async with self._lock:
            found = self._find(kid)  # a request we waited for may have fetched it
            if found is None and self._may_refresh():
                await self._refresh()
                found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:  # a provider with one key may omit the kid
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or (
            time.monotonic() - self._fetched_at >= self.min_refresh_s
        )

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()  # before: a failing provider is asked no more often
        self.fetches += 1
        published = _in_process.get(self._jwks_url) if self._jwks_url else None
        if published is not None:
            self._keys = _signing_keys(published)
            return
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                if self._jwks_url is None:
                    self._jwks_url = await _discover_jwks_url(client, self.issuer.issuer)
                response = await client.get(self._jwks_url)
                response.raise_for_status()
                self._keys = _signing_keys(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # the keys we had stay: a provider's hiccup must not sign everyone out
            log.warning(
                "could not fetch the signing keys of issuer %s: %s", self.issuer.issuer, exc
            )
            return
        log.info("fetched %d signing keys of issuer %s", len(self._keys), self.issuer.issuer)


async def _discover_jwks_url(client: httpx.AsyncClient, issuer: str) -> str:
    response = await client.get(issuer.rstrip("/") + DISCOVERY_PATH)
    response.raise_for_status()
    url = response.json().get("jwks_uri")
    if not isinstance(url, str) or not url:
        raise ValueError(f"{issuer}{DISCOVERY_PATH} names no jwks_uri")
    return url


def _signing_keys(document: Any) -> dict[str | None, jwt.PyJWK]:
    """The keys of a JWKS document usable for signatures (``use: enc`` keys and key types
    PyJWT does not know are left out)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS document has no keys list")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        keys[entry.get("kid")] = key
    return keys
