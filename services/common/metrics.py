"""Prometheus metrics of every service: the families, the HTTP middleware and ``/metrics``.

prometheus-client rather than OpenTelemetry's Prometheus exporter: Prometheus scrapes the text
format this library writes natively (the reference implementation, with process metrics for
free), its counters cost a lock and an add on the hot path, and a scrape needs no SDK pipeline
in between. Traces stay with OpenTelemetry.

All families live here, in the process-wide default registry, defined once at import: the
embedded mode runs the four services in one process, and a family defined per app would be
registered twice. ``spm serve --workers N`` runs N processes behind one port, so a scrape would
read whichever worker answered: there the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` (the
library's multiprocess mode: each worker writes its values to files there) and ``/metrics`` adds
up every worker's. Labels are bounded: route templates (never raw paths), event types, source
names, channels, topic partitions; never an id or any content.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# a *_created series per label set would double the series for nothing here
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "spm_http_requests",
    "HTTP requests answered, by service, method, route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "spm_http_request_duration_seconds",
    "Time to answer an HTTP request, by service, method, route template and status.",
    ["service", "method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_EVENTS = Counter(
    "spm_ingest_events",
    "Events seen by ingest, by outcome (accepted, duplicate, conflict, rejected, "
    "dead_lettered), event type and source.",
    ["outcome", "type", "source"],
)
FINERACT_IGNORED = Counter(
    "spm_fineract_events_ignored",
    "Fineract business events read and deliberately not mapped, by Fineract event type.",
    ["type"],
)
CONSUMER_LAG = Gauge(
    "spm_consumer_lag",
    "Records on a partition not yet consumed by the group (high watermark - position).",
    ["group", "topic", "partition"],
    multiprocess_mode="livemostrecent",  # a partition moves between workers on a rebalance
)
ENGINE_BATCH_SIZE = Histogram(
    "spm_engine_batch_size",
    "Records per batch the indicator engine applied.",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 20000, 50000),
)
ENGINE_BATCH_SECONDS = Histogram(
    "spm_engine_batch_duration_seconds",
    "Time the indicator engine took to apply a batch (in memory, transaction started).",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EMIT_LAG = Histogram(
    "spm_indicator_emit_lag_seconds",
    "From the engine signalling changed values to their publication on the value stream.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
NOTIFICATIONS = Counter(
    "spm_notifications",
    "Notification delivery attempts, by channel and outcome (sent, failed for good, retried).",
    ["channel", "outcome"],
)
OUTBOX_BACKLOG = Gauge(
    "spm_outbox_backlog",
    "Outbox rows committed but not yet published, by outbox (its relay's lock name).",
    ["outbox"],
    multiprocess_mode="livemostrecent",
)

FAMILIES = (
    HTTP_REQUESTS,
    HTTP_LATENCY,
    INGEST_EVENTS,
    FINERACT_IGNORED,
    CONSUMER_LAG,
    ENGINE_BATCH_SIZE,
    ENGINE_BATCH_SECONDS,
    EMIT_LAG,
    NOTIFICATIONS,
    OUTBOX_BACKLOG,
)


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics``: every family of this process in Prometheus' text format (0.0.4, the
    version every Prometheus release reads; what prometheus-client's own server answers)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: add up theirs
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by the route template FastAPI matched.

    A pure ASGI layer (no per-request task, unlike ``BaseHTTPMiddleware``). An unmatched path
    is labelled ``unmatched``: a scanner's random paths must not grow the label set.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers if the app raises before starting a response

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = (self.service, scope["method"], route, str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - start)


def count_ingest(outcomes: Iterable[tuple[str, str, str]]) -> None:
    """Add one per (outcome, type, source) of an ingested event, never by content; grouped first
    so a batch costs a few calls."""
    for (outcome, type_, source), n in collections.Counter(outcomes).items():
        INGEST_EVENTS.labels(outcome, type_, source).inc(n)


def record_lag(group: str, consumer: Any, batches: Mapping[Any, list[Any]]) -> None:
    """Lag per partition after a fetch: the high watermark minus the next offset to consume.

    ``consumer`` is an aiokafka consumer, ``batches`` what its ``getmany`` returned. Partitions
    without records in this fetch keep the value of their last fetch.
    """
    for tp, records in batches.items():
        high = consumer.highwater(tp)
        if high is not None and records:
            lag = max(0, high - (records[-1].offset + 1))
            CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)


@contextmanager
def engine_batch(size: int) -> Iterator[None]:
    """Observe one engine batch: its size and how long the block took."""
    start = time.perf_counter()
    try:
        yield
    finally:
        ENGINE_BATCH_SIZE.observe(size)
        ENGINE_BATCH_SECONDS.observe(time.perf_counter() - start)


class EmitLag:
    """Time from the first change signal the emitter saw to the emission that followed."""

    def __init__(self) -> None:
        self._since: float | None = None

    def saw(self, changed: bool) -> None:
        if changed and self._since is None:
            self._since = time.monotonic()

    def emitted(self) -> None:
        if self._since is not None:
            EMIT_LAG.observe(time.monotonic() - self._since)
            self._since = None


def count_notification(channel: str, values: Mapping[str, Any]) -> None:
    """One delivery attempt, from the values the sender records (its ``status`` if final)."""
    NOTIFICATIONS.labels(channel, str(values.get("status") or "retried")).inc()
