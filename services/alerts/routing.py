"""Route: which receivers an alert goes to (the target's ``notify`` plus the routing tree).

A target's ``notify`` names receivers of the routing configuration; an e-mail address in it is
a receiver of its own (``email:<address>``). Routes match on segment and indicator (globs),
severity and kind; the first match wins unless it says ``continue``. With no receiver at all the
``default_receiver`` gets the alert.

A receiver with ``directory: {role}`` (services.alerts.directory) is resolved per branch: the
alert is routed to ``<receiver>#branch:<code>`` (``#institution`` for institution-level
segments), so alerts of different branches never share a notification, and that name resolves
to the role's members for that branch (their e-mail and phone) plus the receiver's own fixed
addresses. Its webhooks are not sent to per branch (they are the fixed receiver's).
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from services.alerts.config import Receiver, Route, Routing
from services.alerts.directory import Directory, StaticDirectory
from services.common.scope import BRANCH_PREFIX, branch_of

EMAIL_PREFIX = "email:"
PER_BRANCH = "#"
INSTITUTION = "institution"


def labels(row: Mapping[str, Any]) -> dict[str, str]:
    """An alert's labels: what routes, groups and silences match on."""
    return {
        "fingerprint": row["fingerprint"],
        "objective": row["objective_code"],
        "target": row["target_id"],
        "indicator": row["indicator"],
        "segment": row["segment"],
        "kind": row["kind"],
        "severity": row["severity"],
    }


def _matches(route: Route, lab: Mapping[str, str]) -> bool:
    return (
        (route.segment is None or fnmatchcase(lab["segment"], route.segment))
        and (route.indicator is None or fnmatchcase(lab["indicator"], route.indicator))
        and (route.severity is None or lab["severity"] in route.severity)
        and (route.kind is None or lab["kind"] in route.kind)
    )


def receivers_for(routing: Routing, row: Mapping[str, Any]) -> list[str]:
    """Receiver names for an alert row, in a stable order, without duplicates."""
    lab = labels(row)
    names: list[str] = []
    for item in row["detail"].get("notify", []):
        if "@" in item:
            names.append(EMAIL_PREFIX + item)
        elif item in routing.receivers:
            names.append(item)
    for route in routing.routes:
        if _matches(route, lab):
            names.append(route.receiver)
            if not route.continue_:
                break
    if not names and routing.default_receiver:
        names.append(routing.default_receiver)
    return list(dict.fromkeys(_per_branch(routing, n, lab["segment"]) for n in names))


def _per_branch(routing: Routing, name: str, segment: str) -> str:
    found = routing.receivers.get(name)
    if found is None or found.directory is None:
        return name
    branch = found.directory.branch or branch_of(segment)
    return name + PER_BRANCH + (INSTITUTION if branch is None else BRANCH_PREFIX + branch)


def receiver(routing: Routing, name: str, directory: Directory | None = None) -> Receiver | None:
    """The receiver a routed name stands for; a role receiver's ``<name>#<branch>`` resolves
    to the members of ``directory`` (default: the routing's configured list)."""
    if name.startswith(EMAIL_PREFIX):
        return Receiver(email=[name.removeprefix(EMAIL_PREFIX)])
    base, _, where = name.partition(PER_BRANCH)
    found = routing.receivers.get(base)
    if found is None or found.directory is None:
        return found
    people = (directory or StaticDirectory(routing.directory)).members(
        found.directory.role, None if where in ("", INSTITUTION) else branch_of(where)
    )
    return Receiver(
        email=list(dict.fromkeys([*found.email, *(p.email for p in people if p.email)])),
        sms=list(dict.fromkeys([*found.sms, *(p.phone for p in people if p.phone)])),
        webhooks=[] if where else found.webhooks,
        escalate=found.escalate,
    )
