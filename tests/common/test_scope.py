"""Branch scope rules: which segments a caller sees and may act on, and keys that carry them."""

from __future__ import annotations

import json

import pytest

from services.common.auth import KeyRing, hash_key
from services.common.scope import DataScope, OutOfScope, branch_of
from tests.common.services import client, service_apps

INSTITUTION_LEVEL = ("all", "product:P1", "gender:female", "rural:true")


def test_only_branch_segments_belong_to_a_branch() -> None:
    assert branch_of("branch:BR-MSA") == "BR-MSA"
    assert [branch_of(s) for s in INSTITUTION_LEVEL] == [None] * 4


def test_unlimited_callers_see_and_act_on_everything() -> None:
    scope = DataScope(None)
    for segment in ("branch:X", *INSTITUTION_LEVEL):
        assert scope.sees(segment) and scope.may_act_on(segment)
    scope.check_unlimited("objective", "never raised")


@pytest.mark.parametrize("institution", [True, False])
def test_a_branch_limited_caller(institution: bool) -> None:
    scope = DataScope(frozenset({"MSA"}), institution)
    assert scope.sees("branch:MSA") and scope.may_act_on("branch:MSA")
    assert not scope.sees("branch:NBO") and not scope.may_act_on("branch:NBO")
    assert not scope.sees("branch:MSA2")  # a prefix is not the branch
    for segment in INSTITUTION_LEVEL:
        assert scope.sees(segment) is institution
        assert not scope.may_act_on(segment)  # reading is not acting
    with pytest.raises(OutOfScope) as refused:
        scope.check("branch:NBO", "query.segment")
    assert (refused.value.field, refused.value.reason) == ("query.segment", "outside your branches")
    # an institution-level alert a limited caller sees is still not theirs to act on
    with pytest.raises(OutOfScope, match="institution-level" if institution else "outside"):
        scope.check_act("all", "alert_id")
    with pytest.raises(OutOfScope):
        scope.check_unlimited("objective", "no")


def test_a_key_carries_branches_and_subject() -> None:
    ring = KeyRing.from_json(json.dumps([
        {"name": "Mary", "sha256": hash_key("k1"), "scopes": ["alerts:read"],
         "branches": ["MSA"], "subject": "idp|mary"},
        {"name": "bot", "sha256": hash_key("k2"), "scopes": ["alerts:read"]},
    ]))  # fmt: skip
    mary, bot = ring.authenticate("k1"), ring.authenticate("k2")
    assert mary is not None and bot is not None
    assert (mary.branches, mary.subject) == (frozenset({"MSA"}), "idp|mary")
    assert not mary.sees_branch("NBO") and mary.sees_branch("MSA")
    assert (bot.branches, bot.subject) == (None, None)
    with pytest.raises(ValueError, match="API_KEYS"):
        KeyRing.from_json(json.dumps([{"name": "x", "sha256": hash_key("k"), "scopes": [],
                                       "branches": ["no spaces"]}]))  # fmt: skip


@pytest.mark.parametrize("visible", [True, False])
async def test_every_service_tells_callers_the_operators_choice(
    visible: bool, unique: str, postgres_url: str, kafka_bootstrap: str
) -> None:
    """``SCOPE_INSTITUTION_LEVEL_VISIBLE`` is read by the app factory for every service (ingest
    answered ``true`` whatever it said)."""
    apps = service_apps(
        unique,
        database_url=postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        scope_institution_level_visible=visible,
    )
    for name, app in apps.items():
        async with client(app) as admin:
            me = await admin.get("/v1/me")
        assert me.status_code == 200, (name, me.text)
        assert me.json()["institution_level_visible"] is visible, name
