"""CSV backfills through the ingest pipeline (``spm import csv``).

Rows become input events by a mapping (:mod:`services.ingest.mapping`) and go through the same
validation, pseudonymisation, dedup and publishing as HTTP events — in-process, against the
Kafka and database of the settings (so the importer needs the pepper; no API key). Event ids are
deterministic per row (an ``id`` template, or a keyed hash of the mapped values), so importing
the same file again adds nothing: its rows come back as duplicates.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.envelope import FieldError
from services.ingest.mapping import EventMapping, RecordError, to_event
from services.ingest.pipeline import IngestPipeline
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import Invalid

CHUNK_ROWS = 1000


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int
    """1-based line number in the file (the header is line 1)."""
    field: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejected})

    def write(self, path: Path) -> None:
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "field", "reason"])
            writer.writerows((r.row, r.field, r.reason) for r in self.rejected)


def _rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for record in reader:
            yield reader.line_num, record


async def import_csv(
    path: Path,
    mapping: EventMapping,
    pipeline: IngestPipeline,
    pseudonymiser: Pseudonymiser,
    *,
    source: str,
    timezone: str,
    delimiter: str = ",",
    progress: Callable[[int], None] = lambda n: None,
) -> ImportReport:
    """Import every row; ``progress`` is told how many rows each chunk held."""
    report = ImportReport()
    chunk: list[tuple[int, Any]] = []

    def hash_id(src: str, text: str) -> str:
        return pseudonymiser.pseudonym(src, "csv-row", text)

    for line, record in _rows(path, delimiter):
        report.rows += 1
        try:
            event: Any = to_event(
                mapping, record, source=source, timezone=timezone, hash_id=hash_id
            )
        except RecordError as exc:
            event = Invalid(exc.errors)
        except ValueError as exc:
            event = Invalid([FieldError(mapping.when or "(row)", str(exc))])
        if event is None:
            report.skipped += 1
            continue
        chunk.append((line, event))
        if len(chunk) >= CHUNK_ROWS:
            await _flush(chunk, pipeline, report)
            progress(len(chunk))
            chunk = []
    if chunk:
        await _flush(chunk, pipeline, report)
        progress(len(chunk))
    return report


async def _flush(
    chunk: list[tuple[int, Any]], pipeline: IngestPipeline, report: ImportReport
) -> None:
    result = await pipeline.ingest([event for _, event in chunk])
    for outcome in result.outcomes:
        line = chunk[outcome.index][0]
        if outcome.status == "accepted":
            report.accepted += 1
        elif outcome.status == "duplicate":
            report.duplicates += 1
        else:
            report.rejected += [RejectedRow(line, e.field, e.reason) for e in outcome.errors]
