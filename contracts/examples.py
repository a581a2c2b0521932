"""One example event per event type, as data: the source of ``contracts/examples/*.json``.

A fictional Kenyan MFI on Apache Fineract (tenant ``default``) with complaints in Salesforce.
Amounts are Kenyan shillings; ids, times and pseudonyms are fixed so the generated files never
change between runs. Input examples carry the raw source identifiers (``client_id``); canonical
ones carry what ingest makes of them: source-scoped identifiers and keyed pseudonyms
(``client_pid``; illustrative values, not computed with any real pepper).

The canonical examples are in the exact structured form ``envelope.to_structured`` writes, so a
decode/encode round trip reproduces them. A canonical ``traceparent`` is the trace context of the
HTTP request that brought the event (its ``traceparent`` header); input examples carry none,
since ingest drops extension attributes of the body.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.jsontypes import JsonObject

FINERACT = "fineract:default"
CRM = "crm:salesforce"

CLIENT_1042 = "597b7420fe863bf533c73ca4d72b06b8846c626aa5bfc4362d2438ef77921457"
CLIENT_1043 = "fe535efc3fef9893e3a5a6f16eba85198a97bbc781faff4ed34d96d5e821795c"
OFFICER_17 = "9f36a5f9fe1f0af5bb7993ea27c354d84d6d04cbca211f3109382710b4595840"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True, slots=True)
class Example:
    type: str
    id: str
    source: str
    time: str
    canonical_data: JsonObject
    input_data: JsonObject | None = None
    """None for service outputs, which no source sends."""
    subject: str | None = None
    traceparent: str | None = None
    """Canonical form only: from the request's trace context, never from the body."""

    def _envelope(self, data: JsonObject, traceparent: str | None) -> JsonObject:
        out: JsonObject = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if traceparent is not None:
            out["traceparent"] = traceparent
        out["datacontenttype"] = "application/json"
        out["data"] = data
        return out

    def canonical(self) -> JsonObject:
        """The canonical event in CloudEvents structured JSON form."""
        return self._envelope(self.canonical_data, self.traceparent)

    def input(self) -> JsonObject | None:
        """The event as a source sends it to ingest (structured JSON), if sources send it."""
        return None if self.input_data is None else self._envelope(self.input_data, None)


_EXAMPLES = (
    Example(
        type="spm.client.registered.v1",
        id="350643b5-eb6e-4a2c-a839-e1efe601be05",
        source=FINERACT,
        time="2025-03-03T08:30:00+03:00",
        input_data={
            "client_id": "1042",
            "branch_id": "BR-NAI-01",
            "gender": "female",
            "birth_year": 1991,
            "rural": False,
            "registered_on": "2025-03-03",
        },
        canonical_data={
            "client_pid": CLIENT_1042,
            "branch_id": "BR-NAI-01",
            "gender": "female",
            "birth_year": 1991,
            "rural": False,
            "registered_on": "2025-03-03",
        },
    ),
    Example(
        type="spm.client.exited.v1",
        id="67215a9e-daf5-4136-a76c-ac6a8a6f019c",
        source=FINERACT,
        time="2025-09-22T14:05:00+03:00",
        input_data={
            "client_id": "1043",
            "branch_id": "BR-MSA-02",
            "exited_on": "2025-09-22",
            "exit_type": "voluntary",
            "reason_code": "RELOCATED",
        },
        canonical_data={
            "client_pid": CLIENT_1043,
            "branch_id": "BR-MSA-02",
            "exited_on": "2025-09-22",
            "exit_type": "voluntary",
            "reason_code": "RELOCATED",
        },
    ),
    Example(
        type="spm.poverty.assessed.v1",
        id="0aa35ef1-be37-4ed7-8265-daebf784cc9e",
        source=FINERACT,
        time="2025-03-03T09:10:00+03:00",
        input_data={
            "client_id": "1042",
            "tool": "ppi-ke-2020",
            "poverty_line": "$2.15/day (2017 PPP)",
            "likelihood": "0.2870",
            "assessed_on": "2025-03-03",
        },
        canonical_data={
            "client_pid": CLIENT_1042,
            "tool": "ppi-ke-2020",
            "poverty_line": "$2.15/day (2017 PPP)",
            "likelihood": "0.2870",
            "assessed_on": "2025-03-03",
        },
    ),
    Example(
        type="spm.loan.disbursed.v1",
        id="c2bfd8ea-15a3-4106-bb0d-4149b84bc654",
        source=FINERACT,
        time="2025-03-10T11:42:17+03:00",
        subject="fineract:default:2001",
        traceparent=TRACEPARENT,
        input_data={
            "loan_id": "2001",
            "client_id": "1042",
            "branch_id": "BR-NAI-01",
            "product_id": "GRP-BIASHARA-12M",
            "officer_id": "staff:17",
            "loan_cycle": 2,
            "amount": "45000.00",
            "currency": "KES",
            "term_months": 12,
            "instalment_monthly": "4310.00",
            "household_income_monthly": "28000.00",
            "other_active_lenders": 1,
            "disbursed_on": "2025-03-10",
            "transaction_id": "88101",
        },
        canonical_data={
            "loan_id": "fineract:default:2001",
            "client_pid": CLIENT_1042,
            "branch_id": "BR-NAI-01",
            "product_id": "GRP-BIASHARA-12M",
            "officer_pid": OFFICER_17,
            "loan_cycle": 2,
            "amount": "45000.00",
            "currency": "KES",
            "term_months": 12,
            "instalment_monthly": "4310.00",
            "household_income_monthly": "28000.00",
            "other_active_lenders": 1,
            "disbursed_on": "2025-03-10",
            "transaction_id": "fineract:default:88101",
        },
    ),
    Example(
        type="spm.loan.repayment.v1",
        id="f34c7b1e-14a7-4fe5-824c-2b50ba9c338f",
        source=FINERACT,
        time="2025-04-10T16:20:03+03:00",
        subject="fineract:default:2001",
        input_data={
            "loan_id": "2001",
            "client_id": "1042",
            "transaction_id": "88213",
            "value_date": "2025-04-10",
            "amount": "4310.00",
            "principal_paid": "3410.00",
            "interest_paid": "900.00",
            "outstanding_principal_after": "41590.00",
        },
        canonical_data={
            "loan_id": "fineract:default:2001",
            "client_pid": CLIENT_1042,
            "transaction_id": "fineract:default:88213",
            "value_date": "2025-04-10",
            "amount": "4310.00",
            "principal_paid": "3410.00",
            "interest_paid": "900.00",
            "outstanding_principal_after": "41590.00",
        },
    ),
    Example(
        type="spm.loan.transaction_reversed.v1",
        id="86ceca04-420e-4b81-9d79-086a616aaca4",
        source=FINERACT,
        time="2025-04-11T09:02:45+03:00",
        subject="fineract:default:2001",
        input_data={
            "loan_id": "2001",
            "client_id": "1042",
            "transaction_id": "88213",
            "reversed_on": "2025-04-11",
        },
        canonical_data={
            "loan_id": "fineract:default:2001",
            "client_pid": CLIENT_1042,
            "transaction_id": "fineract:default:88213",
            "reversed_on": "2025-04-11",
        },
    ),
    Example(
        type="spm.loan.delinquency.v1",
        id="090cc246-1198-4909-8e2f-819cfbd0ff15",
        source=FINERACT,
        time="2025-06-14T23:59:00+03:00",
        subject="fineract:default:2001",
        input_data={
            "loan_id": "2001",
            "client_id": "1042",
            "as_of": "2025-06-14",
            "days_past_due": 35,
            "bucket_min_days": 31,
            "bucket_max_days": 60,
            "arrears_amount": "8620.00",
            "outstanding_principal": "31150.00",
        },
        canonical_data={
            "loan_id": "fineract:default:2001",
            "client_pid": CLIENT_1042,
            "as_of": "2025-06-14",
            "days_past_due": 35,
            "bucket_min_days": 31,
            "bucket_max_days": 60,
            "arrears_amount": "8620.00",
            "outstanding_principal": "31150.00",
        },
    ),
    Example(
        type="spm.loan.written_off.v1",
        id="6611e984-9af7-40f4-b22b-aa093f7a531c",
        source=FINERACT,
        time="2025-12-15T10:00:00+03:00",
        subject="fineract:default:2001",
        input_data={
            "loan_id": "2001",
            "client_id": "1042",
            "principal_written_off": "31150.00",
            "written_off_on": "2025-12-15",
            "transaction_id": "90877",
        },
        canonical_data={
            "loan_id": "fineract:default:2001",
            "client_pid": CLIENT_1042,
            "principal_written_off": "31150.00",
            "written_off_on": "2025-12-15",
            "transaction_id": "fineract:default:90877",
        },
    ),
    Example(
        type="spm.loan.closed.v1",
        id="8d8dc6e3-7754-4b79-8be7-ae21a455c314",
        source=FINERACT,
        time="2025-12-20T10:00:01+03:00",
        subject="fineract:default:2002",
        input_data={
            "loan_id": "2002",
            "client_id": "1043",
            "closed_on": "2025-12-20",
            "closure_type": "repaid",
        },
        canonical_data={
            "loan_id": "fineract:default:2002",
            "client_pid": CLIENT_1043,
            "closed_on": "2025-12-20",
            "closure_type": "repaid",
        },
    ),
    Example(
        type="spm.complaint.opened.v1",
        id="7b4544e2-0195-401d-b7a2-49492945b14a",
        source=CRM,
        time="2025-05-06T10:12:30+03:00",
        input_data={
            "complaint_id": "CASE-00017342",
            "client_id": "1042",
            "branch_id": "BR-NAI-01",
            "channel": "hotline",
            "category": "coercive_collection",
            "severity": "high",
            "opened_at": "2025-05-06T10:12:30+03:00",
        },
        canonical_data={
            "complaint_id": "crm:salesforce:CASE-00017342",
            "client_pid": CLIENT_1042,
            "branch_id": "BR-NAI-01",
            "channel": "hotline",
            "category": "coercive_collection",
            "severity": "high",
            "opened_at": "2025-05-06T10:12:30+03:00",
        },
    ),
    Example(
        type="spm.complaint.resolved.v1",
        id="a091aaef-852a-425c-bb86-c4d61e91413f",
        source=CRM,
        time="2025-05-20T15:45:00+03:00",
        input_data={
            "complaint_id": "CASE-00017342",
            "resolved_at": "2025-05-20T15:45:00+03:00",
            "outcome": "upheld",
        },
        canonical_data={
            "complaint_id": "crm:salesforce:CASE-00017342",
            "resolved_at": "2025-05-20T15:45:00+03:00",
            "outcome": "upheld",
        },
    ),
    Example(
        type="spm.indicator.changed.v1",
        id="84b5cdf8-cda0-4f33-8eb9-747402761206",
        source="spm:indicators",
        time="2025-06-14T00:00:00Z",
        canonical_data={
            "code": "women_borrower_share",
            "segment": "branch:BR-NAI-01",
            "as_of": "2025-06-14",
            "value": "0.6125",
            "numerator": "490",
            "denominator": "800",
            "n": 800,
            "previous_value": "0.6117",
            "computed_at": "2025-06-14T00:00:02.318000Z",
        },
    ),
    Example(
        type="spm.target.changed.v1",
        id="5c0f4d1e-2b7a-4f0e-9a61-3d2c8e7b9f10",
        source="spm:objectives",
        time="2025-01-15T09:30:00Z",
        subject="7d9e1c2a-4b3f-4e8a-9c1d-2f6a5b8e0c47",
        canonical_data={
            "target_id": "7d9e1c2a-4b3f-4e8a-9c1d-2f6a5b8e0c47",
            "objective_id": "0b8f3a6e-5d2c-4a1b-8e7f-9c6d3b2a1f05",
            "objective_code": "women-outreach",
            "objective_name": "Reach women entrepreneurs",
            "dimension": "D1",
            "status": "active",
            "indicator": "women_borrower_share",
            "segment": "all",
            "direction": "at_least",
            "lower": "0.60",
            "warning_lower": "0.63",
            "for_days": 10,
            "severity": "warning",
            "notify": ["spm.officer@example.org", "management"],
            "effective_from": "2025-01-01",
            "effective_to": "2025-12-31",
            "version": 3,
            "changed_at": "2025-01-15T09:30:00Z",
            "owner": "Head of Social Performance",
        },
    ),
    Example(
        type="spm.alert.changed.v1",
        id="e3b7a1f2-6c4d-4e9b-8a2f-1d5c7e9b3a60",
        source="spm:alerts",
        time="2025-06-16T00:00:03Z",
        subject="3f9c2a7d1e8b4c60",
        canonical_data={
            "alert_id": "b2c4e6a8-1d3f-4a5b-9c7e-0f2d4b6a8c1e",
            "fingerprint": "3f9c2a7d1e8b4c60",
            "target_id": "7d9e1c2a-4b3f-4e8a-9c1d-2f6a5b8e0c47",
            "objective_id": "0b8f3a6e-5d2c-4a1b-8e7f-9c6d3b2a1f05",
            "objective_code": "women-outreach",
            "indicator": "women_borrower_share",
            "segment": "all",
            "kind": "breach",
            "state": "firing",
            "severity": "warning",
            "value": "0.5932",
            "threshold": "0.60",
            "as_of": "2025-06-16",
            "since": "2025-06-02",
            "changed_at": "2025-06-16T00:00:03Z",
        },
    ),
    Example(
        type="spm.action.changed.v1",
        id="9a1c3e5f-7b2d-4f6a-8c0e-2d4f6a8c0e1b",
        source="spm:alerts",
        time="2025-07-15T06:00:00Z",
        subject="c5e7a9b1-3d5f-4a7b-9c1d-3e5f7a9b1c2d",
        canonical_data={
            "action_id": "c5e7a9b1-3d5f-4a7b-9c1d-3e5f7a9b1c2d",
            "change": "judged",
            "alert_id": "b2c4e6a8-1d3f-4a5b-9c7e-0f2d4b6a8c1e",
            "target_id": "7d9e1c2a-4b3f-4e8a-9c1d-2f6a5b8e0c47",
            "objective_id": "0b8f3a6e-5d2c-4a1b-8e7f-9c6d3b2a1f05",
            "indicator": "women_borrower_share",
            "segment": "all",
            "title": "Women-only loan officer outreach days in the two rural branches",
            "owner": "Amina Njoroge",
            "status": "done",
            "due_date": "2025-06-30",
            "review_date": "2025-07-15",
            "done_at": "2025-06-27T14:05:00Z",
            "effectiveness": "effective",
            "opened_value": "0.5932",
            "judged_value": "0.6041",
            "target_threshold": "0.60",
            "changed_by": "system",
            "changed_at": "2025-07-15T06:00:00Z",
        },
    ),
)

EXAMPLES: dict[str, Example] = {example.type: example for example in _EXAMPLES}
"""Event type -> its example."""
