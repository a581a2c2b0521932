"""spm.target.changed.v1 payloads and the outbox messages that carry them."""

from __future__ import annotations

from contracts.events import TargetChanged
from services.objectives.rules import bounds
from services.objectives.schemas import ObjectiveRead, TargetFields

TYPE = "spm.target.changed.v1"
_VOLATILE = {"version", "changed_at"}


def payload(
    objective: ObjectiveRead, target_id: str, target: TargetFields, *, retired: bool
) -> TargetChanged:
    line = bounds(target.threshold)
    band = bounds(target.warning_threshold) if target.warning_threshold is not None else None
    lower = upper = warning_lower = warning_upper = None
    if target.direction in ("at_least", "within"):
        lower, warning_lower = line[0], band[0] if band else None
    if target.direction in ("at_most", "within"):
        upper, warning_upper = line[-1], band[-1] if band else None
    return TargetChanged(
        target_id=target_id,
        objective_id=objective.id,
        objective_code=objective.code,
        objective_name=objective.name,
        dimension=objective.dimension,
        status="retired" if retired or objective.status == "retired" else "active",
        indicator=target.indicator,
        segment=target.segment,
        direction=target.direction,
        lower=lower,
        upper=upper,
        warning_lower=warning_lower,
        warning_upper=warning_upper,
        for_days=target.for_days,
        severity=target.severity,
        notify=tuple(target.notify),
        effective_from=target.effective_from,
        effective_to=target.effective_to,
        version=objective.version,
        changed_at=objective.updated_at,
        owner=objective.owner,
    )


def states(objective: ObjectiveRead | None) -> dict[str, TargetChanged]:
    """The published state of every target of ``objective`` (none before it exists)."""
    if objective is None:
        return {}
    return {t.id: payload(objective, t.id, t, retired=False) for t in objective.targets}


def changed(before: TargetChanged | None, after: TargetChanged) -> bool:
    if before is None:
        return True
    return before.model_dump(exclude=_VOLATILE) != after.model_dump(exclude=_VOLATILE)
