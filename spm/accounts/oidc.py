"""\"Sign in with <institution>\": the dashboard as an OpenID Connect client (authorization code
+ PKCE), its tokens kept on the server.

``/auth/oidc/login`` sends the browser to the provider's authorization endpoint (from its
discovery document) with a fresh ``state``, ``nonce`` and PKCE ``code_challenge`` (S256); the
three secrets travel in a short-lived HttpOnly cookie signed with the dashboard's own key (so
any replica can finish the flow and nothing is stored for a visitor who never comes back).
``/auth/oidc/callback`` checks ``state`` against that cookie, exchanges the code with the
``code_verifier``, validates the ID token with the services' JWT code (signature, issuer,
audience = our client id, expiry) and its ``nonce``, and reads who the person is from the
access token exactly as the services will (the ``OIDC_ISSUERS`` entry of the provider: roles,
branches, name). The tokens go into the session row; the browser only ever holds the session
cookie. The session bridge forwards the access token and refreshes it with the refresh token
when it is about to expire; sign-out ends the provider's session with the refresh token.

Written on httpx and PyJWT, which the services already use for bearer tokens: the flow is three
form POSTs and one redirect, and the token checks must be the services' own.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from services.common.auth import Principal, Unauthenticated
from services.common.identity.jwt import TokenVerifier
from services.common.identity.roles import ROLES
from services.common.identity.settings import TrustedIssuer
from spm.accounts.config import DashboardSettings
from spm.accounts.issuer import TokenIssuer
from spm.accounts.store import Tokens, User

log = logging.getLogger(__name__)

FLOW_COOKIE = "spm_oidc_flow"
FLOW_PATH = "/auth/oidc"
FLOW_TTL_S = 600
CALLBACK_PATH = "/auth/oidc/callback"
_FLOW_AUDIENCE = "spm-dashboard-oidc-flow"
_REFRESH_MARGIN_S = 15.0
_DISCOVERY_TTL_S = 3600.0


class OidcError(Exception):
    """The sign-in cannot go on; ``field`` names what was wrong (for the one error shape)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def needs_refresh(tokens: Tokens) -> bool:
    margin = timedelta(seconds=_REFRESH_MARGIN_S)
    return tokens.access_expires_at <= datetime.now(UTC) + margin


def _role_of(principal: Principal) -> str | None:
    """The session's one role (the page shows one): the most-privileged of the person's."""
    held = [r for r in ROLES if r in principal.roles]
    return held[-1] if held else None


class OidcClient:
    def __init__(
        self,
        settings: DashboardSettings,
        provider: TrustedIssuer,
        http: httpx.AsyncClient,
        signer: TokenIssuer,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.http = http
        self.signer = signer
        self.name = settings.dashboard_oidc_name
        self.client_id = settings.dashboard_oidc_client_id
        self.redirect_uri = settings.dashboard_oidc_redirect_url or settings.issuer + CALLBACK_PATH
        algorithms = tuple(settings.oidc_algorithms)
        common = {"algorithms": algorithms, "leeway_s": settings.oidc_leeway_s}
        self.access_tokens = TokenVerifier([provider], **common)  # type: ignore[arg-type]
        id_tokens = provider.model_copy(update={"audience": self.client_id})
        self.id_tokens = TokenVerifier([id_tokens], **common)  # type: ignore[arg-type]
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (kept an hour)."""
        if self._metadata is None or time.monotonic() - self._metadata_at > _DISCOVERY_TTL_S:
            url = self.provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                response = await self.http.get(url, timeout=10.0)
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError):
                raise OidcError("oidc", "the identity provider cannot be reached") from None
            if not isinstance(document, dict) or "authorization_endpoint" not in document:
                raise OidcError("oidc", "the identity provider's discovery document is invalid")
            self._metadata, self._metadata_at = document, time.monotonic()
        return self._metadata

    # --- the redirect out -------------------------------------------------------------------

    async def start(self) -> tuple[str, str]:
        """(the authorization URL, the signed flow cookie's value)."""
        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48))
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.settings.dashboard_oidc_scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": _challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        endpoint = str((await self.metadata())["authorization_endpoint"])
        cookie = self.signer.seal(
            {"state": flow.state, "nonce": flow.nonce, "verifier": flow.verifier},
            _FLOW_AUDIENCE,
            FLOW_TTL_S,
        )
        return f"{endpoint}?{urlencode(query)}", cookie

    def flow(self, cookie: str | None, state: str | None) -> Flow:
        """The flow the browser started, when ``state`` is the one it was sent with."""
        claims = self.signer.unseal(cookie, _FLOW_AUDIENCE) if cookie else None
        if claims is None:
            raise OidcError("state", "the sign-in took too long or began elsewhere; try again")
        if not state or not secrets.compare_digest(str(claims["state"]), state):
            raise OidcError("state", "does not match the sign-in this browser began")
        return Flow(str(claims["state"]), str(claims["nonce"]), str(claims["verifier"]))

    # --- the way back -----------------------------------------------------------------------

    async def finish(self, code: str, flow: Flow) -> tuple[User, Tokens]:
        """Exchange the code; the person and the tokens, all checked."""
        answer = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": flow.verifier,
            }
        )
        if answer is None:
            raise OidcError("code", "the identity provider refused the authorization code")
        tokens = _tokens(answer, None)
        if tokens.id_token is None:
            raise OidcError("id_token", "the identity provider sent no ID token")
        try:
            id_claims, _ = await self.id_tokens.verified_claims(tokens.id_token)
            principal = await self.access_tokens.verify(tokens.access_token)
        except Unauthenticated as exc:
            raise OidcError("id_token", exc.reason) from None
        if not secrets.compare_digest(str(id_claims.get("nonce", "")), flow.nonce):
            raise OidcError("nonce", "the ID token was not issued for this sign-in")
        if id_claims["sub"] != principal.subject:
            raise OidcError("id_token", "the ID token and the access token name different people")
        role = _role_of(principal)
        if role is None:
            raise OidcError("role", "the identity provider gives this person no role here")
        username = str(id_claims.get("preferred_username") or principal.subject)
        branches = tuple(sorted(principal.branches)) if principal.branches is not None else None
        user = User(username[:64], principal.name, role, branches, False, None, principal.subject)
        return user, tokens

    async def refresh(self, tokens: Tokens) -> Tokens | None:
        """New tokens for a session whose access token is about to expire; None when the
        provider says no (its session ended, the person was disabled): the session is over."""
        if tokens.refresh_token is None:
            return None
        answer = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )
        return None if answer is None else _tokens(answer, tokens)

    async def end_session(self, tokens: Tokens) -> None:
        """Sign-out everywhere: the provider's session ends too (so the next sign-in asks for
        the password again). Keycloak ends it on a back-channel POST of the refresh token to
        its end-session endpoint; a provider without one gets the refresh token revoked
        (RFC 7009)."""
        if tokens.refresh_token is None:
            return
        try:
            metadata = await self.metadata()
        except OidcError:
            log.warning("sign-out: the identity provider cannot be reached")
            return
        form = {**self._client_auth(), "refresh_token": tokens.refresh_token}
        endpoint = metadata.get("end_session_endpoint")
        if endpoint is None:
            endpoint = metadata.get("revocation_endpoint")
            form = {**form, "token": tokens.refresh_token, "token_type_hint": "refresh_token"}
        if endpoint is None:
            return
        try:
            response = await self.http.post(str(endpoint), data=form, timeout=10.0)
        except httpx.HTTPError:
            log.warning("sign-out: the identity provider cannot be reached")
            return
        if response.is_error:
            log.warning("sign-out: the identity provider answered %s", response.status_code)

    def _client_auth(self) -> dict[str, str]:
        form = {"client_id": self.client_id}
        secret = self.settings.dashboard_oidc_client_secret
        if secret is not None:
            form["client_secret"] = secret.get_secret_value()
        return form

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any] | None:
        endpoint = str((await self.metadata())["token_endpoint"])
        try:
            response = await self.http.post(
                endpoint, data={**form, **self._client_auth()}, timeout=10.0
            )
        except httpx.HTTPError:
            raise OidcError("oidc", "the identity provider cannot be reached") from None
        if response.status_code in (400, 401):  # invalid_grant and kin: never log the body
            log.info("the identity provider refused a %s grant", form["grant_type"])
            return None
        if response.is_error:
            raise OidcError("oidc", f"the identity provider answered {response.status_code}")
        answer = response.json()
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise OidcError("oidc", "the identity provider's token answer is invalid")
        return answer


def _tokens(answer: dict[str, Any], previous: Tokens | None) -> Tokens:
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 60.0
    refresh = answer.get("refresh_token")
    id_token = answer.get("id_token")
    return Tokens(
        access_token=str(answer["access_token"]),
        refresh_token=str(refresh) if refresh else (previous.refresh_token if previous else None),
        id_token=str(id_token) if id_token else (previous.id_token if previous else None),
        access_expires_at=datetime.now(UTC) + timedelta(seconds=lifetime),
    )
