"""The topic catalog: every topic of the system, how it is keyed and kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CleanupPolicy = Literal["delete", "compact"]

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    cleanup_policy: CleanupPolicy
    retention_ms: int
    description: str

    def configs(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


# clients and loans share the partition count so one client's events land on the same-numbered
# partition of both topics (consumers can keep per-partition state across the two).
CLIENT_PARTITIONS = 6

CLIENTS = TopicSpec(
    "spm.clients.v1",
    CLIENT_PARTITIONS,
    "client_pid",
    "delete",
    FOREVER,
    "Client registrations, exits and poverty assessments (canonical, pseudonymised).",
)
LOANS = TopicSpec(
    "spm.loans.v1",
    CLIENT_PARTITIONS,
    "client_pid",
    "delete",
    FOREVER,
    "Loan disbursements, repayments, reversals, arrears, write-offs and closures.",
)
COMPLAINTS = TopicSpec(
    "spm.complaints.v1",
    3,
    "complaint_id",
    "delete",
    FOREVER,
    "Complaints opened and resolved.",
)
DEADLETTER = TopicSpec(
    "spm.ingest.deadletter.v1",
    3,
    "original key",
    "delete",
    30 * DAY_MS,
    "Input that could not be accepted, with the reason in error.* headers.",
)
INDICATORS = TopicSpec(
    "spm.indicators.v1",
    3,
    "indicator code + segment",
    "delete",
    30 * DAY_MS,
    "Indicator values that changed (spm.indicator.changed.v1).",
)
OBJECTIVES = TopicSpec(
    "spm.objectives.v1",
    1,
    "target id",
    "compact",
    FOREVER,
    "Current state of every target (spm.target.changed.v1); compacted.",
)
ALERTS = TopicSpec(
    "spm.alerts.v1",
    3,
    "alert fingerprint",
    "delete",
    90 * DAY_MS,
    "Alert state changes (spm.alert.changed.v1).",
)
ACTIONS = TopicSpec(
    "spm.actions.v1",
    3,
    "action id",
    "delete",
    FOREVER,
    "Corrective actions recorded, changed, overdue and judged (spm.action.changed.v1).",
)

TOPICS: dict[str, TopicSpec] = {
    t.name: t
    for t in (CLIENTS, LOANS, COMPLAINTS, DEADLETTER, INDICATORS, OBJECTIVES, ALERTS, ACTIONS)
}
