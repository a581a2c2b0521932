"""OIDC_ISSUERS and OIDC_ALGORITHMS from the environment, and what they refuse."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.common.settings import CommonSettings


def test_issuers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    issuers = [
        {
            "issuer": "https://sso.mfi.example/realms/mfi",
            "audience": "spm-monitor",
            "roles_claim": "resource_access.spm-monitor.roles",
            "role_names": {"SPM-Officers": "spm_officer"},
        }
    ]
    monkeypatch.setenv("OIDC_ISSUERS", json.dumps(issuers))
    monkeypatch.setenv("OIDC_ALGORITHMS", '["ES256"]')
    settings = CommonSettings()
    (trusted,) = settings.oidc_issuers
    assert trusted.roles_claim == "resource_access.spm-monitor.roles"
    assert trusted.branches_claim == "spm_branches"
    assert trusted.jwks_url is None  # discovered from the issuer
    assert settings.oidc_algorithms == ["ES256"]


@pytest.mark.parametrize(
    ("name", "value", "names"),
    [
        ("OIDC_ALGORITHMS", '["HS256"]', "oidc_algorithms"),
        ("OIDC_ALGORITHMS", '["none"]', "oidc_algorithms"),
        ("OIDC_ALGORITHMS", "[]", "oidc_algorithms"),
        ("OIDC_ISSUERS", '[{"issuer": "https://x"}]', "audience"),
        ("OIDC_ISSUERS", '[{"issuer": "x", "audience": "a", "role_names": {"r": "boss"}}]', "boss"),
        ("OIDC_ISSUERS", '[{"issuer": "x", "audience": "a", "typo": 1}]', "typo"),
    ],
)
def test_what_cannot_be_configured(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, names: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=names):
        CommonSettings()
