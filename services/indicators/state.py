"""Per-partition state of the engine: what the accepted events say about each client, loan and
complaint, kept in memory and rebuilt from the stored facts on assignment.

Application is order-insensitive except where docs/indicators.md breaks ties by arrival ("the last
received"), which ``seq`` (the arrival order within the partition) decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, cast
from zoneinfo import ZoneInfo

from contracts import events as ev

LoanKey = tuple[str, str]  # (source, loan_id)
ComplaintKey = tuple[str, str]  # (source, complaint_id)
TxKey = tuple[str, str]  # (source, transaction_id)

MONEY = Decimal(10) ** 4
LIKELIHOOD = Decimal(10) ** 10
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Contribution = list[tuple[tuple[str, ...], list[tuple[str, int, int]]]]
"""What one entity adds to the deltas: (component, day, value) items per segment set, in a
deterministic order (see contributions.py). Entities keep the last one added (``added``, None
until first needed) so that a change subtracts exactly that instead of recomputing it."""


def scaled(value: Decimal, factor: Decimal) -> int:
    """An exact integer in the component's unit (money has at most 4 decimals, likelihood 10)."""
    return int(value * factor)


@dataclass(slots=True)
class Attrs:
    """How a client's contributions are segmented (from its latest registration)."""

    registered: bool
    branch: str | None = None
    gender: str = "unknown"
    rural: bool | None = None


UNREGISTERED = Attrs(False)


@dataclass(slots=True)
class ClientState:
    reg_day: int | None = None  # earliest registered_on (ordinal)
    latest: tuple[int, int] | None = None  # (registered_on, seq) of the attribute source
    attrs: Attrs = field(default_factory=lambda: UNREGISTERED)
    exit: tuple[int, str, str | None] | None = None  # earliest (exited_on, type, reason)
    assessments: list[tuple[int, int, str]] = field(default_factory=list)  # (day, e10, line)
    loans: set[LoanKey] = field(default_factory=set)  # loans whose disbursal in force is ours
    written: set[LoanKey] | None = None  # loans with a write-off naming us (rare: made on use)
    added: Contribution | None = None


@dataclass(slots=True)
class Disbursement:
    client: str
    branch: str
    product: str
    day: int
    amount: int  # money e4
    cycle: int | None
    instalment: Decimal | None
    income: Decimal | None
    lenders: int | None


class LoanSummary(NamedTuple):
    """What the client-level computation needs of a loan (refreshed after every change); a
    named tuple, as it is compared after every change of its loan."""

    branch: str
    product: str
    start: int  # first day open with outstanding > 0
    stop: int | None  # first day no longer (None = still)
    end: int | None  # the day the loan ended


class WriteOff(NamedTuple):
    day: int
    amount: int  # money e4
    tx: TxKey | None  # None: cannot be cancelled
    client: str  # the write-off's own client_pid (segments it while no disbursal is in force)


@dataclass(slots=True)
class LoanState:
    """Everything received about one loan. Cancellations (docs/indicators.md, corrections): every
    disbursal and write-off is kept with its transaction id; ``disb`` is the disbursal in force
    (the first received that is not cancelled) and ``written_off`` the earliest day of a write-off
    that is not, both refreshed by :meth:`UnitState._refresh` when a disbursal, write-off or
    reversal arrives (repayments, the bulk of the events, never need it)."""

    disb: Disbursement | None = None
    disbursals: list[tuple[TxKey | None, Disbursement]] = field(default_factory=list)
    repayments: dict[TxKey, list[tuple[int, int]]] = field(default_factory=dict)
    reversed: set[TxKey] = field(default_factory=set)
    delinquency: dict[int, tuple[int, int]] = field(default_factory=dict)  # as_of -> (seq, dpd)
    closed: int | None = None  # earliest closed_on (a closure cannot be cancelled)
    written_off: int | None = None  # earliest written_off_on of a write-off in force
    writeoffs: list[WriteOff] = field(default_factory=list)  # every write-off received
    summary: LoanSummary | None = None
    added: Contribution | None = None

    def writeoffs_in_force(self) -> list[WriteOff]:
        if not self.reversed:
            return self.writeoffs
        return [w for w in self.writeoffs if w.tx is None or w.tx not in self.reversed]

    @property
    def end(self) -> int | None:
        """The day the loan ended: the earlier of its closure and its write-off in force (asked
        for several times per touched loan and batch, so no list is built)."""
        closed, written = self.closed, self.written_off
        if closed is None:
            return written
        return closed if written is None or closed <= written else written


@dataclass(slots=True)
class ComplaintState:
    branch: str | None = None
    category: str | None = None
    opened_day: int | None = None
    opened_us: int | None = None  # opened_at in epoch microseconds
    resolved_day: int | None = None
    resolved_us: int | None = None
    added: Contribution | None = None


@dataclass(slots=True)
class Touched:
    clients: set[str] = field(default_factory=set)
    client_events: set[str] = field(default_factory=set)  # clients with events of their own
    loans: set[LoanKey] = field(default_factory=set)
    complaints: set[ComplaintKey] = field(default_factory=set)


def _epoch_us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


@dataclass
class UnitState:
    """Everything one input partition (unit) knows; clients/loans or complaints."""

    tz: ZoneInfo
    clients: dict[str, ClientState] = field(default_factory=dict)
    loans: dict[LoanKey, LoanState] = field(default_factory=dict)
    complaints: dict[ComplaintKey, ComplaintState] = field(default_factory=dict)
    seq: int = 0
    max_day: int | None = None

    def client(self, pid: str) -> ClientState:
        state = self.clients.get(pid)
        if state is None:
            state = self.clients[pid] = ClientState()
        return state

    def loan(self, key: LoanKey) -> LoanState:
        state = self.loans.get(key)
        if state is None:
            state = self.loans[key] = LoanState()
        return state

    def touch_before(self, source: str, data: ev.CanonicalData, touched: Touched) -> None:
        """Mark what an event will change, before it is applied (for the 'before' snapshot).

        Dispatch is on the exact type (the payload models have no subclasses): ``isinstance``
        on a pydantic model goes through ``ABCMeta`` and costs several times more."""
        kind = type(data)
        if kind in _LOAN_EVENTS:
            key = (source, data.loan_id)  # type: ignore[attr-defined]
            touched.loans.add(key)
            loan = self.loans.get(key)
            owner = loan.disb.client if loan is not None and loan.disb is not None else None
            touched.clients.add(owner or data.client_pid)  # type: ignore[attr-defined]
            if kind in _CORRECTING and loan is not None:
                # the disbursal in force may change hands: every client it could move to
                touched.clients.add(data.client_pid)  # type: ignore[attr-defined]
                touched.clients.update(d.client for _, d in loan.disbursals)
        elif kind is ev.ComplaintOpened or kind is ev.ComplaintResolved:
            touched.complaints.add((source, data.complaint_id))  # type: ignore[attr-defined]
        elif kind is ev.ClientRegistered:
            pid = data.client_pid  # type: ignore[attr-defined]
            touched.clients.add(pid)
            touched.client_events.add(pid)
            client = self.client(pid)
            touched.loans.update(client.loans)
            if client.written:
                touched.loans.update(client.written)
        else:  # ClientExited, PovertyAssessed
            touched.clients.add(data.client_pid)  # type: ignore[attr-defined]
            touched.client_events.add(data.client_pid)  # type: ignore[attr-defined]

    def apply(self, source: str, data: ev.CanonicalData) -> None:
        self.seq += 1
        seq = self.seq
        kind = type(data)
        day = _business_day(data, kind, self.tz)
        if day is not None and (self.max_day is None or day > self.max_day):
            self.max_day = day
        if kind in _LOAN_EVENTS:
            self._loan_event(source, data, kind, seq)
        elif kind is ev.ClientRegistered:
            self._registered(data, seq)  # type: ignore[arg-type]
        elif kind is ev.ClientExited:
            c = self.client(data.client_pid)  # type: ignore[attr-defined]
            d = data.exited_on.toordinal()  # type: ignore[attr-defined]
            if c.exit is None or d < c.exit[0]:
                c.exit = (d, data.exit_type, data.reason_code)  # type: ignore[attr-defined]
        elif kind is ev.PovertyAssessed:
            pov = cast(ev.PovertyAssessed, data)
            self.client(pov.client_pid).assessments.append(
                (pov.assessed_on.toordinal(), scaled(pov.likelihood, LIKELIHOOD), pov.poverty_line)
            )
        else:
            self._complaint(source, data)  # type: ignore[arg-type]

    def _registered(self, data: ev.ClientRegistered, seq: int) -> None:
        c = self.client(data.client_pid)
        d = data.registered_on.toordinal()
        if c.reg_day is None or d < c.reg_day:
            c.reg_day = d
        if c.latest is None or (d, seq) >= c.latest:
            c.latest = (d, seq)
            c.attrs = Attrs(True, data.branch_id, data.gender, data.rural)

    def _loan_event(
        self, source: str, data: ev.CanonicalData, kind: type[ev.CanonicalData], seq: int
    ) -> None:
        key = (source, data.loan_id)  # type: ignore[attr-defined]
        loan = self.loan(key)
        if kind is ev.LoanRepayment:
            pay = cast(ev.LoanRepayment, data)
            loan.repayments.setdefault((source, pay.transaction_id), []).append(
                (pay.value_date.toordinal(), scaled(pay.principal_paid, MONEY))
            )
        elif kind is ev.LoanDelinquency:
            report = cast(ev.LoanDelinquency, data)
            loan.delinquency[report.as_of.toordinal()] = (seq, report.days_past_due)
        elif kind is ev.LoanDisbursed:
            disb = cast(ev.LoanDisbursed, data)
            tx = None if disb.transaction_id is None else (source, disb.transaction_id)
            loan.disbursals.append(
                (
                    tx,
                    Disbursement(
                        disb.client_pid,
                        disb.branch_id,
                        disb.product_id,
                        disb.disbursed_on.toordinal(),
                        scaled(disb.amount, MONEY),
                        disb.loan_cycle,
                        disb.instalment_monthly,
                        disb.household_income_monthly,
                        disb.other_active_lenders,
                    ),
                )
            )
            if loan.disb is None:
                self._refresh(key, loan)
        elif kind is ev.LoanTransactionReversed:
            loan.reversed.add((source, cast(ev.LoanTransactionReversed, data).transaction_id))
            self._refresh(key, loan)
        elif kind is ev.LoanWrittenOff:
            off = cast(ev.LoanWrittenOff, data)
            tx = None if off.transaction_id is None else (source, off.transaction_id)
            loan.writeoffs.append(
                WriteOff(
                    off.written_off_on.toordinal(),
                    scaled(off.principal_written_off, MONEY),
                    tx,
                    off.client_pid,
                )
            )
            named = self.client(off.client_pid)
            if named.written is None:
                named.written = set()
            named.written.add(key)
            self._refresh(key, loan)
        elif kind is ev.LoanClosed:
            d = cast(ev.LoanClosed, data).closed_on.toordinal()
            loan.closed = d if loan.closed is None else min(loan.closed, d)

    def _refresh(self, key: LoanKey, loan: LoanState) -> None:
        """The disbursal in force (the first received not cancelled) and the earliest write-off
        in force, after a disbursal, write-off or reversal; the client's loans follow the
        disbursal in force (a loan without one is nobody's, for inferred exits too)."""
        rev = loan.reversed
        new = next((d for tx, d in loan.disbursals if tx is None or tx not in rev), None)
        old = loan.disb
        if new is not old:
            if old is not None and (new is None or new.client != old.client):
                self.client(old.client).loans.discard(key)
            if new is not None:
                self.client(new.client).loans.add(key)
            loan.disb = new
        days = [w.day for w in loan.writeoffs_in_force()]
        loan.written_off = min(days) if days else None

    def _complaint(self, source: str, data: ev.ComplaintOpened | ev.ComplaintResolved) -> None:
        key = (source, data.complaint_id)
        c = self.complaints.get(key)
        if c is None:
            c = self.complaints[key] = ComplaintState()
        if isinstance(data, ev.ComplaintOpened):
            if c.opened_day is None:
                c.branch = data.branch_id
                c.category = data.category
                c.opened_day = data.opened_at.astimezone(self.tz).date().toordinal()
                c.opened_us = _epoch_us(data.opened_at)
        else:
            us = _epoch_us(data.resolved_at)
            if c.resolved_us is None or us < c.resolved_us:
                c.resolved_us = us
                c.resolved_day = data.resolved_at.astimezone(self.tz).date().toordinal()


_DAY_FIELD: dict[type[ev.CanonicalData], str] = {
    ev.ClientRegistered: "registered_on",
    ev.ClientExited: "exited_on",
    ev.PovertyAssessed: "assessed_on",
    ev.LoanDisbursed: "disbursed_on",
    ev.LoanRepayment: "value_date",
    ev.LoanDelinquency: "as_of",
    ev.LoanWrittenOff: "written_off_on",
    ev.LoanClosed: "closed_on",
}

_LOAN_EVENTS = frozenset(
    {
        ev.LoanDisbursed,
        ev.LoanRepayment,
        ev.LoanTransactionReversed,
        ev.LoanDelinquency,
        ev.LoanWrittenOff,
        ev.LoanClosed,
    }
)


_CORRECTING = frozenset({ev.LoanDisbursed, ev.LoanTransactionReversed})
"""Loan events that can change which disbursal is in force."""


def _business_day(data: ev.CanonicalData, kind: type[ev.CanonicalData], tz: ZoneInfo) -> int | None:
    """The event's business day (docs/indicators.md, "Days and history"); reversals have none."""
    name = _DAY_FIELD.get(kind)
    if name is not None:
        value: date = getattr(data, name)
        return value.toordinal()
    if kind is ev.ComplaintOpened:
        return cast(ev.ComplaintOpened, data).opened_at.astimezone(tz).date().toordinal()
    if kind is ev.ComplaintResolved:
        return cast(ev.ComplaintResolved, data).resolved_at.astimezone(tz).date().toordinal()
    return None
