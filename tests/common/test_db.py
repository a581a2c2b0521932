from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import (
    SQLITE_LOCK_POLL_MS,
    DatabaseError,
    create_engine,
    database_errors,
    is_sqlite,
    migrate,
    service_database_url,
    session_factory,
    translate_error,
)
from services.common.errors import SpmError
from services.common.offsets import dedup_table, offsets_table
from tests.common.conftest import REVISION_0002, write_revision
from tests.schemas import drop_schemas


@pytest.fixture
async def engine(db_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url, db_schema)
    yield engine
    await engine.dispose()


def _schema_of(engine: AsyncEngine, schema: str) -> str | None:
    return None if is_sqlite(engine) else schema


async def _table_names(engine: AsyncEngine, schema: str | None) -> set[str]:
    async with engine.connect() as conn:
        names: list[str] = await conn.run_sync(lambda c: inspect(c).get_table_names(schema=schema))
    return set(names)


async def _version(engine: AsyncEngine, schema: str) -> list[str]:
    version = Table("alembic_version", MetaData(schema=schema), Column("version_num", String))
    async with engine.connect() as conn:
        return list((await conn.execute(select(version.c.version_num))).scalars())


def _widgets(schema: str) -> Table:
    return Table("widgets", MetaData(schema=schema), Column("id", Integer), Column("name", String))


async def test_migrate_from_empty_then_rerun_is_noop(
    engine: AsyncEngine, db_url: str, db_schema: str, sample_migrations: Path
) -> None:
    await migrate(db_url, db_schema, sample_migrations)

    tables = await _table_names(engine, _schema_of(engine, db_schema))
    assert {"widgets", "consumer_offsets", "processed_events", "alembic_version"} <= tables
    assert await _version(engine, db_schema) == ["0001"]
    widgets = _widgets(db_schema)
    async with engine.begin() as conn:
        await conn.execute(widgets.insert().values(id=1, name="kept"))

    await migrate(db_url, db_schema, sample_migrations)

    assert await _version(engine, db_schema) == ["0001"]
    async with engine.connect() as conn:
        assert (await conn.execute(select(widgets.c.name))).scalars().all() == ["kept"]


async def test_migrate_applies_only_new_revisions(
    engine: AsyncEngine, db_url: str, db_schema: str, sample_migrations: Path
) -> None:
    await migrate(db_url, db_schema, sample_migrations)
    widgets = _widgets(db_schema)
    async with engine.begin() as conn:
        await conn.execute(widgets.insert().values(id=1, name="kept"))

    write_revision(sample_migrations, "0002_colour.py", REVISION_0002)
    await migrate(db_url, db_schema, sample_migrations)

    assert await _version(engine, db_schema) == ["0002"]
    schema = _schema_of(engine, db_schema)
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: inspect(c).get_columns("widgets", schema=schema))
        names = (await conn.execute(select(widgets.c.name))).scalars().all()
    assert "colour" in {column["name"] for column in columns}
    assert names == ["kept"]


async def test_sample_migration_matches_the_table_helpers(
    engine: AsyncEngine, db_url: str, db_schema: str, sample_migrations: Path
) -> None:
    """Autogenerate finds nothing to do: the helpers' tables equal what a migration creates."""
    await migrate(db_url, db_schema, sample_migrations)
    schema = _schema_of(engine, db_schema)
    metadata = MetaData(schema=schema)
    offsets_table(metadata)
    dedup_table(metadata)
    Table(
        "widgets",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
    )

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": schema is not None,
                "include_name": lambda name, type_, _: type_ != "schema" or name == schema,
                "include_object": lambda obj, name, *_: name != "alembic_version",
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


@pytest.mark.postgres
async def test_postgres_tables_land_in_the_service_schema(
    postgres_url: str, unique: str, sample_migrations: Path
) -> None:
    first, second = f"test_{unique}_a", f"test_{unique}_b"
    engine = create_engine(postgres_url, first)
    try:
        await migrate(postgres_url, first, sample_migrations)
        await migrate(postgres_url, second, sample_migrations)

        expected = {"widgets", "consumer_offsets", "processed_events", "alembic_version"}
        assert await _table_names(engine, first) == expected
        assert await _table_names(engine, second) == expected
        assert not expected & await _table_names(engine, "public")
        async with engine.begin() as conn:
            await conn.execute(_widgets(first).insert().values(id=1, name="only in first"))
            count_second = select(func.count()).select_from(_widgets(second))
            count = (await conn.execute(count_second)).scalar()
        assert count == 0
    finally:
        await engine.dispose()
        await drop_schemas(postgres_url, first, second)


@pytest.mark.postgres
async def test_concurrent_migrations_of_one_schema_take_turns(
    postgres_url: str, unique: str, sample_migrations: Path
) -> None:
    schema = f"test_{unique}"
    engine = create_engine(postgres_url, schema)
    try:
        await asyncio.gather(*(migrate(postgres_url, schema, sample_migrations) for _ in range(3)))
        assert await _version(engine, schema) == ["0001"]
    finally:
        await engine.dispose()
        await drop_schemas(postgres_url, schema)


async def test_session_factory_keeps_objects_readable_after_commit(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    assert factory.kw["expire_on_commit"] is False
    async with factory() as session:
        assert (await session.execute(text("SELECT 1"))).scalar() == 1


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'nested' / 'spm.db'}", "svc")
    try:
        assert is_sqlite(engine)
        async with engine.connect() as conn:
            pragmas = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, SQLITE_LOCK_POLL_MS]  # the rest of the wait is asyncio's
    finally:
        await engine.dispose()


async def test_sqlite_transactions_cover_ddl(tmp_path: Path) -> None:
    """We emit BEGIN ourselves, so DDL rolls back with the rest (sqlite3 would autocommit it)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}", "svc")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER)")
            await conn.rollback()
        assert await _table_names(engine, None) == set()
    finally:
        await engine.dispose()


async def test_constraint_violation_is_not_retriable(
    engine: AsyncEngine, db_url: str, db_schema: str, sample_migrations: Path
) -> None:
    await migrate(db_url, db_schema, sample_migrations)
    widgets = _widgets(db_schema)
    with pytest.raises(DatabaseError) as raised, database_errors():
        async with engine.begin() as conn:
            await conn.execute(widgets.insert(), [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
    assert isinstance(raised.value, SpmError)
    assert raised.value.retriable is False
    assert "'a'" not in str(raised.value)  # parameters never reach messages


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_serialization_failure_and_deadlock_are_retriable(
    postgres_url: str, sqlstate: str
) -> None:
    engine = create_engine(postgres_url, "svc")
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{sqlstate}'; END $$"
    try:
        with pytest.raises(DatabaseError) as raised, database_errors():
            async with engine.connect() as conn:
                await conn.execute(text(raise_it))
    finally:
        await engine.dispose()
    assert raised.value.retriable is True
    assert raised.value.code == sqlstate


@pytest.mark.postgres
async def test_lost_connection_is_retriable(postgres_url: str) -> None:
    engine = create_engine(postgres_url, "svc")
    try:
        with pytest.raises(DatabaseError) as raised, database_errors():
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    finally:
        await engine.dispose()
    assert raised.value.retriable is True


async def test_unreachable_server_is_retriable(unused_tcp_port: int) -> None:
    engine = create_engine(f"postgresql://spm@127.0.0.1:{unused_tcp_port}/spm", "svc")
    try:
        with pytest.raises(DatabaseError) as raised, database_errors():
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    assert raised.value.retriable is True


async def test_locked_sqlite_database_is_retriable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"
    holder = create_engine(url, "svc")
    monkeypatch.setattr("services.common.db.SQLITE_BUSY_TIMEOUT_MS", 0)  # fail at once
    waiter = create_engine(url, "svc")
    try:
        async with holder.begin() as held:
            await held.exec_driver_sql("CREATE TABLE t (id INTEGER)")
            with pytest.raises(DatabaseError) as raised, database_errors():
                async with waiter.begin() as conn:
                    await conn.exec_driver_sql("CREATE TABLE u (id INTEGER)")
    finally:
        await holder.dispose()
        await waiter.dispose()
    assert raised.value.retriable is True
    assert raised.value.code == "SQLITE_BUSY"


async def test_a_transaction_waiting_for_the_sqlite_lock_stops_waiting_when_cancelled(
    tmp_path: Path,
) -> None:
    """Ctrl-C at shutdown cancels requests that wait for a SQLite lock: they must let go at once
    (SQLite's own busy wait kept the connection's thread, and the shutdown, for up to 60 s)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"
    holder = create_engine(url, "svc")
    waiter = create_engine(url, "svc")
    loop = asyncio.get_running_loop()

    async def insert() -> None:
        async with waiter.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO t VALUES (2)")

    try:
        async with holder.begin() as held:
            await held.exec_driver_sql("CREATE TABLE t (id INTEGER)")
            task = asyncio.create_task(insert())
            done, _ = await asyncio.wait({task}, timeout=1.0)
            assert not done, "the lock is held: the insert must still be waiting"
            cancelled_at = loop.time()
            task.cancel()
            await asyncio.wait({task}, timeout=10.0)
            assert task.cancelled()
            assert loop.time() - cancelled_at < 1.0
            await held.exec_driver_sql("INSERT INTO t VALUES (1)")
        async with waiter.begin() as conn:  # nothing of the cancelled attempt holds the lock
            await conn.exec_driver_sql("INSERT INTO t VALUES (3)")
            rows = (await conn.exec_driver_sql("SELECT id FROM t ORDER BY id")).scalars().all()
        assert rows == [1, 3]
    finally:
        await holder.dispose()
        await waiter.dispose()


async def test_sqlite_writers_wait_for_each_other(tmp_path: Path) -> None:
    """A transaction that reads, then writes, waits for a concurrent writer instead of failing."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}"
    engine = create_engine(url, "svc")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE n (v INTEGER)")
            await conn.exec_driver_sql("INSERT INTO n VALUES (0)")

        async def increment() -> None:
            async with engine.begin() as conn:
                value = (await conn.exec_driver_sql("SELECT v FROM n")).scalar_one()
                await asyncio.sleep(0.01)
                await conn.exec_driver_sql("UPDATE n SET v = ?", (value + 1,))

        await asyncio.gather(*(increment() for _ in range(10)))
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT v FROM n")).scalar_one() == 10
    finally:
        await engine.dispose()


def test_translate_error_of_plain_os_errors() -> None:
    error = translate_error(ConnectionResetError("peer went away"))
    assert error.retriable is True
    assert "peer went away" in str(error)
    assert translate_error(PermissionError("read-only directory")).retriable is False


def test_service_database_url_gives_each_service_its_own_sqlite_file() -> None:
    assert (
        service_database_url("sqlite+aiosqlite:///./var/spm.db", "indicators")
        == "sqlite+aiosqlite:///var/spm-indicators.db"
    )
    assert service_database_url("sqlite+aiosqlite://", "alerts") == "sqlite+aiosqlite://"
    pg = "postgresql+asyncpg://spm:secret@db:5432/spm"
    assert service_database_url(pg, "alerts") == pg


def test_create_engine_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="mysql"):
        create_engine("mysql://spm@localhost/spm", "svc")
