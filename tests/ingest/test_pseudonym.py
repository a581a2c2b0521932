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

PEPPER = "kat-pepper-0123456789"
OTHER_PEPPER = "kat-pepper-9876543210"
SOURCE = "fineract:default"
OTHER_SOURCE = "crm:salesforce"
RAW_ID = "1042"

# HMAC-SHA256(b"kat-pepper-0123456789", b"fineract:default\x1fclient\x1f1042")
CLIENT_1042 = "e088662e311b252f9e7b7a0f6d89b5377219ddaf6b0dc85651724d0869fb1a52"
# the same with the other pepper
CLIENT_1042_OTHER_PEPPER = "89b1932a9b92c221c60545df77ecf27deda64b7219f480d770a2102d5e111e3c"
# the same with source "crm:salesforce"
CLIENT_1042_OTHER_SOURCE = "ad1e2d368180188564c8153c6afc3599d8dddcaf49605926de541e16e41c8a38"
# the same with kind "officer"
OFFICER_1042 = "5844b2c96ca6ad2c391d5d8cde12b039e819ce210a868adf147ddf445a7af87b"


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
# HMAC-SHA256(b"test-pepper-0123456789abcdef", b"kat:http\x1fclient\x1f1042") and "...officer...77"
HTTP_SOURCE = "kat:http"
HTTP_CLIENT_1042 = "0149efd34f3bb54a15b96a572560bad9c8b9e2abc562429d5049fc28e95d1a46"
HTTP_OFFICER_77 = "10bd323100af3a29921f2ed3f07b0cc144754d939779b65bddd3f8074100cbfd"


@pytest.mark.kafka
@pytest.mark.postgres
async def test_known_answers_on_the_topic(
    client: httpx.AsyncClient, tail: TopicTail, unique: str
) -> None:
    """What leaves ingest carries the known pseudonyms (no other path derives them)."""
    assert (
        INGEST_PEPPER == "test-pepper-0123456789abcdef"
    )  # the literals above were computed with it
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
