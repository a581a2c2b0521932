"""An operator-set allow-list of recipient domains (OBJECTIVES_RECIPIENT_DOMAINS), checked when a
target is saved: otherwise any objectives writer could have alerts mailed to anyone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.objectives.app import create_app
from services.objectives.config import ObjectivesSettings
from tests.objectives.conftest import KEYS, drop_schema, make_settings, objective, target

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def alice(postgres_url: str, kafka_bootstrap: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(postgres_url, kafka_bootstrap).model_copy(
        update={"objectives_recipient_domains": ["example-mfi.co.ke", "example.org"]}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        headers = {"Authorization": f"Bearer {KEYS['alice'][0]}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://objectives", headers=headers
        ) as client:
            yield client
    await drop_schema(settings)


def _body(*notify: str) -> dict[str, Any]:
    return objective(f"r-{uuid.uuid4().hex[:8]}", target(notify=list(notify)))


async def test_recipients_outside_the_allowed_domains_are_refused(
    alice: httpx.AsyncClient,
) -> None:
    r = await alice.post("/v1/objectives", json=_body("ops@example.org", "x@elsewhere.net"))
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert list(errors) == ["targets.0.notify.1"]
    assert "elsewhere.net" in errors["targets.0.notify.1"]
    # a sub-domain is another domain; routes (no @) are the operator's own configuration
    r = await alice.post("/v1/objectives", json=_body("ops@mail.example.org"))
    assert r.status_code == 422
    ok = await alice.post("/v1/objectives", json=_body("Ops@Example-MFI.co.ke", "management"))
    assert ok.status_code == 201, ok.text
    # the check applies to changes too
    objective_id, version = ok.json()["id"], ok.json()["version"]
    changed = {
        "targets": [{**target(notify=["x@elsewhere.net"]), "id": ok.json()["targets"][0]["id"]}],
        "version": version,
        "reason": "widen",
    }
    r = await alice.patch(f"/v1/objectives/{objective_id}", json=changed)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["targets.0.notify.0"]


def test_the_allow_list_holds_domain_names() -> None:
    settings = ObjectivesSettings(objectives_recipient_domains=[" Example.ORG "])
    assert settings.objectives_recipient_domains == ["example.org"]
    with pytest.raises(ValidationError, match="not domain names"):
        ObjectivesSettings(objectives_recipient_domains=["example.org,evil.net"])
