"""A real Keycloak for the test session, through deploy/local/keycloak.sh, and its admin API.

`ensure_keycloak()` uses KEYCLOAK_URL (+ KEYCLOAK_ADMIN, KEYCLOAK_ADMIN_PASSWORD) when set (an
external one, never stopped by us); otherwise it runs `keycloak.sh up` (in the run directory
and cache of deploy/local/infra.sh) and `stop_keycloak()` stops it again if this session started
it. Only a session that collected a test asking for the `keycloak` fixture starts one, and it
starts it in the background as soon as collection ends (`start_in_background()`), so the minutes
of a cold start (download, build, boot) overlap the tests that run before the first identity test.

`Realm` creates what the identity tests need through the admin REST API: realm roles (ours),
a public dashboard client (authorization code + PKCE, direct grants for the tests), a
confidential BI client (client credentials, role viewer), an audience mapper so access tokens
carry the services' audience, a user-attribute mapper for the branches claim, and users.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.common.identity.roles import ROLES
from tests.infra import REPO_ROOT

KEYCLOAK_SCRIPT = REPO_ROOT / "deploy" / "local" / "keycloak.sh"
_UP_TIMEOUT_S = 1200.0  # a first start downloads (~180 MB) and builds the distribution
AUDIENCE = "spm-monitor"
BRANCHES_CLAIM = "spm_branches"
PASSWORD = "correct-horse-battery"  # the test users' (a throwaway realm)
ADMIN_TIMEOUT_S = 120.0  # a just-started Keycloak (C1 JIT, busy cores) is slow at first

KEYCLOAK_MODULES = ("tests/accounts/test_oidc.py", "tests/common/identity/test_keycloak.py")
"""The modules whose tests use the ``keycloak`` fixture: a pytest-xdist controller sees only test
ids, and starts Keycloak when one of these is collected (conftest checks the list is whole)."""

KEYCLOAK_TIMEOUT = pytest.mark.timeout(_UP_TIMEOUT_S + 300)
"""For the modules using the ``keycloak`` fixture (``pytestmark = KEYCLOAK_TIMEOUT``): the first
test's time includes the session's Keycloak start, several minutes on a cold cache."""


@dataclass
class Keycloak:
    url: str
    admin: str
    admin_password: str
    started: bool
    startup_s: float


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(KEYCLOAK_SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"`keycloak.sh {' '.join(args)}` failed:\n{proc.stderr}{proc.stdout}")
    return proc


@dataclass
class BackgroundStart:
    """`keycloak.sh up` running beside the first tests; `ensure_keycloak()` collects it."""

    proc: subprocess.Popen[str]
    began: float
    collected: bool = False


def external_keycloak() -> bool:
    return bool(os.environ.get("KEYCLOAK_URL", "").strip())


def start_in_background() -> BackgroundStart:
    proc = subprocess.Popen(
        ["bash", str(KEYCLOAK_SCRIPT), "up"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return BackgroundStart(proc, time.monotonic())


def ensure_keycloak(background: BackgroundStart | None = None) -> Keycloak:
    url = os.environ.get("KEYCLOAK_URL", "").strip()
    if url:
        return Keycloak(
            url.rstrip("/"),
            os.environ.get("KEYCLOAK_ADMIN", "admin"),
            os.environ["KEYCLOAK_ADMIN_PASSWORD"],
            started=False,
            startup_s=0.0,
        )
    if background is None:
        background = start_in_background()
    background.collected = True
    try:
        stdout, stderr = background.proc.communicate(timeout=_UP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        background.proc.kill()
        stdout, stderr = background.proc.communicate()
    if stderr:
        sys.stderr.write(stderr)
    if background.proc.returncode != 0:
        raise RuntimeError(f"`keycloak.sh up` failed:\n{stderr}{stdout}")
    exports = {}
    for line in stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = value
    return Keycloak(
        exports["KEYCLOAK_URL"],
        exports["KEYCLOAK_ADMIN"],
        exports["KEYCLOAK_ADMIN_PASSWORD"],
        started="keycloak: started: keycloak" in stderr,
        startup_s=time.monotonic() - background.began,
    )


def stop_keycloak(keycloak: Keycloak) -> None:
    if keycloak.started:
        _run("down", timeout=120.0)


@dataclass
class Realm:
    """One throwaway realm (a unique name, so a reused Keycloak never mixes runs)."""

    keycloak: Keycloak
    name: str = field(default_factory=lambda: f"spm-{uuid.uuid4().hex[:8]}")
    bi_secret: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def issuer(self) -> str:
        return f"{self.keycloak.url}/realms/{self.name}"

    def admin(self) -> httpx.Client:
        token = httpx.post(
            f"{self.keycloak.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.keycloak.admin,
                "password": self.keycloak.admin_password,
            },
            timeout=ADMIN_TIMEOUT_S,
        )
        token.raise_for_status()
        return httpx.Client(
            base_url=f"{self.keycloak.url}/admin/realms",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=ADMIN_TIMEOUT_S,
        )

    def create(self) -> None:
        with self.admin() as api:
            _ok(api.post("", json={"realm": self.name, "enabled": True}))
            base = f"/{self.name}"
            profile = _ok(api.get(f"{base}/users/profile")).json()
            profile["unmanagedAttributePolicy"] = "ENABLED"  # the branches attribute
            _ok(api.put(f"{base}/users/profile", json=profile))
            for role in ROLES:
                _ok(api.post(f"{base}/roles", json={"name": role}))
            audience = _mapper(
                "spm-audience",
                "oidc-audience-mapper",
                {
                    "included.custom.audience": AUDIENCE,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                },
            )
            branches = _mapper(
                "spm-branches",
                "oidc-usermodel-attribute-mapper",
                {
                    "user.attribute": BRANCHES_CLAIM,
                    "claim.name": BRANCHES_CLAIM,
                    "jsonType.label": "String",
                    "multivalued": "true",
                    "access.token.claim": "true",
                    "id.token.claim": "true",
                    "userinfo.token.claim": "true",
                },
            )
            _ok(
                api.post(
                    f"{base}/clients",
                    json={
                        "clientId": "spm-dashboard",
                        "publicClient": True,
                        "standardFlowEnabled": True,
                        "directAccessGrantsEnabled": True,
                        "redirectUris": ["http://127.0.0.1:*", "http://localhost:*"],
                        "webOrigins": ["+"],
                        "attributes": {"pkce.code.challenge.method": "S256"},
                        "protocolMappers": [audience, branches],
                    },
                )
            )
            _ok(
                api.post(
                    f"{base}/clients",
                    json={
                        "clientId": "spm-bi",
                        "publicClient": False,
                        "secret": self.bi_secret,
                        "serviceAccountsEnabled": True,
                        "standardFlowEnabled": False,
                        "directAccessGrantsEnabled": False,
                        "protocolMappers": [audience],
                    },
                )
            )
            _ok(
                api.post(
                    f"{base}/clients",
                    json={  # tokens without our audience
                        "clientId": "elsewhere",
                        "publicClient": True,
                        "directAccessGrantsEnabled": True,
                        "standardFlowEnabled": False,
                    },
                )
            )
            bi = _ok(api.get(f"{base}/clients", params={"clientId": "spm-bi"})).json()[0]
            account = _ok(api.get(f"{base}/clients/{bi['id']}/service-account-user")).json()
            self._grant(api, account["id"], "viewer")

    def add_user(self, username: str, role: str, branches: list[str] | None = None) -> None:
        attributes = {BRANCHES_CLAIM: branches} if branches is not None else {}
        with self.admin() as api:
            created = _ok(
                api.post(
                    f"/{self.name}/users",
                    json={
                        "username": username,
                        "enabled": True,
                        "firstName": username.split("-")[0].title(),  # "ana-admin": Ana Tester
                        "lastName": "Tester",
                        "email": f"{username}@mfi.example",
                        "emailVerified": True,
                        "attributes": attributes,
                        "credentials": [
                            {"type": "password", "value": PASSWORD, "temporary": False}
                        ],
                    },
                )
            )
            user_id = created.headers["Location"].rsplit("/", 1)[-1]
            self._grant(api, user_id, role)

    def sign_out(self, username: str) -> None:
        """End every Keycloak session of the user (what an administrator's sign-out does)."""
        with self.admin() as api:
            found = _ok(api.get(f"/{self.name}/users", params={"username": username})).json()
            _ok(api.post(f"/{self.name}/users/{found[0]['id']}/logout"))

    def _grant(self, api: httpx.Client, user_id: str, role: str) -> None:
        representation = _ok(api.get(f"/{self.name}/roles/{role}")).json()
        _ok(api.post(f"/{self.name}/users/{user_id}/role-mappings/realm", json=[representation]))

    def add_rsa_key(self, name: str, priority: int) -> None:
        """A new signing key that outranks the others: what an operator's rotation does."""
        with self.admin() as api:
            realm = _ok(api.get(f"/{self.name}")).json()
            _ok(
                api.post(
                    f"/{self.name}/components",
                    json={
                        "name": name,
                        "providerId": "rsa-generated",
                        "providerType": "org.keycloak.keys.KeyProvider",
                        "parentId": realm["id"],
                        "config": {"priority": [str(priority)], "algorithm": ["RS256"]},
                    },
                )
            )

    def set_token_lifespan(self, seconds: int) -> None:
        with self.admin() as api:
            _ok(api.put(f"/{self.name}", json={"accessTokenLifespan": seconds}))

    def active_kid(self) -> str:
        with self.admin() as api:
            keys = _ok(api.get(f"/{self.name}/keys")).json()
        return str(keys["active"]["RS256"])

    def password_token(self, username: str, client_id: str = "spm-dashboard") -> str:
        return self._token(
            {
                "grant_type": "password",
                "client_id": client_id,
                "username": username,
                "password": PASSWORD,
                "scope": "openid",
            }
        )

    def bi_token(self) -> str:
        return self._token(
            {
                "grant_type": "client_credentials",
                "client_id": "spm-bi",
                "client_secret": self.bi_secret,
            }
        )

    def _token(self, form: dict[str, str]) -> str:
        response = httpx.post(
            f"{self.issuer}/protocol/openid-connect/token", data=form, timeout=ADMIN_TIMEOUT_S
        )
        _ok(response)
        return str(response.json()["access_token"])


def _mapper(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "protocol": "openid-connect", "protocolMapper": kind, "config": config}


def _ok(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise AssertionError(
            f"Keycloak {response.request.method} {response.request.url}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return response
