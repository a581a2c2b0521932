"""A person's roles -> the scopes they hold and the branches they see (docs/security.md, "Roles").

The scopes are those of the API keys (services.common.auth.SCOPES), so a route's
``require(scope)`` is the one check for machines and people alike. A person holds the union of
their roles' scopes.

Branch limit: a ``branches`` claim in the token (a list) limits the person to those branches,
whatever their roles. Without the claim a branch manager, who by definition manages some
branches and not others, sees **no branch** (institution-level values only) until the identity
provider says which: a missing attribute must never widen what a person sees. Anyone whose roles
include an institution-wide one (every role but branch_manager) is unlimited without the claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.common.auth import ADMIN

VIEWER = "viewer"
BRANCH_MANAGER = "branch_manager"
SPM_OFFICER = "spm_officer"
RISK_COMPLIANCE = "risk_compliance"
ADMINISTRATOR = "administrator"

_READ = ("indicators:read", "objectives:read", "alerts:read")

ROLE_SCOPES: Mapping[str, frozenset[str]] = {
    # reads the dashboards: indicators, targets, alerts
    VIEWER: frozenset(_READ),
    # reads and acknowledges the alerts of their branches (the branch limit does the narrowing)
    BRANCH_MANAGER: frozenset((*_READ, "alerts:ack")),
    # owns the SPM strategy: sets objectives and targets, handles alerts
    SPM_OFFICER: frozenset((*_READ, "objectives:write", "alerts:ack")),
    # oversight: reads everything, follows up client-protection alerts; sets no targets
    RISK_COMPLIANCE: frozenset((*_READ, "alerts:ack")),
    # everything, ingest and operator routes included
    ADMINISTRATOR: frozenset((ADMIN,)),
}
ROLES = tuple(ROLE_SCOPES)

BRANCH_LIMITED_ROLES = frozenset({BRANCH_MANAGER})
"""Roles that see no branch unless the token names theirs (see the module's docstring)."""


def scopes_for(roles: Iterable[str]) -> frozenset[str]:
    """The union of the scopes of ``roles``; unknown roles grant nothing."""
    scopes: set[str] = set()
    for role in roles:
        scopes |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(scopes)


def branch_limit(roles: frozenset[str], claimed: frozenset[str] | None) -> frozenset[str] | None:
    """The branches a person with ``roles`` sees, given the token's branch claim (None when the
    token has none); ``None`` = no limit, an empty set = institution-level values only."""
    if claimed is not None:
        return claimed
    known = roles & set(ROLE_SCOPES)
    if known and known <= BRANCH_LIMITED_ROLES:
        return frozenset()
    return None
