"""Known answers for the keyed pseudonyms: ``HMAC-SHA256(pepper, source ␟ kind ␟ raw id)``.

The expected values are literals, computed once outside the code under test (HMAC built by hand
from ``hashlib.sha256`` with the RFC 2104 ipad/opad construction, and cross-checked with
``hmac.new``), so that replacing the keyed hash with a plain one, or dropping the source or the
kind from the message, fails here. If the construction is ever changed on purpose (for instance
how the source is encoded), recompute these literals the same way and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from services.ingest.errors import IngestError
from services.ingest.pseudonym import Pseudonymiser
from tests.ingest.conftest import PEPPER as INGEST_PEPPER
from tests.ingest.conftest import TopicTail, auth, event, of_source

PEPPER = "kat-pepper-0123456789abcdef012345"
OTHER_PEPPER = "kat-pepper-9876543210fedcba987654"
SOURCE = "fineract:default"
OTHER_SOURCE = "crm:salesforce"
RAW_ID = "1042"

# HMAC-SHA256(b"kat-pepper-0123456789abcdef012345", b"fineract:default\x1fclient\x1f1042")
CLIENT_1042 = "bfd050071f6cdf2925190e783f54854615d6bdecb1dbaee88316c4ce7b23f878"
# the same with the other pepper
CLIENT_1042_OTHER_PEPPER = "7521154f1c249a7c2e19f3ff85b06149893a71bd1f0bb31cc6f261b3203a273f"
# the same with source "crm:salesforce"
CLIENT_1042_OTHER_SOURCE = "149c70d0b527a9e0ec6cfe4f8d764ce8f282338aa21929a8af96a74ed95a3318"
# the same with kind "officer"
OFFICER_1042 = "9253d5a35b50422c4b938a7f7ea8aa1e3f1988170c7a115d43e0fcbf43fdee9d"


def test_known_answers() -> None:
    assert Pseudonymiser(PEPPER).client_pid(SOURCE, RAW_ID) == CLIENT_1042
    assert Pseudonymiser(PEPPER).pseudonym(SOURCE, "client", RAW_ID) == CLIENT_1042
    assert Pseudonymiser(OTHER_PEPPER).client_pid(SOURCE, RAW_ID) == CLIENT_1042_OTHER_PEPPER
    assert Pseudonymiser(PEPPER).client_pid(OTHER_SOURCE, RAW_ID) == CLIENT_1042_OTHER_SOURCE
    assert Pseudonymiser(PEPPER).officer_pid(SOURCE, RAW_ID) == OFFICER_1042


def test_pepper_source_and_kind_each_change_the_pseudonym() -> None:
    pseudonyms = {
        Pseudonymiser(PEPPER).client_pid(SOURCE, RAW_ID),
        Pseudonymiser(OTHER_PEPPER).client_pid(SOURCE, RAW_ID),
        Pseudonymiser(PEPPER).client_pid(OTHER_SOURCE, RAW_ID),
        Pseudonymiser(PEPPER).officer_pid(SOURCE, RAW_ID),
        Pseudonymiser(PEPPER).client_pid(SOURCE, "1043"),
    }
    assert len(pseudonyms) == 5


def test_not_an_unkeyed_hash_of_anything_guessable() -> None:
    """Whoever holds a list of ids but not the pepper cannot recompute a pseudonym."""
    pid = Pseudonymiser(PEPPER).client_pid(SOURCE, RAW_ID)
    guesses = [RAW_ID, f"{SOURCE}\x1fclient\x1f{RAW_ID}", f"{SOURCE}:{RAW_ID}", f"client:{RAW_ID}"]
    for guess in guesses:
        assert pid not in {hashlib.sha256(guess.encode()).hexdigest(), guess}


def test_a_short_pepper_is_refused() -> None:
    with pytest.raises(IngestError, match="PSEUDONYM_PEPPER"):
        Pseudonymiser("too-short")


# Through the service, with the ingest tests' pepper (``tests.ingest.conftest.PEPPER``):
# HMAC-SHA256(b"test-pepper-0123456789abcdef0123", b"kat:http\x1fclient\x1f1042"),
# and the same with b"...officer\x1f77"
HTTP_SOURCE = "kat:http"
HTTP_CLIENT_1042 = "1db76992594acc234d7fbd19292160f1ece26c71194601386d04f793014c5316"
HTTP_OFFICER_77 = "e1e961ed11cb89c1ba0d68c7ed396b2c29e9180a3fab7cbb8690a1b95302cc06"


@pytest.mark.kafka
@pytest.mark.postgres
async def test_known_answers_on_the_topic(
    client: httpx.AsyncClient, tail: TopicTail, unique: str
) -> None:
    """What leaves ingest carries the known pseudonyms (no other path derives them)."""
    # the literals above were computed with this pepper
    assert INGEST_PEPPER == "test-pepper-0123456789abcdef0123"
    data = {
        "loan_id": "L1",
        "client_id": "1042",
        "officer_id": "77",
        "branch_id": "BR1",
        "product_id": "P1",
        "amount": "1000",
        "currency": "KES",
        "disbursed_on": "2025-01-03",
    }
    body = event("spm.loan.disbursed.v1", f"kat-{unique}", HTTP_SOURCE, data)
    response = await client.post("/v1/events", json=body, headers=auth())
    assert response.status_code == 202, response.text
    records = [
        r
        for r in of_source(await tail.read(), HTTP_SOURCE)
        if r.headers["ce_id"] == body["id"].encode()
    ]
    assert len(records) == 1
    published = json.loads(records[0].value or b"")
    assert published["client_pid"] == HTTP_CLIENT_1042
    assert published["officer_pid"] == HTTP_OFFICER_77
    assert records[0].key == HTTP_CLIENT_1042.encode()
