"""The roles table (docs/security.md "Roles") and the branch limit rule."""

from __future__ import annotations

from services.common.auth import ADMIN, SCOPES
from services.common.identity.roles import (
    ROLE_SCOPES,
    ROLES,
    branch_limit,
    scopes_for,
)


def test_every_role_maps_onto_existing_scopes() -> None:
    assert set(ROLES) == {
        "viewer",
        "branch_manager",
        "spm_officer",
        "risk_compliance",
        "administrator",
    }
    for role, scopes in ROLE_SCOPES.items():
        assert scopes, role
        assert scopes <= set(SCOPES), role


def test_who_may_do_what() -> None:
    assert "objectives:write" in scopes_for(["spm_officer"])
    assert "objectives:write" not in scopes_for(["branch_manager", "risk_compliance"])
    assert "alerts:ack" not in scopes_for(["viewer"])
    assert scopes_for(["administrator"]) == {ADMIN}
    assert not any("ingest" in s for s in scopes_for(["spm_officer", "risk_compliance"]))
    assert scopes_for(["viewer", "spm_officer"]) == scopes_for(["spm_officer"])
    assert scopes_for(["janitor", "offline_access"]) == frozenset()


def test_the_branch_limit() -> None:
    msa = frozenset({"BR-MSA"})
    assert branch_limit(frozenset({"branch_manager"}), msa) == msa
    # without a claim a branch manager sees no branch: institution-level values only
    assert branch_limit(frozenset({"branch_manager"}), None) == frozenset()
    assert branch_limit(frozenset({"viewer"}), None) is None
    assert branch_limit(frozenset({"branch_manager", "spm_officer"}), None) is None
    assert branch_limit(frozenset({"viewer"}), msa) == msa  # a claim limits whoever carries it
