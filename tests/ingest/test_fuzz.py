"""Property-based fuzzing of the HTTP API (hypothesis): whatever arrives, never a 5xx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.examples import EXAMPLES
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.ingest.conftest import auth

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

VALID = [e.input() for e in EXAMPLES.values() if e.input() is not None]

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300)
    | st.sampled_from(["", "1.0", "KES", "2025-01-01", "2025-01-01T00:00:00", "9" * 400, "-1"])
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    """A valid input event with some envelope or data fields replaced, removed or added."""
    base = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    base["id"] = draw(st.text(min_size=1, max_size=40))
    target = base if draw(st.booleans()) else base["data"]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(st.sampled_from([*target.keys(), "extra"]))
        if draw(st.booleans()):
            target.pop(name, None)
        else:
            target[name] = draw(json_value)
    return base


any_event = mutated_event() | json_value
MEDIA_TYPES = [
    "application/json",
    "application/x-ndjson",
    "application/cloudevents+json",
    "text/csv",
]
CASE_FIELDS = ["Id", "CaseNumber", "CreatedDate", "IsClosed", "ClosedDate", "Origin", "Type"]
CASE_FIELDS += ["Priority", "Status", "Client_Reference__c", "Branch_Code__c"]


@pytest.fixture
def server(ingest_settings: IngestSettings, drop_schema: None) -> Iterator[str]:
    """The app served by uvicorn in a thread (a sync client can then drive hypothesis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(ingest_settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=auth(), timeout=30) as client:
        yield client


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=any_event)
def test_single_event_never_5xx(http: httpx.Client, body: Any) -> None:
    response = http.post("/v1/events", json=body)
    assert response.status_code < 500, response.text
    assert response.status_code in (202, 403, 413, 422), response.text


@FUZZ
@given(body=st.lists(any_event, max_size=8) | json_value)
def test_batch_never_5xx(http: httpx.Client, body: Any) -> None:
    response = http.post("/v1/events/batch", json=body)
    assert response.status_code < 500, response.text


@FUZZ
@given(
    raw=st.binary(max_size=500),
    media=st.sampled_from(
        ["application/json", "application/x-ndjson", "application/cloudevents+json", "text/csv"]
    ),
)
def test_raw_bytes_never_5xx(http: httpx.Client, raw: bytes, media: str) -> None:
    for path in ("/v1/events", "/v1/events/batch", "/v1/sources/crm/complaints"):
        response = http.post(path, content=raw, headers={"Content-Type": media})
        assert response.status_code < 500, response.text


@FUZZ
@given(
    body=st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "Id",
                    "CaseNumber",
                    "CreatedDate",
                    "IsClosed",
                    "ClosedDate",
                    "Origin",
                    "Type",
                    "Priority",
                    "Status",
                    "Client_Reference__c",
                ]
            ),
            json_value,
        ),
        max_size=4,
    )
    | json_value
)
def test_crm_never_5xx(http: httpx.Client, body: Any) -> None:
    response = http.post("/v1/sources/crm/complaints", json=body)
    assert response.status_code < 500, response.text
