"""Route: which receivers an alert goes to (the target's ``notify`` plus the routing tree).

A target's ``notify`` names receivers of the routing configuration; an e-mail address in it is
a receiver of its own (``email:<address>``). Routes match on segment and indicator (globs),
severity and kind; the first match wins unless it says ``continue``. With no receiver at all the
``default_receiver`` gets the alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from services.alerts.config import Receiver, Route, Routing

EMAIL_PREFIX = "email:"


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
    return list(dict.fromkeys(names))


def receiver(routing: Routing, name: str) -> Receiver | None:
    if name.startswith(EMAIL_PREFIX):
        return Receiver(email=[name.removeprefix(EMAIL_PREFIX)])
    return routing.receivers.get(name)
