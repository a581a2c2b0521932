"""A trace started before producing is continued by the consumer, over real Kafka."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.topics import TopicSpec
from services.common.bus import KafkaBus, Message
from services.common.telemetry import Trail, inject_trace_headers, joined


@pytest.mark.kafka
async def test_trace_continues_through_kafka(kafka_bootstrap: str, unique: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    bus = KafkaBus(kafka_bootstrap)
    topic = f"test.trace.{unique}"
    await bus.ensure_topics([TopicSpec(topic, 1, "k", "delete", -1, "test")])

    producer = bus.producer()
    await producer.start()
    with tracer.start_as_current_span("http request") as request_span:
        await producer.send(Message(topic, b"{}", b"key"))
    await producer.stop()

    consumer = bus.consumer(f"g-{unique}", [topic])
    await consumer.start()
    try:
        records = []
        for _ in range(50):
            records += await consumer.getmany(timeout_ms=200)
            if records:
                break
    finally:
        await consumer.stop()
    [record] = records
    assert record.header("traceparent") is not None
    parent, _ = joined([record.header("traceparent")])  # as the consumers read it
    with tracer.start_as_current_span("apply event", context=parent, kind=trace.SpanKind.CONSUMER):
        pass

    spans = {span.name: span for span in exporter.get_finished_spans()}
    produced, consumed = spans["http request"], spans["apply event"]
    assert consumed.context is not None and produced.context is not None
    assert consumed.context.trace_id == produced.context.trace_id
    assert consumed.parent is not None
    assert consumed.parent.span_id == request_span.get_span_context().span_id


def test_existing_traceparent_is_kept() -> None:
    given = (("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),)
    assert inject_trace_headers(given) == given


def test_no_context_means_no_header() -> None:
    assert inject_trace_headers(()) == ()


def _traceparent(trace_id: str, span_id: str) -> bytes:
    return f"00-{trace_id * 32}-{span_id * 16}-01".encode()


def test_joined_parents_on_the_first_context_and_links_the_other_traces() -> None:
    first, second = _traceparent("a", "1"), _traceparent("b", "2")
    parent, links = joined([None, first, first, second, b"not a traceparent"])
    assert parent is not None
    assert trace.get_current_span(parent).get_span_context().trace_id == int("a" * 32, 16)
    assert [link.context.trace_id for link in links] == [int("b" * 32, 16)]
    assert joined([None, b"garbage"]) == (None, [])


def test_the_trail_gives_the_newest_batch_as_parent_and_keeps_what_is_given_back() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    trail = Trail()
    spans = [tracer.start_span(f"batch {n}") for n in range(3)]
    for span in spans:
        trail.add(span)
    taken = trail.take()
    assert trail.take() == []
    trail.give_back(taken)  # an emission that found nothing committed yet
    parent, links = Trail.relation(trail.take())
    assert parent is not None
    newest = spans[-1].get_span_context()
    assert trace.get_current_span(parent).get_span_context().span_id == newest.span_id
    assert [link.context.span_id for link in links] == [
        s.get_span_context().span_id for s in spans[:2]
    ]
    assert Trail.relation([]) == (None, [])
    # once taken, the newest batch stays the parent of an emission that finds the trail empty
    # (its values were read before the batch's span reached the trail)
    assert trail.take() == [] and trail.newest() == [newest]
    assert Trail().newest() == []
