"""Which event types exist, their payload models, topic and key."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from contracts import events as ev
from contracts.topics import (
    ACTIONS,
    ALERTS,
    CLIENTS,
    COMPLAINTS,
    INDICATORS,
    LOANS,
    OBJECTIVES,
    TopicSpec,
)


@dataclass(frozen=True, slots=True)
class EventType:
    type: str
    # builtins.type: inside this class body `type` names the field above.
    model: builtins.type[ev.CanonicalData]
    topic: TopicSpec
    key_fields: tuple[str, ...]
    summary: str
    input_model: builtins.type[ev.InputData] | None = field(default=None)
    """None for service outputs, which no source sends."""

    def key_of(self, data: ev.CanonicalData) -> str:
        """The Kafka key (CloudEvents ``partitionkey``): key fields joined by ``|``."""
        parts = [getattr(data, name) for name in self.key_fields]
        if not all(isinstance(part, str) and part for part in parts):
            raise ValueError(f"{self.type}: key field(s) {', '.join(self.key_fields)} missing")
        return "|".join(parts)


def _source_event(
    type_: str, model: type[ev.CanonicalData], topic: TopicSpec, summary: str
) -> EventType:
    key_field = "complaint_id" if topic is COMPLAINTS else "client_pid"
    return EventType(type_, model, topic, (key_field,), summary, ev.input_model(model))


SOURCE_EVENTS: tuple[EventType, ...] = (
    _source_event("spm.client.registered.v1", ev.ClientRegistered, CLIENTS, "A client registered."),
    _source_event("spm.client.exited.v1", ev.ClientExited, CLIENTS, "A client left."),
    _source_event(
        "spm.poverty.assessed.v1", ev.PovertyAssessed, CLIENTS, "A poverty assessment (PPI)."
    ),
    _source_event("spm.loan.disbursed.v1", ev.LoanDisbursed, LOANS, "A loan was disbursed."),
    _source_event("spm.loan.repayment.v1", ev.LoanRepayment, LOANS, "A repayment was made."),
    _source_event(
        "spm.loan.transaction_reversed.v1",
        ev.LoanTransactionReversed,
        LOANS,
        "A loan transaction was reversed; it counts as if it never happened.",
    ),
    _source_event(
        "spm.loan.delinquency.v1", ev.LoanDelinquency, LOANS, "Days past due of a loan on a day."
    ),
    _source_event("spm.loan.written_off.v1", ev.LoanWrittenOff, LOANS, "A loan was written off."),
    _source_event("spm.loan.closed.v1", ev.LoanClosed, LOANS, "A loan ended."),
    _source_event(
        "spm.complaint.opened.v1", ev.ComplaintOpened, COMPLAINTS, "A complaint was opened."
    ),
    _source_event(
        "spm.complaint.resolved.v1", ev.ComplaintResolved, COMPLAINTS, "A complaint was resolved."
    ),
)

OUTPUT_EVENTS: tuple[EventType, ...] = (
    EventType(
        "spm.indicator.changed.v1",
        ev.IndicatorChanged,
        INDICATORS,
        ("code", "segment"),
        "An indicator value changed (key = code + segment).",
    ),
    EventType(
        "spm.target.changed.v1",
        ev.TargetChanged,
        OBJECTIVES,
        ("target_id",),
        "The full current state of a target, or its retirement (key = target id).",
    ),
    EventType(
        "spm.alert.changed.v1",
        ev.AlertChanged,
        ALERTS,
        ("fingerprint",),
        "An alert changed state or was acknowledged (key = alert fingerprint).",
    ),
    EventType(
        "spm.action.changed.v1",
        ev.ActionChanged,
        ACTIONS,
        ("action_id",),
        "A corrective action was recorded, changed, became overdue or was judged "
        "(key = action id).",
    ),
)

EVENT_TYPES: dict[str, EventType] = {e.type: e for e in SOURCE_EVENTS + OUTPUT_EVENTS}


class UnknownEventType(ValueError):
    def __init__(self, type_: str) -> None:
        super().__init__(f"unknown event type {type_!r}")
        self.type = type_


def event_type(type_: str) -> EventType:
    try:
        return EVENT_TYPES[type_]
    except KeyError:
        raise UnknownEventType(type_) from None
