"""CRM complaint records -> complaint events, by a configured field mapping.

The shipped mapping (``examples/salesforce_case.yaml``) reads Salesforce ``Case`` records: every
case makes ``spm.complaint.opened.v1``, a closed one also ``spm.complaint.resolved.v1``. Only
mapped fields are read, so ``Subject``, ``Description``, ``SuppliedName``/``Email``/``Phone`` and
any other free text never enter the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.envelope import FieldError
from services.ingest.mapping import EventMapping, RecordError, load_mappings, to_event
from services.ingest.pseudonym import Pseudonymiser
from services.ingest.validation import Invalid

SALESFORCE_CASE_MAPPING = Path(__file__).parent / "examples" / "salesforce_case.yaml"


@dataclass(frozen=True, slots=True)
class CrmMapper:
    mappings: Sequence[EventMapping]
    source: str
    timezone: str
    pseudonymiser: Pseudonymiser

    @classmethod
    def load(
        cls, path: Path | None, source: str, timezone: str, pseudonymiser: Pseudonymiser
    ) -> CrmMapper:
        return cls(load_mappings(path or SALESFORCE_CASE_MAPPING), source, timezone, pseudonymiser)

    @property
    def sources(self) -> set[str]:
        return {m.source or self.source for m in self.mappings}

    def events(self, records: Sequence[Any]) -> tuple[list[Any], list[int]]:
        """Input events for ``records`` and, for each, the index of the record it came from.

        A record that cannot be read becomes an :class:`Invalid` the pipeline reports.
        """
        events: list[Any] = []
        origins: list[int] = []
        for index, record in enumerate(records):
            for event in self._record_events(record):
                events.append(event)
                origins.append(index)
        return events, origins

    def _record_events(self, record: Any) -> list[Any]:
        if isinstance(record, Invalid):  # refused while decoding (an integer too long)
            return [record]
        if not isinstance(record, Mapping):
            return [Invalid([FieldError("(record)", "must be a JSON object")])]
        out: list[Any] = []
        for mapping in self.mappings:
            try:
                event = to_event(
                    mapping,
                    record,
                    source=self.source,
                    timezone=self.timezone,
                    hash_id=self._hash_id,
                )
            except (RecordError, ValueError) as exc:
                errors = exc.errors if isinstance(exc, RecordError) else [_when_error(mapping)]
                out.append(Invalid(errors))
                continue
            if event is not None:
                out.append(event)
        return out

    def _hash_id(self, source: str, text: str) -> str:
        return self.pseudonymiser.pseudonym(source, "record", text)


def _when_error(mapping: EventMapping) -> FieldError:
    return FieldError(mapping.when or "(record)", "is not a boolean")
