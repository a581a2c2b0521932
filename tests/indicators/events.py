"""Small builders of canonical events for hand-computed scenarios."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime
from typing import Any

from contracts.envelope import CanonicalEvent, to_kafka
from contracts.registry import event_type
from services.common.bus import Message

_ids = itertools.count(1)
SOURCE = "test:mfi"


def pid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def d(text: str) -> date:
    return date.fromisoformat(text)


def event(
    type_: str, data: dict[str, Any], *, id_: str | None = None, source: str = SOURCE
) -> CanonicalEvent:
    model = event_type(type_).model
    return CanonicalEvent(
        id=id_ or f"e{next(_ids)}",
        source=source,
        type=type_,
        time=datetime(2024, 1, 1, tzinfo=UTC),
        data=model.model_validate(data),
    )


def message(e: CanonicalEvent, suffix: str = "") -> Message:
    r = to_kafka(e)
    return Message(r.topic + suffix, r.value, r.key, tuple(r.headers))


def reg(
    name: str,
    day: str,
    branch: str = "B1",
    gender: str = "female",
    rural: bool | None = True,
    **kw: Any,
) -> CanonicalEvent:
    data = {
        "client_pid": pid(name),
        "branch_id": branch,
        "gender": gender,
        "rural": rural,
        "registered_on": day,
    }
    return event("spm.client.registered.v1", data, **kw)


def exit_(
    name: str, day: str, exit_type: str = "voluntary", reason: str | None = None, **kw: Any
) -> CanonicalEvent:
    data = {
        "client_pid": pid(name),
        "exited_on": day,
        "exit_type": exit_type,
        "reason_code": reason,
    }
    return event("spm.client.exited.v1", data, **kw)


def assess(
    name: str, day: str, likelihood: str, poverty_line: str = "national", **kw: Any
) -> CanonicalEvent:
    data = {
        "client_pid": pid(name),
        "tool": "ppi-ke-2020",
        "poverty_line": poverty_line,
        "likelihood": likelihood,
        "assessed_on": day,
    }
    return event("spm.poverty.assessed.v1", data, **kw)


def disb(
    loan: str,
    name: str,
    day: str,
    amount: str,
    branch: str = "B1",
    product: str = "P1",
    **extra: Any,
) -> CanonicalEvent:
    kw = {k: extra.pop(k) for k in ("id_", "source") if k in extra}
    data = {
        "loan_id": loan,
        "client_pid": pid(name),
        "branch_id": branch,
        "product_id": product,
        "amount": amount,
        "currency": "KES",
        "disbursed_on": day,
        **extra,
    }
    return event("spm.loan.disbursed.v1", data, **kw)


def repay(loan: str, name: str, tx: str, day: str, principal: str, **kw: Any) -> CanonicalEvent:
    data = {
        "loan_id": loan,
        "client_pid": pid(name),
        "transaction_id": tx,
        "value_date": day,
        "amount": principal,
        "principal_paid": principal,
    }
    return event("spm.loan.repayment.v1", data, **kw)


def reverse(loan: str, name: str, tx: str, day: str, **kw: Any) -> CanonicalEvent:
    data = {"loan_id": loan, "client_pid": pid(name), "transaction_id": tx, "reversed_on": day}
    return event("spm.loan.transaction_reversed.v1", data, **kw)


def dpd(loan: str, name: str, as_of: str, days: int, **kw: Any) -> CanonicalEvent:
    data = {"loan_id": loan, "client_pid": pid(name), "as_of": as_of, "days_past_due": days}
    return event("spm.loan.delinquency.v1", data, **kw)


def writeoff(loan: str, name: str, day: str, principal: str, **kw: Any) -> CanonicalEvent:
    data = {
        "loan_id": loan,
        "client_pid": pid(name),
        "principal_written_off": principal,
        "written_off_on": day,
    }
    return event("spm.loan.written_off.v1", data, **kw)


def close(loan: str, name: str, day: str, closure: str = "repaid", **kw: Any) -> CanonicalEvent:
    data = {"loan_id": loan, "client_pid": pid(name), "closed_on": day, "closure_type": closure}
    return event("spm.loan.closed.v1", data, **kw)


def copen(
    cid: str, at: str, branch: str = "B1", category: str = "service_quality", **kw: Any
) -> CanonicalEvent:
    data = {
        "complaint_id": cid,
        "branch_id": branch,
        "channel": "phone",
        "category": category,
        "opened_at": at,
    }
    return event("spm.complaint.opened.v1", data, **kw)


def cresolve(cid: str, at: str, **kw: Any) -> CanonicalEvent:
    data = {"complaint_id": cid, "resolved_at": at, "outcome": "upheld"}
    return event("spm.complaint.resolved.v1", data, **kw)
