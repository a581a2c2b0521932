"""The committed Fineract samples are exactly what their generator writes today."""

from __future__ import annotations

from tests.fixtures.fineract.generate import SAMPLES, render
from tests.ingest.fineract.helpers import FIXTURES, manifest

REGENERATE = "regenerate: .venv/bin/python -m tests.fixtures.fineract.generate"


def test_committed_samples_equal_what_the_generator_writes() -> None:
    assert SAMPLES == FIXTURES / "samples"
    expected = render()
    committed = {p.name: p.read_bytes() for p in SAMPLES.iterdir() if p.is_file()}
    assert sorted(committed) == sorted(expected), REGENERATE
    for name, data in expected.items():
        assert committed[name] == data, f"{name} differs; {REGENERATE}"


def test_the_samples_cover_a_client_a_loan_its_transactions_and_a_bulk_message() -> None:
    types = [e["envelope"]["type"] for e in manifest()]
    assert types == [
        "ClientCreateBusinessEvent",
        "ClientActivateBusinessEvent",
        "LoanDisbursalBusinessEvent",
        "LoanDisbursalTransactionBusinessEvent",
        "LoanTransactionMakeRepaymentPostBusinessEvent",
        "BulkBusinessEvent",
    ]
    assert {e["kafka_key_long"] for e in manifest()} == {1042, 5310}
