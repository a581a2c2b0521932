"""``/metrics`` on every service: each family present and moving after a workload that runs the
four services as ``spm serve`` processes on the real Kafka, PostgreSQL and an SMTP server; and
every metric the shipped Prometheus rules and Grafana dashboard name is one the services expose.

The embedded mode (one process, one registry) is checked without infrastructure."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.common.metrics import FAMILIES
from services.common.settings import CommonSettings
from spm.embedded import build_embedded_app
from tests.alerts.servers import REPO, Proc, SmtpServer, free_port
from tests.e2e.four_services import (
    SERVICES,
    borrower,
    event,
    service_env,
    service_url,
    started_with_target,
)
from tests.ingest.fineract.conftest import create_input_topic, produce
from tests.ingest.fineract.helpers import manifest, sample_bytes
from tests.spm.procfs import until_every_worker_listens

RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "spm.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself when scraping
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """Sample name -> [(labels, value)] of an exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(k) == v for k, v in labels.items())
    )


def named_in_promql(expr: str) -> set[str]:
    return set(re.findall(r"\b(spm_[a-z0-9_]+|up)\b", expr))


def rules_metric_names() -> set[str]:
    document = yaml.safe_load(RULES.read_text())
    return {n for g in document["groups"] for r in g["rules"] for n in named_in_promql(r["expr"])}


def dashboard_metric_names() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    return {n for e in exprs for n in named_in_promql(e)}


def test_the_embedded_mode_registers_each_family_once(tmp_path: Path) -> None:
    """Four service apps (twice over) in one process, one registry: no duplicate error, and
    the one /metrics shows each service's requests under its own label."""
    settings = CommonSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}",
        pseudonym_pepper="embedded-metrics-pepper-0123456789",
    )
    build_embedded_app(settings)
    app, _, _ = build_embedded_app(settings)

    async def scrape() -> Samples:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://spm") as client:
            assert (await client.get("/v1/indicators")).status_code == 401
            assert (await client.get("/v1/alerts")).status_code == 401
            answer = await client.get("/metrics")
            assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
            return parse(answer.text)

    samples = asyncio.run(scrape())
    for service, route in (("indicators", "/v1/indicators"), ("alerts", "/v1/alerts")):
        assert total(samples, "spm_http_requests_total", service=service, route=route) >= 1


@pytest.fixture
def stack(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, tmp_path: Path
) -> Iterator[dict[str, Proc]]:
    suffix = f"-{unique}"
    env = service_env(kafka_bootstrap, postgres_url, unique, smtp) | {
        "INGEST_TOPIC_SUFFIX": suffix,
        "FINERACT_ENABLED": "true",
        "FINERACT_TOPIC": f"external-events-{unique}",
        "FINERACT_GROUP_ID": f"fineract-{unique}",
        "FINERACT_DB_SCHEMA": f"fineract_{unique}",
        "FINERACT_TOPIC_PREFIX": f"t{unique}.",
        "FINERACT_TRANSACTIONAL_ID": f"relay-{unique}",
        "INDICATORS_TOPIC_SUFFIX": suffix,
        "ALERTS_INDICATORS_TOPIC": f"spm.indicators.v1{suffix}",
        "ALERTS_DEADLETTER_TOPIC": f"spm.deadletter.v1{suffix}",
        "ALERTS_SEND_BACKOFF_S": "0.2",
    }
    procs = {s: Proc(env, free_port(), tmp_path / f"{s}.log", s) for s in SERVICES}
    yield procs
    for p in procs.values():
        p.stop()


async def _scrape(stack: dict[str, Proc]) -> dict[str, Samples]:
    async with httpx.AsyncClient(timeout=10) as client:
        answers = {
            s: await client.get(f"http://127.0.0.1:{p.port}/metrics") for s, p in stack.items()
        }
    assert all(a.status_code == 200 for a in answers.values())
    return {s: parse(a.text) for s, a in answers.items()}


def _log_tail(proc: Proc) -> str:
    lines = proc.log.read_text().splitlines()
    return "\n".join(line for line in lines if "uvicorn.access" not in line)[-2000:]


async def _until(
    stack: dict[str, Proc], done: dict[str, list[str]], within: float, lag_of: str = ""
) -> None:
    """Scrape until each service shows a positive value for each of its sample names (and,
    with ``lag_of``, some service reports that group's consumer lag)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        scraped = await _scrape(stack)
        missing = {
            (service, name)
            for service, names in done.items()
            for name in names
            if not any(v > 0 for _, v in scraped[service].get(name, []))
        }
        groups = {
            labels["group"]
            for samples in scraped.values()
            for labels, _ in samples.get("spm_consumer_lag", [])
        }
        if lag_of and lag_of not in groups:
            missing.add(("lag", lag_of))
        if not missing:
            return
        logs = {s: _log_tail(p) for s, p in stack.items()}
        assert loop.time() < deadline, (sorted(missing), logs)
        await asyncio.sleep(0.5)


async def _sent_once(stack: dict[str, Proc], within: float) -> dict[str, Samples]:
    """Scrape until the alert service counts an e-mail sent. The first one is refused and retried
    after a 2 s backoff, so the notification family moves (``retried``) before it is sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        scraped = await _scrape(stack)
        if total(scraped["alerts"], "spm_notifications_total", channel="email", outcome="sent"):
            return scraped
        assert loop.time() < deadline, _log_tail(stack["alerts"])
        await asyncio.sleep(0.5)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
async def test_every_family_moves_after_a_workload(
    stack: dict[str, Proc], smtp: SmtpServer, unique: str, kafka_bootstrap: str
) -> None:
    fineract_topic = f"external-events-{unique}"
    await create_input_topic(kafka_bootstrap, fineract_topic)
    smtp.handler.refuse = 1  # the first e-mail is retried

    def url(service: str, path: str) -> str:
        return service_url(stack, service, path)

    async with started_with_target(stack, unique) as (client, branch):
        # the alert service has read the target (its lag on the objectives topic is reported
        # once it fetched a record): a value breaching it is evaluated against it
        await _until(stack, {"alerts": []}, within=60, lag_of=f"alerts-{unique}-targets")
        events = [e for n in range(1, 6) for e in borrower(unique, n, "male", branch)]
        first = await client.post(url("ingest", "/v1/events/batch"), json=events)
        again = await client.post(url("ingest", "/v1/events/batch"), json=events[:2])
        bad = event(unique, 99, "spm.client.registered.v1", {"client_id": "c99"})
        rejected = await client.post(url("ingest", "/v1/events/batch"), json=[bad])
        assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
        assert rejected.json()["rejected"] == 1, rejected.text
        assert (await client.get(url("indicators", "/no/such/path"))).status_code == 404
    samples = [(bytes.fromhex(e["kafka_key_hex"]), sample_bytes(e)) for e in manifest()]
    await produce(kafka_bootstrap, fineract_topic, samples)

    await _until(
        stack,
        {
            "ingest": [
                "spm_http_requests_total",
                "spm_http_request_duration_seconds_count",
                "spm_ingest_events_total",
                "spm_fineract_events_ignored_total",
            ],
            "indicators": [
                "spm_engine_batch_size_count",
                "spm_engine_batch_duration_seconds_count",
                "spm_indicator_emit_lag_seconds_count",
            ],
            "alerts": ["spm_notifications_total"],
            "objectives": ["spm_http_requests_total"],
        },
        within=180,
    )
    scraped = await _sent_once(stack, within=60)
    ingest, alerts = scraped["ingest"], scraped["alerts"]
    source = f"core:{unique}"
    assert total(ingest, "spm_ingest_events_total", outcome="accepted", source=source) == 10
    assert total(ingest, "spm_ingest_events_total", outcome="duplicate", source=source) == 2
    # an invalid event's type and source are not trusted as labels
    assert total(ingest, "spm_ingest_events_total", outcome="rejected", source="invalid") == 1
    batch = {"service": "ingest", "method": "POST", "route": "/v1/events/batch"}
    assert total(ingest, "spm_http_requests_total", **batch, status="202") == 2
    assert total(ingest, "spm_http_requests_total", **batch, status="422") == 1
    assert total(ingest, "spm_http_request_duration_seconds_count", **batch) == 3
    for service, exposed_samples in scraped.items():  # each answered the readiness probe
        readyz = {"service": service, "route": "/readyz", "status": "200"}
        assert total(exposed_samples, "spm_http_requests_total", **readyz) >= 1
    # a scanner's paths are one label value, not one each
    assert total(scraped["indicators"], "spm_http_requests_total", route="unmatched") == 1
    assert total(alerts, "spm_notifications_total", channel="email", outcome="retried") >= 1
    assert total(alerts, "spm_notifications_total", channel="email", outcome="sent") >= 1
    # consumer lag per partition: the engine's, alerts' and the Fineract consumer's groups
    lag_groups = {
        labels["group"]
        for service in scraped.values()
        for labels, _ in service.get("spm_consumer_lag", [])
    }
    expected_groups = {f"alerts-{unique}-indicators", f"alerts-{unique}-targets"}
    assert {f"indicators-{unique}", f"fineract-{unique}"} | expected_groups <= lag_groups
    assert all(
        set(labels) == {"group", "topic", "partition"}
        for labels, _ in scraped["indicators"]["spm_consumer_lag"]
    )
    # the outbox relays of objectives and alerts report their backlog (drained: 0)
    assert scraped["objectives"].get("spm_outbox_backlog")
    assert scraped["alerts"].get("spm_outbox_backlog")

    exposed = {name for service in scraped.values() for name in service}
    for family in FAMILIES:
        name = next(iter(family.describe())).name
        assert any(n.startswith(name) for n in exposed), name
    assert rules_metric_names() - PROMETHEUS_OWN <= exposed
    assert dashboard_metric_names() <= exposed


@pytest.mark.kafka
@pytest.mark.postgres
async def test_with_several_workers_each_scrape_adds_up_every_worker(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    """`spm serve ingest --workers 2`: whichever worker answers /metrics reports both."""
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": postgres_url,
        "PSEUDONYM_PEPPER": "metrics-pepper-0123456789abcdef012",
        "INGEST_DB_SCHEMA": f"ingest_workers_metrics_{unique}",
        "TMPDIR": str(tmp_path),  # where the workers' metric files go
    }
    proc = Proc(env, free_port(), tmp_path / "ingest.log", "ingest", args=("--workers", "2"))
    proc.start()
    assert proc.proc is not None
    base = f"http://127.0.0.1:{proc.port}"
    try:
        await proc.ready()
        await until_every_worker_listens(proc.proc.pid, proc.port, 2)
        assert await asyncio.to_thread(lambda: list(tmp_path.glob("spm-metrics-*/*.db")))
        clients = [httpx.AsyncClient(base_url=base) for _ in range(16)]
        try:  # 16 connections, spread over the two workers by the kernel
            answers = await asyncio.gather(*(c.get("/healthz") for c in clients))
        finally:
            for client in clients:
                await client.aclose()
        assert [a.status_code for a in answers] == [200] * 16
        for _ in range(6):  # each on a new connection: either worker may answer
            async with httpx.AsyncClient(base_url=base) as client:
                scraped = parse((await client.get("/metrics")).text)
            assert total(scraped, "spm_http_requests_total", route="/healthz") == 16
    finally:
        proc.stop()
    assert proc.proc.returncode == 0
    assert not await asyncio.to_thread(lambda: list(tmp_path.glob("spm-metrics-*")))  # removed
