"""`spm indicators rebuild` on a large stream, beside the running engine: the operator's
must-show (its progress, its time, and that it ends with the running engine's values).

1. Generate a stream (tests/indicators/oracle/generator.py, default 1,000,000 events) and produce
   it to fresh, suffixed topics.
2. The running engine: `spm serve indicators` on schema A / group A, until its offsets reach
   every partition's end.
3. `spm indicators rebuild --schema B --group B` under a pseudo-terminal (`script`), so its
   progress bar renders as an operator sees it; the transcript is kept in the log directory.
4. `spm serve indicators` on schema B, and every value of both APIs compared on the business date
   and on a few days before it.

Last line: ``rebuild events=<n> seconds=<s> events_per_second=<r> equal=<bool>``.
Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.bus import KafkaBus  # noqa: E402
from tests.indicators.oracle.generator import GenConfig, generate  # noqa: E402
from tests.indicators.oracle.harness import (  # noqa: E402
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

TOPICS = ("spm.clients.v1", "spm.loans.v1", "spm.complaints.v1")
SERVICE_DEFAULTS = {"INDICATORS_EMIT_INTERVAL_SECONDS": "5", "INDICATORS_TICK_SECONDS": "60"}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument(
        "--reuse", metavar="RUN", help="the topics and running schema of an earlier run (its id)"
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database_url = os.environ.get("DATABASE_URL")
    if not bootstrap or not database_url:
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL")
    run = args.reuse or uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    say(f"logs in {logs}")
    cfg = ServiceConfig(
        bootstrap, database_url, f"-rb-{run}", f"rb-{run}", f"ind_rb_{run}", logs, SERVICE_DEFAULTS
    )
    t0 = time.perf_counter()
    if args.reuse:
        bus = KafkaBus(bootstrap)
        try:
            found = await bus.end_offsets([t + cfg.suffix for t in TOPICS])
        finally:
            await bus.close()
        ends = {(tp.topic, tp.partition): end for tp, end in found.items() if end}
    else:
        await ensure_topics(bootstrap, cfg.suffix)
        events = generate(GenConfig(seed=13, n_events=args.events))
        ends = await produce(bootstrap, events, cfg.suffix)
    total = sum(ends.values())
    done_what = "found" if args.reuse else "generated and produced"
    say(f"{done_what} {total:,} events in {time.perf_counter() - t0:.1f} s")

    running = ServiceProcess(cfg, "running")
    t0 = time.perf_counter()
    running.start()
    try:
        await wait_caught_up(database_url, cfg.schema, cfg.group, ends, args.timeout, [running])
        say(f"running engine caught up in {time.perf_counter() - t0:.1f} s (from its start)")

        stamp = uuid.uuid4().hex[:4]
        schema, group = f"ind_rb_{run}_{stamp}", f"rb-{run}-{stamp}"
        command = [str(SPM), "indicators", "rebuild", "--schema", schema, "--group", group]
        transcript = logs / "rebuild.transcript"
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "script", "-qefc", shlex.join(command), str(transcript),
            env={**running.env(), "COLUMNS": "120"}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        code = await proc.wait()
        seconds = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"rebuild failed ({code}); see {transcript}")
        say(f"rebuild of {total:,} events: {seconds:.1f} s ({total / seconds:,.0f} events/s)")

        rebuilt = ServiceProcess(dataclasses.replace(cfg, schema=schema, group=group), "rebuilt")
        rebuilt.start()
        try:
            await rebuilt.wait_ready()
            compared, equal = 0, True
            async with reader(running.url) as a, reader(rebuilt.url) as b:
                day = await business_date(a)
                equal = await business_date(b) == day
                for back in (0, 30, 180, 365):
                    when = day - timedelta(days=back)
                    va, vb = await api_values(a, when), await api_values(b, when)
                    compared += len(va)
                    if va != vb:
                        equal = False
                        diff = sorted(k for k in va.keys() | vb.keys() if va.get(k) != vb.get(k))
                        say(f"{when}: {len(diff)} values differ, e.g. {diff[:3]}")
            say(f"compared {compared:,} (code, segment, day) values of both schemas: equal={equal}")
        finally:
            rebuilt.stop()
    finally:
        running.stop()
    summary = {"events": total, "seconds": round(seconds, 1), "equal": equal}
    (logs / "summary.json").write_text(json.dumps(summary))
    print(
        f"rebuild events={total} seconds={seconds:.1f} "
        f"events_per_second={total / seconds:.0f} equal={equal}"
    )


if __name__ == "__main__":
    asyncio.run(main())
