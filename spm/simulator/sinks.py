"""Where simulated events go: the ingest HTTP API, the bus directly, or NDJSON / CSV files.

Every sink takes one day's events at a time (``await sink.send(events)``) and is closed once.
The bus sink runs ingest's own validation and pseudonymisation in-process (``spm`` is the
composition root, so it may import ingest), then publishes canonical events the way ingest does;
it skips ingest's dedup store, which suits load tests and the embedded demo.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import httpx
import yaml

from contracts.registry import EVENT_TYPES

if TYPE_CHECKING:
    from services.common.bus import Bus, Producer
    from services.ingest.validation import Validator

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
FAR_FUTURE_DAYS = 36_500


class SinkError(RuntimeError):
    """A sink could not deliver; the message says what was refused and why."""


class Sink(Protocol):
    async def send(self, events: Sequence[dict[str, Any]]) -> None: ...

    async def close(self) -> None: ...


class HttpSink:
    """``POST /v1/events/batch`` with a bearer key; retries 503 (Kafka down) after Retry-After."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        batch_size: int = 1000,
        retries: int = 20,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=60.0)
        self._owns_client = client is None
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": BATCH_CONTENT_TYPE}
        self._batch_size = batch_size
        self._retries = retries
        self.accepted = self.duplicates = 0

    async def send(self, events: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(events), self._batch_size):
            await self._post(events[start : start + self._batch_size])

    async def _post(self, batch: Sequence[dict[str, Any]]) -> None:
        body = json.dumps(list(batch)).encode()
        for _ in range(self._retries):
            response = await self._client.post(
                "/v1/events/batch", content=body, headers=self._headers
            )
            if response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code != 202:
                raise SinkError(f"ingest answered {response.status_code}: {response.text[:2000]}")
            result = response.json()
            if result.get("rejected"):
                raise SinkError(f"ingest rejected {result['rejected']} events: {_errors(result)}")
            self.accepted += int(result.get("accepted", 0))
            self.duplicates += int(result.get("duplicates", 0))
            return
        raise SinkError(f"ingest stayed unavailable after {self._retries} attempts")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _errors(result: dict[str, Any]) -> str:
    bad = [r for r in result.get("results", []) if r.get("status") == "rejected"][:3]
    return "; ".join(f"{r.get('id')}: {r.get('errors')}" for r in bad)


class BusSink:
    """Validate + pseudonymise in-process, publish canonical events (Kafka or in-process bus)."""

    def __init__(
        self,
        bus: Bus,
        pepper: str,
        currency: str,
        *,
        ensure_topics: bool = True,
        close_bus: bool = False,
        topic_suffix: str = "",
    ) -> None:
        """``topic_suffix`` is appended to every topic name (tests on a shared broker; the
        indicator service's ``INDICATORS_TOPIC_SUFFIX`` reads the same names)."""
        from services.ingest.pseudonym import Pseudonymiser
        from services.ingest.validation import DateBounds, Validator

        self._bus = bus
        # Simulations may run ahead of the calendar: no upper bound on dates here.
        bounds = DateBounds(earliest=date(1970, 1, 1), future_days=FAR_FUTURE_DAYS)
        self._validator: Validator = Validator(Pseudonymiser(pepper), currency, bounds)
        self._producer: Producer | None = None
        self._ensure_topics = ensure_topics
        self._close_bus = close_bus
        self._suffix = topic_suffix
        self.published = 0

    async def _start(self) -> Producer:
        if self._producer is None:
            if self._ensure_topics:
                from contracts.topics import CLIENTS, COMPLAINTS, LOANS

                specs = [
                    replace(t, name=t.name + self._suffix) for t in (CLIENTS, LOANS, COMPLAINTS)
                ]
                await self._bus.ensure_topics(specs)
            self._producer = self._bus.producer()
            await self._producer.start()
        return self._producer

    async def send(self, events: Sequence[dict[str, Any]]) -> None:
        from contracts.envelope import to_kafka
        from services.common.bus import Message
        from services.ingest.validation import Invalid

        producer = await self._start()
        messages = []
        for obj in events:
            try:
                record = to_kafka(self._validator.canonical(obj))
            except Invalid as exc:
                raise SinkError(f"simulated event {obj.get('id')} is invalid: {exc}") from exc
            topic = record.topic + self._suffix
            messages.append(Message(topic, record.value, record.key, tuple(record.headers)))
        if messages:
            await producer.send_many(messages)
            self.published += len(messages)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._close_bus:
            await self._bus.close()


class NdjsonSink:
    """One structured CloudEvent per line: what ``POST /v1/events/batch`` takes as NDJSON."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[str] = path.open("w", encoding="utf-8")

    async def send(self, events: Sequence[dict[str, Any]]) -> None:
        self._out.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in events)

    async def close(self) -> None:
        self._out.close()


class CsvSink:
    """One CSV per event type (columns: id, time, then the payload's fields), each with a
    mapping file for ``spm import csv --mapping <type>.mapping.yaml <type>.csv``."""

    def __init__(self, directory: Path, source: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._source = source
        self._files: dict[str, tuple[IO[str], csv.DictWriter[str]]] = {}

    def _writer(self, type_: str) -> csv.DictWriter[str]:
        if type_ not in self._files:
            model = EVENT_TYPES[type_].input_model
            assert model is not None  # noqa: S101 - simulated events are source events
            fields = list(model.model_fields)
            name = type_.removeprefix("spm.").removesuffix(".v1").replace(".", "_")
            handle = (self._dir / f"{name}.csv").open("w", newline="", encoding="utf-8")
            writer = csv.DictWriter(handle, fieldnames=["id", "time", *fields])
            writer.writeheader()
            self._files[type_] = (handle, writer)
            mapping = {
                "type": type_,
                "source": self._source,
                "id": "{id}",
                "time": {"column": "time"},
                "fields": {f: f for f in fields},
            }
            (self._dir / f"{name}.mapping.yaml").write_text(
                yaml.safe_dump(mapping, sort_keys=False)
            )
        return self._files[type_][1]

    async def send(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            row = {k: _cell(v) for k, v in event["data"].items()}
            self._writer(event["type"]).writerow({"id": event["id"], "time": event["time"], **row})

    async def close(self) -> None:
        for handle, _ in self._files.values():
            handle.close()


def _cell(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value
