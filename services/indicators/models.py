"""Tables of the indicator service (schema ``indicators`` on PostgreSQL; none on SQLite).

``unit`` is the input partition a row belongs to: the partition number for clients/loans (the two
topics are co-partitioned by client), 1000 + the partition number for complaints. Every row an
engine instance writes belongs to a unit it owns, so instances never contend; reads sum units.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, SmallInteger, String, Table, Text

from services.common.db import UtcDateTime
from services.common.offsets import dedup_table, offsets_table

SCHEMA = "indicators"
COMPLAINT_UNIT_BASE = 1000

metadata = MetaData(schema=SCHEMA)

consumer_offsets = offsets_table(metadata)
processed_events = dedup_table(metadata)

facts = Table(
    "facts",
    metadata,
    Column("unit", Integer, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("kind", SmallInteger, nullable=False),
    Column("source", String, nullable=False),
    Column("body", Text, nullable=False),
)
"""Accepted (non-duplicate) events per unit in arrival order: the state is rebuilt from them."""

deltas = Table(
    "deltas",
    metadata,
    Column("unit", Integer, primary_key=True),
    Column("component", String(120), primary_key=True),
    Column("set_id", BigInteger, primary_key=True),
    Column("day", Integer, primary_key=True),  # date.toordinal()
    Column("value", BigInteger, nullable=False),
)
"""Additive daily deltas; a stock on D is the sum over days <= D, a flow the sum over a window.
A row counts in every segment of its segment set (an entity is in 2-5 segments at once, so this
stores a fifth of the rows a per-segment layout would)."""

segment_sets = Table(
    "segment_sets",
    metadata,
    Column("set_id", BigInteger, primary_key=True),
    Column("segment", String(220), primary_key=True),
)
"""Members of each segment set; ``set_id`` is a hash of the members, so instances agree on it."""

resolutions = Table(
    "resolutions",
    metadata,
    Column("unit", Integer, primary_key=True),
    Column("source", String, primary_key=True),
    Column("complaint_id", String, primary_key=True),
    Column("branch", String(220), nullable=False),
    Column("resolved_day", Integer, nullable=False, index=True),
    Column("micros", BigInteger, nullable=False),
)
"""Resolution time of every opened and resolved complaint (quantiles need the distribution)."""

seen_values = Table(
    "seen_values",
    metadata,
    Column("dimension", String(40), primary_key=True),
    Column("value", String(200), primary_key=True),
)
"""Every branch, product and exit reason code seen in accepted events (segments to list)."""

watermarks = Table(
    "watermarks",
    metadata,
    Column("unit", Integer, primary_key=True),
    Column("max_day", Integer, nullable=False),
)
"""Largest business day seen per unit; the business date is the max over units and the tick."""

clock = Table(
    "clock",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("day", Integer, nullable=False),
)
"""The daily tick's date (name ``tick``)."""

parameters = Table(
    "parameters",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("value", Text, nullable=False),
)
"""The settings the stored aggregates were computed with (recorded by the first start)."""

published = Table(
    "published",
    metadata,
    Column("code", String(120), primary_key=True),
    Column("segment", String(220), primary_key=True),
    Column("as_of", Integer, nullable=False),
    Column("value", Text),
    Column("numerator", Text),
    Column("denominator", Text),
    Column("n", BigInteger),
    Column("published_at", UtcDateTime, nullable=False),
)
"""The last value the emitter published per indicator and segment."""
