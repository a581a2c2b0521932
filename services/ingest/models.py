"""Tables of the ingest service (PostgreSQL schema ``ingest``; SQLite maps the schema away)."""

from __future__ import annotations

from sqlalchemy import MetaData

from services.common.offsets import dedup_table
from services.ingest.config import SCHEMA

metadata = MetaData(schema=SCHEMA)

ingested_events = dedup_table(metadata, "ingested_events", content_hash=True)
"""Every (source, id) published with a hash of its content, so a repeat within the retention is
reported as a duplicate, and the same id with other content as a conflict."""
