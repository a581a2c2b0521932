"""The indicator service, run as `spm serve indicators` on real Kafka and PostgreSQL, against the
independent oracle: a generated stream of >= 50,000 events over two years (late, duplicate,
out-of-order and reversed events, inferred drop-outs) and every indicator, for every segment,
on >= 20 sampled days: counts and sums exactly, ratios to 1e-9 relative, nulls equal."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from contracts.envelope import CanonicalEvent
from tests.indicators.oracle.builders import (
    A,
    B,
    C,
    close,
    day,
    disb,
    ev,
    opened,
    reg,
    repay,
    resolved,
    ts,
)
from tests.indicators.oracle.generator import GenConfig, generate, pid
from tests.indicators.oracle.harness import (
    GNI,
    ServiceConfig,
    ServiceProcess,
    business_date,
    compare_series_and_breakdown,
    compare_with_api,
    ensure_topics,
    log,
    produce,
    reader,
    report,
    sample_days,
    wait_caught_up,
)
from tests.indicators.oracle.oracle import Oracle, Params

EVENTS = int(os.environ.get("SPM_ORACLE_EVENTS", "50000"))
SEED = 20240601

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.timeout(1800)
async def test_api_equals_oracle_on_sampled_days(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    await run_against_oracle(
        GenConfig(seed=SEED, n_events=EVENTS), Params(gni_per_capita=GNI), {}, kafka_bootstrap,
        postgres_url, unique, tmp_path,
    )  # fmt: skip


@pytest.mark.timeout(1200)
async def test_api_equals_oracle_with_two_workers(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    """`spm serve indicators --workers 2`: both workers start their consumers together and are
    members of the engine's group, each applies the partitions it was assigned, and the values
    are the oracle's."""
    await run_against_oracle(
        GenConfig(seed=SEED + 2, n_events=20_000), Params(gni_per_capita=GNI), {},
        kafka_bootstrap, postgres_url, unique, tmp_path, workers=2,
    )  # fmt: skip


@pytest.mark.timeout(1200)
async def test_api_equals_oracle_with_other_parameters(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    """Every configurable parameter moved off its default, a time zone east of UTC (complaints
    opened late in the evening UTC belong to the next local day), and a rougher stream."""
    params = Params(
        sla_days=14,
        dsti_limit=Decimal("0.45"),
        lender_count=2,
        gni_per_capita=GNI,
        dropout_delay_days=60,
        timezone="Africa/Nairobi",
    )
    env = {
        "INDICATORS_SLA_DAYS": "14",
        "INDICATORS_DSTI_LIMIT": "0.45",
        "INDICATORS_LENDER_COUNT": "2",
        "INDICATORS_DROPOUT_DELAY_DAYS": "60",
        "INSTITUTION_TIMEZONE": "Africa/Nairobi",
    }
    cfg = GenConfig(
        seed=SEED + 1,
        n_events=int(os.environ.get("SPM_ORACLE_EVENTS_2", "20000")),
        late_share=0.03,  # five times the late events and duplicates of the main stream
        duplicate_share=0.05,
    )
    await run_against_oracle(cfg, params, env, kafka_bootstrap, postgres_url, unique, tmp_path)


def odd_stream() -> list[CanonicalEvent]:
    """Odd but valid data for which docs/indicators.md still defines every number."""
    d, e = pid(1, 4), pid(1, 5)
    woff = "loan.written_off"
    return [
        reg(A, 10),
        reg(B, 0, gender="male", rural=False),
        reg(d, 0, branch="B2", gender="other"),
        # an exit dated before the registration: the client is never active
        ev("client.exited", client_pid=A, exited_on=day(5), exit_type="voluntary", reason_code="x"),
        # a repayment dated before its disbursement, a closure arriving before the disbursement
        repay(B, "L1", "T1", -3, "100"),
        close(B, "L1", 120),
        disb(B, "L1", 0, "1000", loan_cycle=1),
        # two write-offs of one loan, and a closure dated before both
        disb(d, "L2", 0, "500", branch_id="B2", product_id="P2"),
        ev(woff, client_pid=d, loan_id="L2", principal_written_off="200", written_off_on=day(40)),
        ev(woff, client_pid=d, loan_id="L2", principal_written_off="300", written_off_on=day(50)),
        close(d, "L2", 30, "other"),
        # the same (source, id) as a registration of the same client: a duplicate
        ev("client.exited", id_="dup-reg", client_pid=e, exited_on=day(20), exit_type="voluntary"),
        reg(e, 0, gender="female"),
        ev(
            "client.registered",
            id_="dup-reg",
            client_pid=e,
            branch_id="B9",
            gender="male",
            registered_on=day(1),
        ),  # fmt: skip
        # arrears reported as of a day before the disbursement; a zero repayment
        disb(e, "L3", 10, "300"),
        ev("loan.delinquency", client_pid=e, loan_id="L3", as_of=day(5), days_past_due=40),
        repay(e, "L3", "T5", 20, "0"),
        # a complaint resolved (in time) before it was opened
        opened("K1", ts(30, 12)),
        resolved("K1", ts(29, 12)),
        opened("K2", ts(0)),
        resolved("K2", ts(31)),
        ev(
            "poverty.assessed",
            client_pid=A,
            tool="PPI",
            poverty_line="n",
            likelihood="0.3333333333",
            assessed_on=day(3),
        ),  # fmt: skip
        disb(C, "L9", 100, "50"),  # a client never registered
    ]


@pytest.mark.timeout(600)
async def test_api_equals_oracle_on_odd_data(
    kafka_bootstrap: str, postgres_url: str, unique: str, tmp_path: Path
) -> None:
    events = odd_stream()
    days = [day(n) for n in (-3, 0, 4, 5, 9, 10, 20, 29, 30, 31, 35, 40, 45, 50, 60, 100, 120)]
    await run_against_oracle(
        GenConfig(n_events=len(events)), Params(gni_per_capita=GNI), {}, kafka_bootstrap,
        postgres_url, unique, tmp_path, events=events, days=days,
    )  # fmt: skip


async def until_every_worker_owns_partitions(bootstrap: str, group: str, workers: int) -> None:
    """Wait until the consumer group is stable with ``workers`` members, each assigned some
    partitions (Kafka's own answer)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            (response,) = await admin.describe_consumer_groups([group])
            (described,) = response.groups
            state, members = described[2], described[5]  # (error, id, state, type, protocol, …)
            assigned = [  # member: (id, client id, host, metadata, assignment)
                ConsumerProtocolMemberAssignment.decode(m[4]).assignment if m[4] else []
                for m in members
            ]
            if state == "Stable" and len(members) == workers and all(assigned):
                return
            assert time.monotonic() < deadline, f"group {state}, assignments {assigned}"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def run_against_oracle(
    cfg: GenConfig,
    params: Params,
    env: dict[str, str],
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    tmp_path: Path,
    *,
    events: list[CanonicalEvent] | None = None,
    days: list[date] | None = None,
    workers: int = 1,
) -> None:
    events = list(generate(cfg)) if events is None else events
    assert len(events) == cfg.n_events
    suffix = f"-oracle-{unique}"
    await ensure_topics(kafka_bootstrap, suffix)
    service = ServiceProcess(
        ServiceConfig(
            kafka_bootstrap,
            postgres_url,
            suffix,
            f"oracle-{unique}",
            f"ind_oracle_{unique}",
            tmp_path,
            env,
        ),
        args=("--workers", str(workers)),
    )
    service.start()
    try:
        await service.wait_ready()
        if workers > 1:  # the stream arrives once the workers share it
            await until_every_worker_owns_partitions(kafka_bootstrap, service.cfg.group, workers)
            together = "workers of this instance are here: starting the consumer"
            assert service.last_log(10**7).count(together) == workers  # services.common.siblings
        ends = await produce(kafka_bootstrap, events, suffix)
        log(f"produced {len(events)} events to {len(ends)} partitions")
        took = await wait_caught_up(
            postgres_url, service.cfg.schema, service.cfg.group, ends, 1500, [service]
        )
        log(f"engine caught up {took:.1f} s after the stream was produced")

        oracle = Oracle(events, params)
        assert oracle.business_date is not None
        async with reader(service.url) as client:
            assert await business_date(client) == oracle.business_date
        if cfg.n_events >= 50_000:
            assert (oracle.business_date - cfg.start).days >= 730
        if days is None:
            first = cfg.start + (cfg.end - cfg.start) // 40
            days = sample_days(first, oracle.business_date, 20, cfg.seed)
            assert len(days) >= 20
        mismatches, compared = await compare_with_api(oracle, service.url, days)
        log(f"compared {compared} values on {len(days)} days: {len(mismatches)} mismatches")
        assert not mismatches, report(mismatches, compared)
        last = oracle.business_date
        segments = ["all", sorted(oracle.segments("active_clients"))[1]]
        mismatches, compared = await compare_series_and_breakdown(
            oracle, service.url, max(min(days), last - timedelta(days=20)), last, segments
        )
        log(f"series and breakdown: {compared} values, {len(mismatches)} mismatches")
        assert not mismatches, report(mismatches, compared)
    finally:
        service.stop()
