"""Leadership by a PostgreSQL session advisory lock: what the outbox relay, the indicator
emitter and the Fineract consumer share.

A session lock outlives transactions: it lives as long as the session of the connection that
took it, and the pool only rolls back a connection it takes back. Returned to the pool still
holding the lock (after a round that failed, the broker down), that connection kept every
instance, the one that took it included, from being elected again until the pool closed it:
the objectives' outbox and the indicator values were published no more, silently. So a lock
connection is never returned to the pool: :func:`discard` ends its session. And because a stuck
lock looks like a standby that waits, :class:`LeadershipWait` says at WARNING when a wait is long.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import database_errors
from services.common.errors import SpmError

log = logging.getLogger(__name__)

LEADERSHIP_PATIENCE_S = 300.0
"""How long an instance waits for its lock before a warning says so."""


async def try_lock(conn: AsyncConnection, lock_key: str) -> bool:
    """Take the session advisory lock ``lock_key`` (a ``hashtext`` key) if no session holds it;
    commits, so the lock is all the connection keeps."""
    got = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": lock_key})
    await conn.commit()
    return bool(got)


async def discard(conn: AsyncConnection, lock_key: str | None) -> None:
    """End ``conn``'s session for good (invalidated, not returned to the pool), and with it any
    session advisory lock it holds. ``lock_key`` (a ``hashtext`` key), when the lock is held, is
    unlocked first so that another instance wins it now, not once the server sees the close.
    Raises nothing but a cancellation, and even then the session ends: the connection may be
    the reason the caller gives up, and a task stopped while unlocking must not pool the lock."""
    try:
        if lock_key is not None:
            with contextlib.suppress(SpmError, OSError, SQLAlchemyError), database_errors():
                # a statement cancelled at shutdown leaves the transaction invalid: roll it
                # back, or the unlock raises PendingRollbackError
                await conn.rollback()
                unlock = text("SELECT pg_advisory_unlock(hashtext(:k))")
                await conn.execute(unlock, {"k": lock_key})
                await conn.commit()
    finally:
        with contextlib.suppress(SpmError, OSError, SQLAlchemyError), database_errors():
            await conn.invalidate()


class LeadershipWait:
    """Tells at WARNING that ``what`` has waited ``patience_s`` for its lock, then again each time
    the wait has doubled: a standby waits for good, legitimately, but so does every instance when
    the lock is stuck, and only the operator can tell the two apart (``pg_locks`` names the
    session that holds it)."""

    def __init__(
        self,
        what: str,
        patience_s: float = LEADERSHIP_PATIENCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._patience_s = patience_s
        self._clock = clock
        self._since: float | None = None
        self._next = patience_s
        self.warned = 0
        """Warnings given in the current wait (observability, tests)."""

    def lost(self) -> None:
        """Another instance holds the lock (this attempt did not win it)."""
        now = self._clock()
        if self._since is None:
            self._since, self._next, self.warned = now, self._patience_s, 0
            return
        waited = now - self._since
        if waited >= self._next:
            log.warning(
                "%s: waiting %.0f s for leadership; another session holds the lock"
                " (if no other instance runs, a stuck one: see pg_locks)",
                self._what,
                waited,
            )
            self.warned += 1
            self._next = waited * 2

    def won(self) -> None:
        """This instance holds the lock: a later wait starts afresh."""
        if self._since is not None and self.warned:
            log.info("%s: leader after waiting %.0f s", self._what, self._clock() - self._since)
        self._since = None
