"""Fineract business events -> contract v1 events in their *input* form (raw, scoped ids).

Pure functions: the consumer hands in the loans it knows, and gets back the events, the loan
rows to remember and whether the event must wait for its loan. Pseudonymisation and contract
validation happen afterwards, in the ingest pipeline's step, so this module never sees a pid.

Identity: every canonical event's ``source`` is ``fineract:<tenant>`` and its ``id`` is the
envelope's ``idempotencyKey`` (plus ``#<bulk item>`` and ``/<n>`` when one message yields several
events), so a redelivered message yields the very same ``(source, id)`` keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from services.ingest.fineract.avro import Envelope, Item
from services.ingest.fineract.errors import UnmappableEvent

SOURCE_PREFIX = "fineract"

CLIENT_REGISTRATION = frozenset({"ClientCreateBusinessEvent", "ClientActivateBusinessEvent"})
DISBURSAL = "LoanDisbursalBusinessEvent"
UNDO_DISBURSAL = "LoanUndoDisbursalBusinessEvent"
"""Every disbursal of the loan undone (it goes back to approved)."""
UNDO_LAST_DISBURSAL = "LoanUndoLastDisbursalBusinessEvent"
"""The latest tranche undone; earlier ones stay."""
MONEY_IN = frozenset(
    {
        "LoanTransactionMakeRepaymentPostBusinessEvent",
        "LoanTransactionDownPaymentPostBusinessEvent",
        "LoanTransactionRecoveryPaymentPostBusinessEvent",
        "LoanChargePaymentPostBusinessEvent",
        "LoanForeClosurePostBusinessEvent",
        "LoanTransactionGoodwillCreditPostBusinessEvent",
        "LoanTransactionMerchantIssuedRefundPostBusinessEvent",
        "LoanTransactionPayoutRefundPostBusinessEvent",
    }
)
ADJUSTMENT = "LoanAdjustTransactionBusinessEvent"
DELINQUENCY = "LoanDelinquencyRangeChangeBusinessEvent"
WRITE_OFF = "LoanWrittenOffPostBusinessEvent"
UNDO_WRITE_OFF = "LoanUndoWrittenOffBusinessEvent"
CLOSURE = frozenset({"LoanCloseBusinessEvent", "LoanStatusChangedBusinessEvent"})
LOAN_ACCOUNT_SCHEMA = "org.apache.fineract.avro.loan.v1.LoanAccountDataV1"

# LoanTransactionEnumDataV1 ids of money coming in (repayment, at disbursement, recovery, charge
# payment, merchant refund, payout refund, goodwill credit, down payment).
MONEY_IN_TXN_TYPES = frozenset({2, 5, 8, 17, 18, 19, 20, 28})
# LoanStatusEnumDataV1 flag -> closure type
_CLOSURE_FLAGS = (
    ("closedObligationsMet", "repaid"),
    ("closedWrittenOff", "written_off"),
    ("closedRescheduled", "rescheduled"),
)
_CLOSED_CODES = {600: "repaid", 601: "written_off", 602: "rescheduled"}
_DAYS_PER_MONTH = Decimal("30.436875")

DEFAULT_GENDER_MAP: dict[str, str] = {
    "female": "female",
    "f": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "other": "other",
}


@dataclass(frozen=True, slots=True)
class LoanInfo:
    """What transaction and arrears payloads lack: who borrowed, where, which product."""

    client_id: int
    branch_id: str | None
    product_id: str | None
    currency: str | None
    loan_cycle: int | None
    disbursals: tuple[str, ...] = ()
    """Transaction ids of the disbursals published and not undone, oldest first: what an undo
    reverses (Fineract's disbursal event carries no transaction id, so the adapter gives it one)."""


@dataclass(frozen=True, slots=True)
class InputEvent:
    """A contract v1 event in the input form (structured CloudEvent, raw client/officer ids)."""

    id: str
    source: str
    type: str
    time: datetime
    data: dict[str, Any]
    once_key: str | None = None
    """Emit at most once per tenant under this key (client registration, loan closure)."""

    def structured(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "data": self.data,
        }


@dataclass(slots=True)
class MapResult:
    events: list[InputEvent] = field(default_factory=list)
    loans: dict[int, LoanInfo] = field(default_factory=dict)
    """Loan rows to upsert (from LoanAccountDataV1 payloads)."""
    waiting_for_loan: int | None = None
    """Set when the event needs a loan not yet known: park it, retry when the loan appears."""
    ignored: bool = False


@dataclass(frozen=True, slots=True)
class MapperConfig:
    gender_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GENDER_MAP))


def source_of(tenant: str) -> str:
    return f"{SOURCE_PREFIX}:{tenant}"


def scoped_id(tenant: str, raw: Any) -> str:
    """The id as Fineract has it: ingest scopes it by the source ``fineract:<tenant>`` (giving
    ``fineract:<tenant>:<id>``), so loans and transactions of two tenants never collide."""
    return str(raw)


def map_item(
    env: Envelope, item: Item, loans: Mapping[int, LoanInfo], config: MapperConfig
) -> MapResult:
    """Map one business event. Raises :class:`UnmappableEvent` when a needed field is missing."""
    ctx = _Ctx(env, item, loans, config)
    result = MapResult()
    p = item.payload
    if item.schema == LOAN_ACCOUNT_SCHEMA and p.get("id") is not None and p.get("clientId"):
        known = loans.get(p["id"])
        result.loans[p["id"]] = _loan_info(p, known.disbursals if known else ())
    t = item.type
    if t in CLIENT_REGISTRATION:
        result.events.append(ctx.client_registered())
    elif t == DISBURSAL:
        ctx.loan_disbursed(result)
    elif t in (UNDO_DISBURSAL, UNDO_LAST_DISBURSAL):
        ctx.undo_disbursal(result, every=t == UNDO_DISBURSAL)
    elif t in MONEY_IN:
        ctx.money_in(p, result)
    elif t == ADJUSTMENT:
        ctx.adjustment(result)
    elif t == DELINQUENCY:
        ctx.delinquency(result)
    elif t == WRITE_OFF:
        ctx.written_off(result)
    elif t == UNDO_WRITE_OFF:
        ctx.undo_written_off(result)
    elif t in CLOSURE:
        ctx.closed(result)
    else:
        result.ignored = True
    return result


class _Ctx:
    def __init__(
        self, env: Envelope, item: Item, loans: Mapping[int, LoanInfo], config: MapperConfig
    ) -> None:
        self.env = env
        self.item = item
        self.loans = loans
        self.config = config
        self.tenant = env.tenant_id
        self.source = source_of(env.tenant_id)
        self.time = parse_created_at(env.created_at)
        self._n = 0

    def event(self, type_: str, data: dict[str, Any], once_key: str | None = None) -> InputEvent:
        event_id = self.env.idempotency_key
        if self.item.index:
            event_id += f"#{self.item.index}"
        if self._n:
            event_id += f"/{self._n}"
        self._n += 1
        clean = {k: v for k, v in data.items() if v is not None}
        return InputEvent(event_id, self.source, type_, self.time, clean, once_key)

    def loan(self, loan_id: int, result: MapResult) -> LoanInfo | None:
        info = result.loans.get(loan_id) or self.loans.get(loan_id)
        if info is None:
            result.waiting_for_loan = loan_id
        return info

    # --- clients -------------------------------------------------------------------------------

    def client_registered(self) -> InputEvent:
        p = self.item.payload
        client_id = _required(p, "id")
        timeline = p.get("timeline") or {}
        registered_on = (
            timeline.get("submittedOnDate") or p.get("activationDate") or self.env.business_date
        )
        birth = p.get("dateOfBirth")
        data = {
            "client_id": str(client_id),
            "branch_id": _str(_required(p, "officeId")),
            "gender": self._gender(p.get("gender")),
            "birth_year": int(birth[:4]) if birth else None,
            "registered_on": registered_on,
        }
        once = f"client:{client_id}:registered"
        return self.event("spm.client.registered.v1", data, once)

    def _gender(self, code_value: Mapping[str, Any] | None) -> str:
        name = (code_value or {}).get("name")
        if not name:
            return "unknown"
        return self.config.gender_map.get(str(name).strip().lower(), "unknown")

    # --- loans ---------------------------------------------------------------------------------

    def loan_disbursed(self, result: MapResult) -> None:
        p = self.item.payload
        loan_id = _required(p, "id")
        # Stable under redelivery (the envelope id is), and never a Fineract transaction id.
        suffix = f"-{self.item.index}" if self.item.index else ""
        transaction_id = scoped_id(self.tenant, f"disbursal-{self.env.id}{suffix}")
        summary = p.get("summary") or {}
        timeline = p.get("timeline") or {}
        currency = (summary.get("currency") or p.get("currency") or {}).get("code")
        places = _places(summary.get("currency") or p.get("currency"))
        amount = summary.get("principalDisbursed") or p.get("principal")
        data = {
            "loan_id": scoped_id(self.tenant, _required(p, "id")),
            "client_id": str(_required(p, "clientId")),
            "branch_id": _str(_required(p, "clientOfficeId")),
            "product_id": _str(_required(p, "loanProductId")),
            "officer_id": _str(p.get("loanOfficerId")),
            "loan_cycle": p.get("loanCounter") or None,
            "amount": _money(_present(amount, "summary.principalDisbursed"), places),
            "currency": _present(currency, "summary.currency.code"),
            "term_months": _term_months(p),
            "disbursed_on": timeline.get("actualDisbursementDate") or self.env.business_date,
            "transaction_id": transaction_id,
        }
        result.events.append(self.event("spm.loan.disbursed.v1", data))
        info = result.loans[loan_id]  # set from this payload by map_item (clientId is required)
        result.loans[loan_id] = replace(info, disbursals=(*info.disbursals, transaction_id))

    def undo_disbursal(self, result: MapResult, *, every: bool) -> None:
        """Reverse every disbursal in force (undo disbursal) or the latest (undo last)."""
        p = self.item.payload
        loan_id = _required(p, "id")
        info = result.loans.get(loan_id) or self.loan(loan_id, result)
        if info is None:
            return
        undone = info.disbursals if every else info.disbursals[-1:]
        if not undone:  # disbursed before the adapter ran, or undone already: nothing to cancel
            result.ignored = True
            return
        today = self.env.business_date  # the day of the undo
        result.events.extend(self.reversal(loan_id, info, tid, today) for tid in undone)
        kept = info.disbursals[: len(info.disbursals) - len(undone)]
        result.loans[loan_id] = replace(info, disbursals=kept)

    def money_in(self, txn: Mapping[str, Any], result: MapResult) -> None:
        loan_id = _required(txn, "loanId")
        if self.loan(loan_id, result) is None:
            return
        result.events.append(self.repayment(txn, loan_id, result))

    def repayment(self, txn: Mapping[str, Any], loan_id: int, result: MapResult) -> InputEvent:
        info = self.loans.get(loan_id) or result.loans[loan_id]
        places = _places(txn.get("currency"))
        data = {
            "loan_id": scoped_id(self.tenant, loan_id),
            "client_id": str(info.client_id),
            "transaction_id": scoped_id(self.tenant, _required(txn, "id")),
            "value_date": txn.get("date") or self.env.business_date,
            "amount": _money(_required(txn, "amount"), places),
            "principal_paid": _money(txn.get("principalPortion") or Decimal(0), places),
            "interest_paid": _money(txn.get("interestPortion"), places),
            "outstanding_principal_after": _money(txn.get("outstandingLoanBalance"), places),
        }
        return self.event("spm.loan.repayment.v1", data)

    def adjustment(self, result: MapResult) -> None:
        p = self.item.payload
        old = p.get("transactionToAdjust")
        new = p.get("newTransactionDetail")
        if not old:
            raise UnmappableEvent("LoanAdjustTransactionBusinessEvent without transactionToAdjust")
        loan_id = _required(old, "loanId")
        info = self.loan(loan_id, result)
        if info is None:
            return
        result.events.append(self.reversal_of(old, loan_id, info))
        if new and _is_replacement_money_in(new):
            result.events.append(self.repayment(new, loan_id, result))

    def reversal_of(self, txn: Mapping[str, Any], loan_id: int, info: LoanInfo) -> InputEvent:
        """The reversal of Fineract transaction ``txn``, on its ``reversedOnDate``."""
        transaction_id = scoped_id(self.tenant, _required(txn, "id"))
        on = txn.get("reversedOnDate") or self.env.business_date
        return self.reversal(loan_id, info, transaction_id, on)

    def reversal(self, loan_id: int, info: LoanInfo, transaction_id: str, on: str) -> InputEvent:
        data = {
            "loan_id": scoped_id(self.tenant, loan_id),
            "client_id": str(info.client_id),
            "transaction_id": transaction_id,
            "reversed_on": on,
        }
        return self.event("spm.loan.transaction_reversed.v1", data)

    def delinquency(self, result: MapResult) -> None:
        p = self.item.payload
        loan_id = _required(p, "loanId")
        info = self.loan(loan_id, result)
        if info is None:
            return
        bucket = p.get("delinquencyRange")
        as_of = date.fromisoformat(self.env.business_date)
        days = 0
        if bucket is not None and p.get("delinquentDate"):
            days = max(0, (as_of - date.fromisoformat(p["delinquentDate"])).days)
        amount = (p.get("amount") or {}).get("totalAmount")
        places = _places(p.get("currency"))
        data = {
            "loan_id": scoped_id(self.tenant, loan_id),
            "client_id": str(info.client_id),
            "as_of": as_of.isoformat(),
            "days_past_due": days,
            "bucket_min_days": (bucket or {}).get("minimumAgeDays"),
            "bucket_max_days": (bucket or {}).get("maximumAgeDays"),
            "arrears_amount": _money(amount if bucket is not None else Decimal(0), places),
        }
        result.events.append(self.event("spm.loan.delinquency.v1", data))

    def written_off(self, result: MapResult) -> None:
        p = self.item.payload
        loan_id = _required(p, "loanId")
        info = self.loan(loan_id, result)
        if info is None:
            return
        places = _places(p.get("currency"))
        principal = p.get("principalPortion")
        data = {
            "loan_id": scoped_id(self.tenant, loan_id),
            "client_id": str(info.client_id),
            "principal_written_off": _money(
                principal if principal is not None else _required(p, "amount"), places
            ),
            "written_off_on": p.get("date") or self.env.business_date,
            # what an undo reverses; without one the write-off cannot be undone (contract v1.1)
            "transaction_id": None if p.get("id") is None else scoped_id(self.tenant, p["id"]),
        }
        result.events.append(self.event("spm.loan.written_off.v1", data))

    def undo_written_off(self, result: MapResult) -> None:
        """The payload is the write-off transaction itself: reverse it by its id."""
        p = self.item.payload
        loan_id = _required(p, "loanId")
        info = self.loan(loan_id, result)
        if info is None:
            return
        result.events.append(self.reversal_of(p, loan_id, info))

    def closed(self, result: MapResult) -> None:
        p = self.item.payload
        closure = _closure_type(p.get("status") or {})
        if closure == "written_off":
            # Write-offs can be undone and a closure cannot: the write-off event ends the loan.
            result.ignored = True
            return
        if closure is None:
            if self.item.type == "LoanCloseBusinessEvent":
                closure = "other"
            else:
                result.ignored = True  # a status change that does not close the loan
                return
        loan_id = _required(p, "id")
        info = self.loan(loan_id, result)
        if info is None:
            return
        timeline = p.get("timeline") or {}
        data = {
            "loan_id": scoped_id(self.tenant, loan_id),
            "client_id": str(info.client_id),
            "closed_on": timeline.get("closedOnDate") or self.env.business_date,
            "closure_type": closure,
        }
        once = f"loan:{loan_id}:closed:{closure}"
        result.events.append(self.event("spm.loan.closed.v1", data, once))


# --- helpers -------------------------------------------------------------------------------------


def parse_created_at(value: str) -> datetime:
    """``createdAt`` is UTC wall time with 0-9 fraction digits (Python reads at most 6)."""
    head, _, frac = value.partition(".")
    text = f"{head}.{frac[:6]}" if frac else head
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UnmappableEvent(f"createdAt {value!r} is not a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _loan_info(p: Mapping[str, Any], disbursals: tuple[str, ...]) -> LoanInfo:
    summary = p.get("summary") or {}
    currency = (summary.get("currency") or p.get("currency") or {}).get("code")
    return LoanInfo(
        client_id=int(p["clientId"]),
        branch_id=_str(p.get("clientOfficeId")),
        product_id=_str(p.get("loanProductId")),
        currency=currency,
        loan_cycle=p.get("loanCounter"),
        disbursals=disbursals,
    )


def _closure_type(status: Mapping[str, Any]) -> str | None:
    for flag, closure in _CLOSURE_FLAGS:
        if status.get(flag):
            return closure
    code = status.get("id")
    return _CLOSED_CODES.get(code) if isinstance(code, int) else None


def _is_replacement_money_in(txn: Mapping[str, Any]) -> bool:
    type_id = _txn_type(txn)
    has_amount = bool(txn.get("amount"))
    return type_id in MONEY_IN_TXN_TYPES and txn.get("id") is not None and has_amount


def _txn_type(txn: Mapping[str, Any]) -> int | None:
    type_id = (txn.get("type") or {}).get("id")
    return type_id if isinstance(type_id, int) else None


def _term_months(p: Mapping[str, Any]) -> int | None:
    n, every = p.get("numberOfRepayments"), p.get("repaymentEvery")
    code = ((p.get("repaymentFrequencyType") or {}).get("code") or "").rsplit(".", 1)[-1]
    if not n or not every:
        return None
    periods = Decimal(n * every)
    months = {
        "months": periods,
        "years": periods * 12,
        "weeks": periods * 7 / _DAYS_PER_MONTH,
        "days": periods / _DAYS_PER_MONTH,
    }.get(code)
    if months is None:
        return None
    return max(1, int(months.to_integral_value(ROUND_HALF_EVEN)))


def _places(currency: Mapping[str, Any] | None) -> int:
    places = (currency or {}).get("decimalPlaces")
    return places if isinstance(places, int) and 0 <= places <= 4 else 2


def _money(value: Decimal | None, places: int) -> str | None:
    """Fineract sends scale 8; keep the currency's places unless that would change the value."""
    if value is None:
        return None
    rounded = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    if rounded != value:
        rounded = value.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    return str(rounded)


def _required(p: Mapping[str, Any], name: str) -> Any:
    value = p.get(name)
    if value is None:
        raise UnmappableEvent(f"payload field {name!r} is missing")
    return value


def _present(value: Any, name: str) -> Any:
    if value is None:
        raise UnmappableEvent(f"payload field {name!r} is missing")
    return value


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
