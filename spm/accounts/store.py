"""Local accounts and sessions in the database: argon2id hashes, lock-out, revocable sessions.

A session's id is 32 random bytes in the cookie; the table keeps only its SHA-256, so a copy of
the database signs nobody in. A person signed in through the identity provider has no account
here: their session row (``oidc_sessions``) holds who the provider said they are and its tokens
(a copy of the database holds those: protect it like the provider's own session store).
Disabling an account or resetting its password deletes its sessions, so it takes effect on the
next request, in every browser.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import migrate_service, open_service_engine
from services.common.identity.roles import BRANCH_LIMITED_ROLES, ROLE_SCOPES
from spm.accounts import models as m
from spm.accounts.config import DashboardSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MIN_PASSWORD = 12
ROLES = tuple(ROLE_SCOPES)

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Verified against when the username is unknown, so timing does not tell which names exist."""


class AccountError(ValueError):
    """A refused account operation; ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str
    role: str
    branches: tuple[str, ...] | None
    disabled: bool
    locked_until: datetime | None
    provider_subject: str | None = None
    """The ``sub`` of a person signed in through the identity provider; None: a local account."""

    @property
    def subject(self) -> str:
        return self.provider_subject or f"local:{self.username}"

    def public(self) -> dict[str, Any]:
        """What the dashboard may show about the account (never the hash)."""
        return {
            "username": self.username,
            "name": self.display_name,
            "role": self.role,
            "branches": list(self.branches) if self.branches is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Tokens:
    """An identity provider's tokens of one session: on the server only, never in a browser."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    access_expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    csrf: str
    user: User
    expires_at: datetime
    tokens: Tokens | None = None
    """The provider's tokens when the person signed in through it; None: a local account."""


class Locked(Exception):
    """The account is locked after too many wrong passwords."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"locked until {until.isoformat()}")
        self.until = until


def hash_session(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _user(row: Any) -> User:
    branches = row.branches
    return User(
        row.username,
        row.display_name,
        row.role,
        tuple(branches) if branches is not None else None,
        bool(row.disabled),
        row.locked_until,
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"shorter than {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("password", "longer than 1024 characters")


def check_fields(username: str, role: str, branches: list[str] | None) -> None:
    if not USERNAME.fullmatch(username):
        raise AccountError("username", "lower-case letters, digits, '.', '_', '-' (1-64)")
    if role not in ROLE_SCOPES:
        raise AccountError("role", f"one of {', '.join(ROLES)}")
    if role in BRANCH_LIMITED_ROLES and not branches:
        raise AccountError("branches", f"a {role} needs the branches they manage")
    for branch in branches or []:
        if not BRANCH.fullmatch(branch):
            raise AccountError("branches", f"{branch!r} is not a branch id")


class AccountStore:
    """Accounts and sessions of one database (``accounts`` schema, or its own SQLite file)."""

    def __init__(self, engine: AsyncEngine, settings: DashboardSettings) -> None:
        self.engine = engine
        self.settings = settings

    @classmethod
    async def open(cls, settings: DashboardSettings) -> AccountStore:
        schema = settings.accounts_db_schema
        await migrate_service(settings.database_url, schema, MIGRATIONS_DIR)
        return cls(open_service_engine(settings.database_url, schema, m.SCHEMA), settings)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    # --- accounts ------------------------------------------------------------------------------

    async def add(
        self,
        username: str,
        display_name: str,
        role: str,
        password: str,
        branches: list[str] | None = None,
    ) -> User:
        check_fields(username, role, branches)
        check_password(password)
        now = _now()
        async with self.engine.begin() as conn:
            exists = await conn.scalar(
                sa.select(m.users.c.username).where(m.users.c.username == username)
            )
            if exists:
                raise AccountError("username", "already exists")
            await conn.execute(
                m.users.insert().values(
                    username=username,
                    display_name=display_name or username,
                    role=role,
                    branches=branches,
                    password_hash=_hasher.hash(password),
                    disabled=False,
                    failed_logins=0,
                    locked_until=None,
                    created_at=now,
                    updated_at=now,
                )
            )
        return User(username, display_name or username, role, _tuple(branches), False, None)

    async def get(self, username: str) -> User | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(m.users).where(m.users.c.username == username))
            ).first()
        return _user(row) if row else None

    async def list(self) -> list[User]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(m.users).order_by(m.users.c.username))).all()
        return [_user(r) for r in rows]

    async def set_disabled(self, username: str, disabled: bool) -> None:
        async with self.engine.begin() as conn:
            await self._update(conn, username, disabled=disabled)
            if disabled:
                await conn.execute(m.sessions.delete().where(m.sessions.c.username == username))

    async def reset_password(self, username: str, password: str) -> None:
        """A new password; it also unlocks the account and signs it out everywhere."""
        check_password(password)
        async with self.engine.begin() as conn:
            await self._update(
                conn,
                username,
                password_hash=_hasher.hash(password),
                failed_logins=0,
                locked_until=None,
            )
            await conn.execute(m.sessions.delete().where(m.sessions.c.username == username))

    async def _update(self, conn: Any, username: str, **values: Any) -> None:
        result = await conn.execute(
            m.users.update()
            .where(m.users.c.username == username)
            .values(**values, updated_at=_now())
        )
        if result.rowcount == 0:
            raise AccountError("username", "no such account")

    # --- signing in ----------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> User | None:
        """The account when the password is right; None when not (or unknown, or disabled);
        :class:`Locked` while locked. The ``dashboard_lockout_failures``-th wrong password in a
        row locks it for ``dashboard_lockout_s``."""
        locked_until: datetime | None = None
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(sa.select(m.users).where(m.users.c.username == username))
            ).first()
            if row is None:
                _verify(_DUMMY_HASH, password)
                return None
            now = _now()
            if row.locked_until is not None and row.locked_until > now:
                raise Locked(row.locked_until)  # nothing written: the rollback loses nothing
            if _verify(row.password_hash, password) and not row.disabled:
                values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
                if _hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = _hasher.hash(password)
                await self._update(conn, username, **values)
                return _user(row)
            failures = row.failed_logins + 1
            if failures >= self.settings.dashboard_lockout_failures:
                locked_until = now + timedelta(seconds=self.settings.dashboard_lockout_s)
                failures = 0
                await conn.execute(m.sessions.delete().where(m.sessions.c.username == username))
            await self._update(conn, username, failed_logins=failures, locked_until=locked_until)
        if locked_until is not None:
            raise Locked(locked_until)  # after the commit, so the lock is kept
        return None

    def _new_session(self, user: User, tokens: Tokens | None = None) -> tuple[str, Session]:
        """(the cookie's value, the session): only the value's hash is ever stored."""
        session_id = secrets.token_urlsafe(32)
        expires_at = _now() + timedelta(seconds=self.settings.dashboard_session_ttl_s)
        return session_id, Session(
            hash_session(session_id), secrets.token_urlsafe(32), user, expires_at, tokens
        )

    async def open_session(self, user: User) -> tuple[str, Session]:
        """A new session: (the cookie's value, the session)."""
        session_id, session = self._new_session(user)
        now = _now()
        async with self.engine.begin() as conn:
            # expired sessions go at the next sign-in: the table holds live ones only
            await conn.execute(m.sessions.delete().where(m.sessions.c.expires_at <= now))
            await conn.execute(
                m.sessions.insert().values(
                    id_hash=session.id_hash,
                    username=user.username,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return session_id, session

    async def open_provider_session(self, user: User, tokens: Tokens) -> tuple[str, Session]:
        """A new session of a person the identity provider vouched for (no local account)."""
        session_id, session = self._new_session(user, tokens)
        now = _now()
        async with self.engine.begin() as conn:
            await conn.execute(m.oidc_sessions.delete().where(m.oidc_sessions.c.expires_at <= now))
            await conn.execute(
                m.oidc_sessions.insert().values(
                    id_hash=session.id_hash,
                    subject=user.subject,
                    username=user.username,
                    display_name=user.display_name,
                    role=user.role,
                    branches=list(user.branches) if user.branches is not None else None,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                    **_token_values(tokens),
                )
            )
        return session_id, session

    async def store_tokens(self, session: Session, tokens: Tokens) -> None:
        """The refreshed tokens of a provider session."""
        async with self.engine.begin() as conn:
            await conn.execute(
                m.oidc_sessions.update()
                .where(m.oidc_sessions.c.id_hash == session.id_hash)
                .values(**_token_values(tokens))
            )

    async def session(self, session_id: str) -> Session | None:
        """The live session of a cookie's value: not expired, its account enabled."""
        return await self._local_session(session_id) or await self._provider_session(session_id)

    async def _provider_session(self, session_id: str) -> Session | None:
        query = sa.select(m.oidc_sessions).where(
            m.oidc_sessions.c.id_hash == hash_session(session_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.expires_at <= _now():
            return None
        user = User(
            row.username,
            row.display_name,
            row.role,
            _tuple(row.branches),
            False,
            None,
            row.subject,
        )
        tokens = Tokens(row.access_token, row.refresh_token, row.id_token, row.access_expires_at)
        return Session(row.id_hash, row.csrf, user, row.expires_at, tokens)

    async def _local_session(self, session_id: str) -> Session | None:
        query = (
            sa.select(m.sessions, m.users)
            .join(m.users, m.users.c.username == m.sessions.c.username)
            .where(m.sessions.c.id_hash == hash_session(session_id))
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.disabled or row.expires_at <= _now():
            return None
        return Session(row.id_hash, row.csrf, _user(row), row.expires_at)

    async def close_session(self, session_id: str) -> None:
        id_hash = hash_session(session_id)
        async with self.engine.begin() as conn:
            await conn.execute(m.sessions.delete().where(m.sessions.c.id_hash == id_hash))
            await conn.execute(m.oidc_sessions.delete().where(m.oidc_sessions.c.id_hash == id_hash))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_values(tokens: Tokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "access_expires_at": tokens.access_expires_at,
    }


def _tuple(branches: list[str] | None) -> tuple[str, ...] | None:
    return tuple(branches) if branches is not None else None
