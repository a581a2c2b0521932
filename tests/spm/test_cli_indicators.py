"""`spm indicators status|rebuild|switch|tick` against real Kafka and PostgreSQL, beside a running
`spm serve indicators` on the same stream: status follows the running engine's lag down to 0, a
rebuild into a fresh schema and group ends with the running engine's values (both read through
the service's own API), switch prints the settings of the rebuilt schema, tick moves the business
date. Every command's --json output is parsed.

The tests of this module share one stream and one running service and run in file order (the
tick, last, moves the running engine's business date)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.indicators.oracle.generator import GenConfig, generate
from tests.indicators.oracle.harness import (
    SPM,
    ServiceConfig,
    ServiceProcess,
    api_values,
    business_date,
    ensure_topics,
    produce,
    reader,
    wait_caught_up,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EVENTS = 4000


@dataclass
class Stream:
    cfg: ServiceConfig
    ends: dict[tuple[str, int], int]
    run: str

    @property
    def total(self) -> int:
        return sum(self.ends.values())


def spm(
    env: Mapping[str, str], *args: str, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(SPM), "indicators", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def status(env: Mapping[str, str], *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(spm(env, "status", "--json", *args).stdout)
    return document


@pytest.fixture(scope="module")
async def stream(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Stream:
    run = uuid.uuid4().hex[:8]
    cfg = ServiceConfig(
        kafka_bootstrap,
        postgres_url,
        f"-ops-{run}",
        f"ops-{run}",
        f"ind_ops_{run}",
        tmp_path_factory.mktemp("indicators-cli"),
    )
    await ensure_topics(kafka_bootstrap, cfg.suffix)
    ends = await produce(kafka_bootstrap, generate(GenConfig(seed=77, n_events=EVENTS)), cfg.suffix)
    return Stream(cfg, ends, run)


@pytest.fixture(scope="module")
async def running(stream: Stream) -> AsyncIterator[ServiceProcess]:
    service = ServiceProcess(stream.cfg, "running")
    service.start()
    try:
        await service.wait_ready()
        yield service
    finally:
        service.stop()


async def test_status_follows_the_lag_down_to_zero(stream: Stream) -> None:
    env = ServiceProcess(stream.cfg).env()
    before = status(env)  # nothing ran on this schema yet
    assert before["exists"] is False
    assert before["lag"] == stream.total
    for p in before["partitions"]:
        assert p["end"] == stream.ends.get((p["topic"], p["partition"]), 0), p
        assert p["committed"] is None and p["last_batch"] is None
    service = ServiceProcess(stream.cfg, "status")
    service.start()
    try:
        lags = []
        deadline = time.monotonic() + 240
        while (now := status(env))["lag"] > 0:
            lags.append(now["lag"])
            assert service.alive(), service.last_log()
            assert time.monotonic() < deadline, f"lag still {now['lag']}"
    finally:
        service.stop()
    assert all(a >= b for a, b in zip(lags, lags[1:], strict=False)), lags  # never grows back
    assert now["exists"] is True
    for p in now["partitions"]:
        assert p["committed"] == p["end"] and p["lag"] == 0, p
        if p["end"]:
            assert p["last_batch"] is not None
    assert (
        now["parameters"]
        == now["environment"]
        == {
            "INDICATORS_SLA_DAYS": "30",
            "INDICATORS_DSTI_LIMIT": "0.5",
            "INDICATORS_LENDER_COUNT": "3",
            "INDICATORS_DROPOUT_DELAY_DAYS": "90",
            "INDICATORS_POVERTY_LINE": "national",
            "INSTITUTION_TIMEZONE": "UTC",
            "INDICATORS_DEFINITIONS": "1.1",
        }
    )
    assert now["mismatched"] == []
    assert date.fromisoformat(now["business_date"]) >= GenConfig().start
    # another SLA in the environment: status says the service would refuse it
    changed = status(env | {"INDICATORS_SLA_DAYS": "45"})
    assert changed["mismatched"] == ["INDICATORS_SLA_DAYS"]
    table = spm(env | {"INDICATORS_SLA_DAYS": "45"}, "status").stdout
    assert "INDICATORS_SLA_DAYS" in table and "rebuild" in table


async def test_rebuild_ends_with_the_running_engines_values(
    stream: Stream, running: ServiceProcess, tmp_path: Path
) -> None:
    env = running.env()
    await wait_caught_up(
        stream.cfg.database_url, stream.cfg.schema, stream.cfg.group, stream.ends, 240, [running]
    )
    schema, group = f"ind_ops_{stream.run}_r", f"ops-{stream.run}-r"
    done = spm(env, "rebuild", "--schema", schema, "--group", group, "--json")
    result = json.loads(done.stdout)
    assert (result["schema"], result["group"]) == (schema, group)
    assert result["events"] == stream.total and result["lag"] == 0
    assert result["parameters"]["INDICATORS_SLA_DAYS"] == "30"
    assert result["switch"] == f"spm indicators switch --schema {schema} --group {group}"
    # the progress bar's last frame: every event, a rate, the lag
    assert re.search(rf"{stream.total}/{stream.total} [\d,]+ ev/s lag 0", done.stderr), done.stderr

    rebuilt = ServiceProcess(dataclasses.replace(stream.cfg, schema=schema, group=group), "rebuilt")
    rebuilt.start()
    try:
        await rebuilt.wait_ready()
        async with reader(running.url) as a, reader(rebuilt.url) as b:
            day = await business_date(a)
            assert await business_date(b) == day
            for when in (GenConfig().start.replace(month=6), day):
                values = await api_values(a, when)
                assert len(values) > 50
                assert await api_values(b, when) == values
    finally:
        rebuilt.stop()

    # the switch: the rebuilt schema's names and parameters, also into an env file
    env_file = tmp_path / "indicators.env"
    env_file.write_text("# kept\nINDICATORS_DB_SCHEMA=indicators\nOTHER=1\n")
    switched = json.loads(
        spm(env, "switch", "--schema", schema, "--group", group, "--json", "--env-file",
            str(env_file)).stdout
    )  # fmt: skip
    assert switched["settings"] == {
        "INDICATORS_DB_SCHEMA": schema,
        "INDICATORS_GROUP_ID": group,
        **result["parameters"],
    }
    assert env_file.read_text().splitlines() == [
        "# kept",
        f"INDICATORS_DB_SCHEMA={schema}",
        "OTHER=1",
        *(f"{k}={v}" for k, v in switched["settings"].items() if k != "INDICATORS_DB_SCHEMA"),
    ]
    lines = spm(env, "switch", "--schema", schema, "--group", group).stdout.splitlines()
    assert lines == [f"{k}={v}" for k, v in switched["settings"].items()]


async def test_a_rebuild_changes_a_parameter_and_refuses_what_would_mix(stream: Stream) -> None:
    env = ServiceProcess(stream.cfg).env()
    in_force = spm(env, "rebuild", "--schema", stream.cfg.schema, "--group", "x", check=False)
    assert in_force.returncode == 1
    assert "the one in force" in in_force.stderr
    same_group = spm(env, "rebuild", "--schema", "ind_x", "--group", stream.cfg.group, check=False)
    assert same_group.returncode == 1
    assert "take its partitions" in same_group.stderr
    # a parameter changes by a rebuild with the new value; the schema records it, and adding
    # to that schema with another value is refused (a resumed rebuild must keep the value)
    schema, group = f"ind_ops_{stream.run}_sla", f"ops-{stream.run}-sla"
    sla45 = env | {"INDICATORS_SLA_DAYS": "45"}
    spm(sla45, "rebuild", "--schema", schema, "--group", group, "--json")
    rebuilt = status(env, "--schema", schema, "--group", group)
    assert rebuilt["lag"] == 0 and rebuilt["parameters"]["INDICATORS_SLA_DAYS"] == "45"
    assert rebuilt["mismatched"] == ["INDICATORS_SLA_DAYS"]  # against this env's 30
    refused = spm(env, "rebuild", "--schema", schema, "--group", group, check=False)
    assert refused.returncode == 1
    assert "INDICATORS_SLA_DAYS is 30 but the stored indicators were computed with 45" in (
        refused.stderr
    )
    switched = spm(env, "switch", "--schema", schema, "--group", group).stdout
    assert "INDICATORS_SLA_DAYS=45" in switched.splitlines()
    unknown = spm(env, "switch", "--schema", "ind_never_built", "--group", "g", check=False)
    assert unknown.returncode == 1 and "rebuild" in unknown.stderr


async def test_tick_moves_the_business_date_to_today(
    stream: Stream, running: ServiceProcess
) -> None:
    env = running.env()
    before = status(env)["business_date"]
    ticked = json.loads(spm(env, "tick", "--json").stdout)
    today = datetime.now(UTC).date()
    assert ticked["before"] == before
    assert ticked["business_date"] == max(date.fromisoformat(before), today).isoformat()
    assert status(env)["business_date"] == ticked["business_date"]
    async with reader(running.url) as client:
        assert (await business_date(client)).isoformat() == ticked["business_date"]
