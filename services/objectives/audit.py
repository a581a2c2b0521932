"""The audit trail: one append-only row per change, with before, after and their diff, and who
made it: ``author`` (a key's name or a person's display name) and ``author_subject`` (the
person's stable identifier; null for a machine's key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import paging
from services.objectives.models import versions
from services.objectives.schemas import DiffEntry, VersionRead

Action = Literal["created", "updated", "retired", "reactivated"]
_VOLATILE = ("version", "created_at", "updated_at")


def _comparable(doc: dict[str, Any] | None) -> dict[str, Any]:
    """A document without bookkeeping fields, targets keyed by id (order changes are moves)."""
    if doc is None:
        return {}
    out = {k: v for k, v in doc.items() if k not in _VOLATILE}
    out["targets"] = {t["id"]: t for t in doc.get("targets", [])}
    return out


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[DiffEntry]:
    """Field-level differences, with paths such as ``targets[<id>].threshold``."""
    entries: list[DiffEntry] = []
    _walk(_comparable(before), _comparable(after), "", entries)
    return entries


def _walk(before: Any, after: Any, path: str, out: list[DiffEntry]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(k for k in after if k not in before)]:
            sub = f"{path}[{key}]" if path == "targets" else f"{path}.{key}" if path else key
            if key not in after:
                out.append(DiffEntry(path=sub, before=before[key], after=None))
            elif key not in before:
                out.append(DiffEntry(path=sub, before=None, after=after[key]))
            else:
                _walk(before[key], after[key], sub, out)
    elif before != after:
        out.append(DiffEntry(path=path, before=before, after=after))


async def record(
    session: AsyncSession,
    *,
    objective_id: str,
    version: int,
    action: Action,
    author: str,
    author_subject: str | None = None,
    changed_at: datetime,
    reason: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    await session.execute(
        versions.insert().values(
            objective_id=objective_id,
            version=version,
            action=action,
            author=author,
            author_subject=author_subject,
            changed_at=changed_at,
            reason=reason,
            before=before,
            after=after,
            diff=[e.model_dump(mode="json") for e in diff(before, after)],
        )
    )


async def history(
    session: AsyncSession, objective_id: str, *, cursor: str | None = None, limit: int | None = None
) -> list[VersionRead]:
    """Oldest version first; ``cursor`` resumes after a version (see services.common.paging)."""
    c = versions.c
    query = select(versions).where(c.objective_id == objective_id).order_by(c.version)
    if (later := paging.after(c.version, c.objective_id, cursor, ascending=True)) is not None:
        query = query.where(later)
    rows = await session.execute(query.limit(limit))
    return [VersionRead.model_validate(row._asdict()) for row in rows]
