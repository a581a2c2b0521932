"""OpenTelemetry set-up and trace propagation through Kafka headers.

One trace follows an event from the HTTP request through Kafka to what consumes it: producers
inject the current context as a W3C ``traceparent`` header and consumers continue it. Where one
span handles records of several traces (an engine batch, an emission of indicator values, an
e-mail about several alerts) the first is its parent and the others are span links
(:func:`joined`, :class:`Trail`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.settings import CommonSettings

_PROPAGATOR = TraceContextTextMapPropagator()
MAX_LINKS = 128  # a span over a large batch links this many of its records' traces at most
_lock = threading.Lock()


def setup_telemetry(
    service: str, settings: CommonSettings, span_processor: SpanProcessor | None = None
) -> TracerProvider:
    """Install tracer and meter providers for ``service`` as the settings ask.

    ``span_processor`` lets callers (tests, the embedded mode) add their own exporter.
    """
    resource = Resource.create(
        {"service.name": service, "service.namespace": settings.otel_service_namespace}
    )
    tracer_provider = TracerProvider(resource=resource)
    span_exporter, metric_exporter = _exporters(settings)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    if span_processor is not None:
        tracer_provider.add_span_processor(span_processor)
    trace.set_tracer_provider(tracer_provider)
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    return tracer_provider


def _exporters(settings: CommonSettings) -> tuple[SpanExporter | None, MetricExporter | None]:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint
        traces = f"{endpoint}/v1/traces" if endpoint else None
        metrics_url = f"{endpoint}/v1/metrics" if endpoint else None
        return OTLPSpanExporter(endpoint=traces), OTLPMetricExporter(endpoint=metrics_url)
    return None, None


def inject_trace_headers(headers: Iterable[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    """Add the current trace context, unless the headers already carry one."""
    existing = tuple(headers)
    if any(name == "traceparent" for name, _ in existing):
        return existing
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return existing + tuple((name, value.encode()) for name, value in carrier.items())


def ensure_telemetry(service: str, settings: CommonSettings) -> None:
    """Install the SDK providers for ``service`` unless some are installed already (then keep
    them: the app factories may run several times in one process, e.g. in tests)."""
    with _lock:
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            setup_telemetry(service, settings)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (None outside a recording span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def _span_context(traceparent: str | bytes | None) -> SpanContext | None:
    if traceparent is None:
        return None
    text = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
    found = trace.get_current_span(_PROPAGATOR.extract({"traceparent": text})).get_span_context()
    return found if found.is_valid else None


def joined(traceparents: Iterable[str | bytes | None]) -> tuple[Context | None, list[Link]]:
    """Parent and links of a span that handles several records at once (an engine batch, an
    e-mail grouping several alerts): the first traced record's context is the parent, so the
    common case (one request, one trace) stays one trace; every other distinct context is a
    link (at most ``MAX_LINKS``)."""
    contexts: dict[tuple[int, int], SpanContext] = {}
    for raw in dict.fromkeys(traceparents):  # distinct header values, parsed once each
        found = _span_context(raw)
        if found is not None:
            contexts.setdefault((found.trace_id, found.span_id), found)
            if len(contexts) > MAX_LINKS:
                break
    if not contexts:
        return None, []
    first, *others = contexts.values()
    return trace.set_span_in_context(NonRecordingSpan(first)), [Link(c) for c in others]


class Trail:
    """Span contexts of the batches that changed something since the last emission: the
    indicator engine adds one per batch, the emitter (same process) takes them, so the values
    it publishes are traced back to the batches (and so the requests) that changed them. The
    newest ``MAX_LINKS`` are kept."""

    def __init__(self) -> None:
        self._contexts: deque[SpanContext] = deque(maxlen=MAX_LINKS)
        self._newest: SpanContext | None = None

    def add(self, span: Span) -> None:
        found = span.get_span_context()
        if found.is_valid:
            self._contexts.append(found)
            self._newest = found

    def take(self) -> list[SpanContext]:
        """The batches so far, oldest first (the trail starts again empty)."""
        contexts = list(self._contexts)
        self._contexts.clear()
        return contexts

    def give_back(self, contexts: list[SpanContext]) -> None:
        """Batches taken by an emission that found nothing to publish (their transactions had
        not committed yet): the next emission publishes their changes."""
        self._contexts.extendleft(reversed(contexts))

    def newest(self) -> list[SpanContext]:
        """The last batch ever added, taken or not: the parent of an emission whose trail was
        empty. A batch's span is added when its commit returns, and an emission that took the
        trail just before may read the committed values first; without this they would be
        published under a new root trace."""
        return [] if self._newest is None else [self._newest]

    @staticmethod
    def relation(contexts: list[SpanContext]) -> tuple[Context | None, list[Link]]:
        """Parent (the newest batch) and links (the others) of an emission's span."""
        if not contexts:
            return None, []
        *others, newest = contexts
        return trace.set_span_in_context(NonRecordingSpan(newest)), [Link(c) for c in others]
