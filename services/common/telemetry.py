"""OpenTelemetry set-up and trace propagation through Kafka headers.

One trace follows an event from the HTTP request through Kafka to what consumes it: producers
inject the current context as a W3C ``traceparent`` header and consumers continue it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.settings import CommonSettings

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")


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


def context_from_headers(headers: Iterable[tuple[str, bytes]]) -> Context:
    """The trace context a record carries (an empty context when it carries none)."""
    carrier: Mapping[str, str] = {
        name: value.decode("latin-1") for name, value in headers if name in TRACE_HEADERS
    }
    return _PROPAGATOR.extract(carrier)
