"""The database layer every service shares: engines, sessions, error translation, migrations.

Each service owns one PostgreSQL schema and declares its tables with ``MetaData(schema=...)``.
SQLite (embedded mode) has no schemas, so the engine maps the service's schema away with
``schema_translate_map`` and the same table definitions work on both. SQLite therefore keeps
every service's tables in one namespace: give each service its own file
(:func:`service_database_url`) so that, say, two services' ``consumer_offsets`` never collide.

Infrastructure errors are translated here into :class:`DatabaseError`, which says whether
trying again may succeed. The caller owns the transaction: nothing here commits behind its back.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import sqlalchemy.exc as sa_exc
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, DateTime, Dialect, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateSchema
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

from services.common.errors import Unavailable
from services.common.transport import database_connect_args

SQLITE_BUSY_TIMEOUT_MS = 60_000
"""How long a SQLite transaction waits for the write lock before failing (retriable)."""
SQLITE_LOCK_POLL_MS = 50
"""How long SQLite itself waits for the lock in one attempt (its busy timeout): the rest of the
wait is asyncio sleeps between attempts, so a cancelled request stops waiting at once."""

# SQLSTATEs worth a retry: serialization failure, deadlock, lock timeout, server shutting down or
# starting, too many connections. Class 08 (connection exception) is retriable as a whole.
_RETRIABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# OSErrors about local files (a SQLite path) will not heal by themselves; network ones may.
_LOCAL_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class DatabaseError(Unavailable):
    """A database operation failed; ``code`` is the SQLSTATE or SQLite error name when known.
    A route that meets one answers 503 naming the database (its message is never shown)."""

    dependency = "database"

    def __init__(self, message: str, *, retriable: bool, code: str | None = None) -> None:
        super().__init__(message, retriable=retriable)
        self.code = code


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on both backends, stored in UTC (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a UTC offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def create_engine(url: str, schema: str) -> AsyncEngine:
    """An async engine for one service: asyncpg for PostgreSQL, aiosqlite for SQLite.

    Plain ``postgresql://`` and ``sqlite://`` URLs get the async driver. Parameters never appear
    in error messages (they may hold personal data).
    """
    sa_url = _async_url(url)
    if sa_url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(sa_url, schema)
    engine = create_async_engine(
        sa_url,
        hide_parameters=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=30,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={
            "timeout": 10,
            "server_settings": {"application_name": f"spm-{schema}"},
            **database_connect_args(),
        },
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_translate)
    event.listen(engine.sync_engine, "handle_error", _translate_outage)
    return engine


def _connect_or_translate(
    dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any
) -> Any:
    """Connect; a server that cannot be reached is a retriable :class:`DatabaseError` here,
    where every session and engine gets its connections, so no caller sees asyncpg's bare
    ``OSError`` (a route that did not translate it answered 500 while the database was down)."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if _cancelling():
            raise  # a connect cut off by a shutdown is no outage: the task must end
        raise translate_error(exc) from exc


def _cancelling() -> bool:
    """Whether the running task is being cancelled: an error raised on the way out of a
    cancelled call must not become a retriable :class:`DatabaseError`, or a loop that retries
    such errors would swallow the cancellation and never stop."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop (a synchronous caller)
        return False
    return task is not None and task.cancelling() > 0


def _translate_outage(context: ExceptionContext) -> None:
    """An error of a statement that says the server is gone (lost connection, shutting down,
    too many connections) becomes a :class:`DatabaseError`; other errors (constraints, syntax)
    stay SQLAlchemy's for the code that expects them."""
    orig = context.original_exception
    if isinstance(orig, asyncio.CancelledError) or _cancelling():
        return  # see _cancelling
    code = _error_code(orig)
    outage = code is not None and (code.startswith("08") or code in _OUTAGE_SQLSTATES)
    if context.is_disconnect or outage or isinstance(orig, OSError):
        raise translate_error(context.sqlalchemy_exception or orig) from orig


def open_service_engine(database_url: str, schema: str, tables: str) -> AsyncEngine:
    """The engine of one service: its tables, declared in schema ``tables`` (``models.SCHEMA``),
    live in the configured ``schema`` on PostgreSQL (tests and side-by-side installs use one
    each) and in the service's own SQLite file (:func:`service_database_url`) without a schema.
    Dispose it when done (the mapped engine shares the pool of the one it derives from)."""
    engine = create_engine(service_database_url(database_url, schema), tables)
    if is_sqlite(engine) or schema == tables:
        return engine
    return engine.execution_options(schema_translate_map={tables: schema})


async def ping(engine: AsyncEngine | None) -> bool:
    """Readiness: the database answers ``SELECT 1`` (False before the engine exists and while
    the database is unreachable; a bug still raises)."""
    if engine is None:
        return False
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (DatabaseError, sa_exc.DBAPIError, sa_exc.TimeoutError, OSError):
        return False
    return True


class Sessions:
    """The sessions of one service, whose database errors are translated where they are
    opened: a caller (a route, a consumer) never wraps its own calls in a translation.
    ``on_commit`` runs after each committed :meth:`write` (an outbox relay's wake-up)."""

    def __init__(self, engine: AsyncEngine, on_commit: Callable[[], None] | None = None) -> None:
        self.factory = session_factory(engine)
        self.on_commit = on_commit

    def __call__(self) -> AsyncSession:
        """A plain session (the caller translates): for code that takes a session factory."""
        return self.factory()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (and writes the caller commits itself)."""
        with database_errors():
            async with self.factory() as session:
                yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed on success."""
        with database_errors():
            async with self.factory() as session, session.begin():
                yield session
        if self.on_commit is not None:
            self.on_commit()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no implicit reload on access)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_sqlite(bind: AsyncEngine | AsyncConnection | AsyncSession) -> bool:
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name == "sqlite"
    return bind.dialect.name == "sqlite"


def upsert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ``on_conflict_do_*`` on the session's backend."""
    return sqlite.insert(table) if is_sqlite(session) else postgresql.insert(table)


_T = TypeVar("_T")
CHUNK_ROWS = 1000
"""Rows per statement. Each row binds a few parameters; SQLite and asyncpg cap a statement at
32,766 and 32,767."""


def chunks(rows: Sequence[_T], size: int = CHUNK_ROWS) -> Iterator[Sequence[_T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def service_database_url(url: str, schema: str) -> str:
    """The URL a service should use: unchanged for PostgreSQL; for a SQLite file, a sibling file
    per service (``var/spm.db`` → ``var/spm-indicators.db``), since SQLite has no schemas."""
    sa_url = make_url(url)
    database = sa_url.database
    if sa_url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    path = Path(database)
    per_service = path.with_name(f"{path.stem}-{schema}{path.suffix}")
    return sa_url.set(database=str(per_service)).render_as_string(hide_password=False)


def translate_error(exc: BaseException) -> DatabaseError:
    """The :class:`DatabaseError` for a driver, pool or network error."""
    orig = _original(exc)
    code = _error_code(orig)
    return DatabaseError(
        f"{type(orig).__name__}: {orig}"[:1000], retriable=_is_retriable(exc, code), code=code
    )


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate infrastructure errors raised inside the block (also around ``await``)."""
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, sa_exc.DisconnectionError, OSError) as exc:
        raise translate_error(exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # asyncpg's own calls (COPY)
        raise translate_error(exc) from exc


async def prepare_schema(conn: AsyncConnection, schema: str) -> None:
    """Serialise migrations of one schema and create it if absent (PostgreSQL; no-op on SQLite).

    The advisory lock is held until the transaction ends, so concurrent starters take turns.
    """
    if conn.dialect.name == "sqlite":
        return
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"spm-migrate:{schema}"}
    )
    await conn.execute(CreateSchema(schema, if_not_exists=True))


async def migrate_service(database_url: str, schema: str, migrations_dir: Path) -> None:
    """:func:`migrate` a service's ``schema`` where :func:`open_service_engine` opens it."""
    await migrate(service_database_url(database_url, schema), schema, migrations_dir)


async def migrate(url: str, schema: str, migrations_dir: Path) -> None:
    """Upgrade one service's schema to the newest revision (alembic ``upgrade head``).

    Runs in one transaction; the version table lives in the service's schema. The service's
    ``migrations/env.py`` must call :func:`services.common.migrations.run_migrations`.
    """
    await run_in_schema(url, schema, _upgrade_head, schema, migrations_dir)


async def run_in_schema(url: str, schema: str, fn: Callable[..., object], *args: Any) -> None:
    """``fn(connection, *args)`` in one transaction, after :func:`prepare_schema`: the body of a
    migration run, at start-up (:func:`migrate`) or from the ``alembic`` command line."""
    engine = create_engine(url, schema)
    try:
        with database_errors():
            async with engine.begin() as conn:
                await prepare_schema(conn, schema)
                await conn.run_sync(fn, *args)
    finally:
        await engine.dispose()


def alembic_config(schema: str, migrations_dir: Path) -> Config:
    """An alembic configuration built in code: no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["schema"] = schema
    return config


def _upgrade_head(conn: Connection, schema: str, migrations_dir: Path) -> None:
    config = alembic_config(schema, migrations_dir)
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _async_url(url: str) -> URL:
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "postgresql":
        return sa_url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return sa_url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r}: use postgresql or sqlite")


def _create_sqlite_engine(sa_url: URL, schema: str) -> AsyncEngine:
    database = sa_url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        sa_url,
        hide_parameters=True,
        execution_options={"schema_translate_map": {schema: None}},
    )
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    # sqlite3's legacy mode defers BEGIN until the first write; we emit BEGIN IMMEDIATE ourselves
    # (_on_sqlite_begin) so reads, DDL and savepoints belong to the transaction, and so a
    # transaction that reads before it writes waits (busy_timeout) for the write lock instead of
    # failing with "database is locked" when it tries to upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # The first switch of a new file to WAL takes an exclusive lock: wait for it in full.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_LOCK_POLL_MS}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    """Take the write lock, waiting up to ``SQLITE_BUSY_TIMEOUT_MS`` in short attempts.

    SQLite's own busy wait blocks the connection's thread and cannot be interrupted: a request
    cancelled while waiting (Ctrl-C at shutdown) kept its connection busy, and the shutdown
    waited for it, up to the whole busy timeout. Between attempts of ``SQLITE_LOCK_POLL_MS`` this
    waits with asyncio instead, where a cancellation ends the wait at once (the greenlet that
    runs this event hook can await).
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sa_exc.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        await_(asyncio.sleep(pause))
        pause = min(pause * 2, 0.1)


def _is_busy(exc: BaseException) -> bool:
    orig = _original(exc)
    code = getattr(orig, "sqlite_errorcode", 0) & 0xFF
    return isinstance(orig, sqlite3.Error) and code in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _original(exc: BaseException) -> BaseException:
    """The driver's exception under SQLAlchemy's wrapper."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def _error_code(orig: BaseException) -> str | None:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate
    name = getattr(orig, "sqlite_errorname", None)
    return name if isinstance(name, str) else None


def _is_retriable(exc: BaseException, code: str | None) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _original(exc)
    if isinstance(orig, _LOCAL_OS_ERRORS):
        return False
    if isinstance(orig, sa_exc.TimeoutError | sa_exc.DisconnectionError | OSError):
        return True
    if isinstance(orig, sqlite3.Error):
        return _is_busy(orig)
    return code is not None and (code in _RETRIABLE_SQLSTATES or code.startswith("08"))
