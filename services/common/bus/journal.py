"""The on-disk log of the in-process bus: what makes an event answered 202 survive a crash.

The embedded mode keeps its bus in memory for speed, but a crash (SIGKILL, power cut of the
laptop) would otherwise lose every record not yet consumed and restart the offsets at 0 while
the services' SQLite files still hold the offsets they had committed, so they would skip the
new records. The journal appends every record, in the same synchronous call that assigns its
offset and before any consumer can see it, to a SQLite file (WAL mode, one transaction per
batch), and gives them back at start so offsets continue where they were. Group commits are
kept too, for consumers that rely on the bus's committed offsets rather than their own.

It is written with the standard library's ``sqlite3`` on the event loop's thread on purpose:
a batch is one short transaction, and writing it before the in-memory append is what keeps
"visible to a consumer" after "on disk". Everything is kept (no retention): the embedded mode
is for demos and trials, and its data directory is disposable.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from services.common.bus.base import Headers, Record, TopicPartition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


def _encode_headers(headers: Headers) -> str:
    return json.dumps([[name, value.hex()] for name, value in headers])


def _decode_headers(text: str) -> Headers:
    return tuple((name, bytes.fromhex(value)) for name, value in json.loads(text))


class Journal:
    """Records and group offsets of the in-process bus, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit off is explicit below: one transaction per batch
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives the process being killed
        # (it is in the WAL file); only an OS crash or power cut may lose the last ones.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def records(self, topic: str, partition: int) -> list[Record]:
        rows = self._db.execute(
            'SELECT "offset", key, value, headers, timestamp_ms FROM records'
            ' WHERE topic = ? AND partition = ? ORDER BY "offset"',
            (topic, partition),
        )
        return [
            Record(topic, partition, offset, key, value, _decode_headers(headers), ts)
            for offset, key, value, headers, ts in rows
        ]

    def group_offsets(self) -> dict[str, dict[TopicPartition, int]]:
        groups: dict[str, dict[TopicPartition, int]] = {}
        for group_id, topic, partition, offset in self._db.execute(
            'SELECT group_id, topic, partition, "offset" FROM group_offsets'
        ):
            groups.setdefault(group_id, {})[TopicPartition(topic, partition)] = offset
        return groups

    def append(self, records: Iterable[Record]) -> None:
        rows = [
            (r.topic, r.partition, r.offset, r.key, r.value, _encode_headers(r.headers),
             r.timestamp_ms)
            for r in records
        ]  # fmt: skip
        with self._transaction():
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        rows = [(group_id, tp.topic, tp.partition, o) for tp, o in offsets.items()]
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO group_offsets VALUES (?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN … COMMIT, ROLLBACK on error (sqlite3's own context manager only commits)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._db.execute("COMMIT" if error is None else "ROLLBACK")
