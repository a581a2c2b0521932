"""The services' check of the dashboard's tokens: only a valid ES256 token of the trusted issuer,
for our audience, unexpired, signed by a key of its JWKS, makes a principal; a rotated key is
fetched again without restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from services.common.identity.local_issuer import IssuerVerifier, publish_in_process
from spm.accounts.issuer import TokenIssuer, load_or_create_key
from spm.accounts.store import User

ISSUER = "http://dashboard.test:8005"
AUD = "spm-monitor"
AMINA = User("amina", "Amina Otieno", "branch_manager", ("BR-MSA",), False, None)


def _issuer(tmp_path: Path, name: str = "key.pem", url: str = ISSUER) -> TokenIssuer:
    return TokenIssuer(load_or_create_key(tmp_path / name), url, AUD, 300)


def _forged(issuer: TokenIssuer, **changes: Any) -> str:
    """A token of ``issuer``'s key with some claims changed."""
    claims = jwt.decode(issuer.token_for(AMINA), options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, issuer._key, algorithm="ES256", headers={"kid": issuer.kid})


async def test_a_valid_token_is_the_person_with_role_scopes_and_branches(tmp_path: Path) -> None:
    issuer = _issuer(tmp_path)
    publish_in_process(ISSUER, issuer.jwks())
    principal = await IssuerVerifier(ISSUER, AUD).principal(issuer.token_for(AMINA))
    assert principal is not None
    assert principal.name == "Amina Otieno" and principal.subject == "local:amina"
    assert principal.roles == {"branch_manager"} and principal.branches == {"BR-MSA"}
    assert principal.has("alerts:ack") and not principal.has("objectives:write")


async def test_a_branch_manager_without_a_branch_claim_sees_no_branch(tmp_path: Path) -> None:
    issuer = _issuer(tmp_path)
    publish_in_process(ISSUER, issuer.jwks())
    verifier = IssuerVerifier(ISSUER, AUD)
    manager = await verifier.principal(_forged(issuer, branches=None))
    assert manager is not None and manager.branches == frozenset()
    officer = await verifier.principal(_forged(issuer, branches=None, roles=["spm_officer"]))
    assert officer is not None and officer.branches is None


async def test_bad_tokens_are_refused(tmp_path: Path) -> None:
    issuer = _issuer(tmp_path)
    publish_in_process(ISSUER, issuer.jwks())
    verifier = IssuerVerifier(ISSUER, AUD)
    stranger = _issuer(tmp_path, "other.pem")
    unsigned = jwt.encode(
        jwt.decode(issuer.token_for(AMINA), options={"verify_signature": False}),
        None,
        algorithm="none",
    )
    bad = {
        "wrong audience": _forged(issuer, aud="someone-else"),
        "wrong issuer": _forged(issuer, iss="http://evil.test"),
        "expired": _forged(issuer, exp=int(time.time()) - 60),
        "no subject": _forged(issuer, sub=None),
        "unknown key": stranger.token_for(AMINA),
        "alg none": unsigned,
        "not a token": "eyJ.not.atoken",
    }
    for why, token in bad.items():
        assert await verifier.principal(token) is None, why


async def test_a_rotated_key_is_picked_up_without_restart(tmp_path: Path) -> None:
    url = "http://rotating.test"
    old = _issuer(tmp_path, "old.pem", url)
    publish_in_process(url, old.jwks())
    verifier = IssuerVerifier(url, AUD, min_refetch_s=0)
    assert await verifier.principal(old.token_for(AMINA)) is not None
    new = _issuer(tmp_path, "new.pem", url)
    assert new.kid != old.kid
    publish_in_process(url, new.jwks())
    assert await verifier.principal(new.token_for(AMINA)) is not None


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    key = load_or_create_key(path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (
        TokenIssuer(load_or_create_key(path), ISSUER, AUD, 60).kid
        == TokenIssuer(key, ISSUER, AUD, 60).kid
    )
