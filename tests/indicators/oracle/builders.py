"""Tiny hand-made canonical events for oracle tests and odd-data runs against the service."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.envelope import CanonicalEvent
from contracts.registry import event_type
from tests.indicators.oracle.generator import pid

_ids = itertools.count()
SRC = "core:test"


def ev(type_: str, source: str = SRC, id_: str | None = None, **data: Any) -> CanonicalEvent:
    full = f"spm.{type_}.v1"
    return CanonicalEvent(
        id=id_ or f"e{next(_ids)}",
        source=source,
        type=full,
        time=datetime(2025, 1, 1, tzinfo=UTC),
        data=event_type(full).model.model_validate(data),
    )


A, B, C = pid(1, 1), pid(1, 2), pid(1, 3)
D0 = date(2024, 1, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def reg(who: str, on: int, branch: str = "B1", gender: str = "female", **kw: Any) -> CanonicalEvent:
    return ev(
        "client.registered",
        client_pid=who,
        branch_id=branch,
        gender=gender,
        registered_on=day(on),
        **kw,
    )


def disb(who: str, loan: str, on: int, amount: str = "1000", **kw: Any) -> CanonicalEvent:
    base: dict[str, Any] = {"branch_id": "B1", "product_id": "P1", "currency": "KES"}
    base.update(kw)
    return ev(
        "loan.disbursed", client_pid=who, loan_id=loan, disbursed_on=day(on), amount=amount, **base
    )


def repay(who: str, loan: str, tx: str, on: int, principal: str, **kw: Any) -> CanonicalEvent:
    return ev(
        "loan.repayment",
        client_pid=who,
        loan_id=loan,
        transaction_id=tx,
        value_date=day(on),
        amount=principal,
        principal_paid=principal,
        **kw,
    )


def close(who: str, loan: str, on: int, kind: str = "repaid") -> CanonicalEvent:
    return ev("loan.closed", client_pid=who, loan_id=loan, closed_on=day(on), closure_type=kind)


def opened(cid: str, at: datetime, branch: str = "B1", category: str = "fees") -> CanonicalEvent:
    return ev(
        "complaint.opened",
        complaint_id=cid,
        branch_id=branch,
        channel="phone",
        category=category,
        opened_at=at,
    )


def resolved(cid: str, at: datetime) -> CanonicalEvent:
    return ev("complaint.resolved", complaint_id=cid, resolved_at=at, outcome="upheld")


def ts(n: int, hours: float = 0) -> datetime:
    return datetime.combine(day(n), datetime.min.time(), UTC) + timedelta(hours=hours)
