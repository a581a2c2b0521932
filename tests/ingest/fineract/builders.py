"""Fineract messages built from scratch (no fixture files): the payload fields the adapter reads,
encoded by the project's own Avro encoder (``helpers.FineractEvent``) with the shipped schemas."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from tests.ingest.fineract.helpers import FineractEvent

LOAN_ACCOUNT = "org.apache.fineract.avro.loan.v1.LoanAccountDataV1"
LOAN_TRANSACTION = "org.apache.fineract.avro.loan.v1.LoanTransactionDataV1"
CLIENT = "org.apache.fineract.avro.client.v1.ClientDataV1"
KES = {"code": "KES", "name": "Kenyan Shilling", "decimalPlaces": 2}
WRITE_OFF_TYPE = {"id": 6, "code": "loanTransactionType.writeOff", "value": "Write-Off"}
REPAYMENT_TYPE = {"id": 2, "code": "loanTransactionType.repayment", "value": "Repayment"}
_STATUS = {
    300: ("loanStatusType.active", "active"),
    200: ("loanStatusType.approved", "waitingForDisbursal"),
    601: ("loanStatusType.closed.written.off", "closedWrittenOff"),
}


def message(
    n: int,
    type_: str,
    schema: str,
    payload: dict[str, Any],
    *,
    key: int,
    business_date: str,
    category: str = "Loan",
) -> FineractEvent:
    """One Fineract message: envelope id ``n`` (per-aggregate order), a fresh idempotency key."""
    envelope = {
        "id": n,
        "source": "3a8a1b0e-6f51-4d0c-9a55-1f1c0c1d2e3f",
        "type": type_,
        "category": category,
        "createdAt": f"{business_date}T10:00:00.000000",
        "businessDate": business_date,
        "tenantId": "default",
        "idempotencyKey": str(uuid.uuid4()),
        "dataschema": schema,
    }
    return FineractEvent(key, envelope, type_, payload)


def client(n: int, client_id: int, day: str, *, office: int = 2) -> FineractEvent:
    payload = {
        "id": client_id,
        "officeId": office,
        "gender": {"id": 15, "name": "Female", "active": True, "mandatory": False},
        "activationDate": day,
    }
    return message(
        n,
        "ClientCreateBusinessEvent",
        CLIENT,
        payload,
        key=client_id,
        business_date=day,
        category="Client",
    )


def loan_account(
    loan_id: int,
    client_id: int,
    *,
    amount: str,
    disbursed_on: str,
    status: int = 300,
    office: int = 2,
    product: int = 4,
) -> dict[str, Any]:
    code, flag = _STATUS[status]
    return {
        "id": loan_id,
        "clientId": client_id,
        "clientOfficeId": office,
        "loanProductId": product,
        "loanCounter": 1,
        "principal": Decimal(amount),
        "status": {"id": status, "code": code, "value": flag, flag: True},
        "timeline": {"actualDisbursementDate": disbursed_on},
        "summary": {"currency": KES, "principalDisbursed": Decimal(amount)},
    }


def loan_event(n: int, type_: str, account: dict[str, Any], *, business_date: str) -> FineractEvent:
    return message(n, type_, LOAN_ACCOUNT, account, key=account["id"], business_date=business_date)


def transaction(
    loan_id: int,
    txn_id: int,
    *,
    type_: dict[str, Any],
    day: str,
    amount: str,
    principal: str,
    reversed_on: str | None = None,
) -> dict[str, Any]:
    return {
        "id": txn_id,
        "loanId": loan_id,
        "type": type_,
        "date": day,
        "currency": KES,
        "amount": Decimal(amount),
        "principalPortion": Decimal(principal),
        "reversed": reversed_on is not None,
        "reversedOnDate": reversed_on,
    }


def transaction_event(
    n: int, type_: str, txn: dict[str, Any], *, business_date: str
) -> FineractEvent:
    return message(n, type_, LOAN_TRANSACTION, txn, key=txn["loanId"], business_date=business_date)
