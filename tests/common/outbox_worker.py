"""An outbox relay in its own process, SIGKILLed at a chosen point (crash tests).

    python -m tests.common.outbox_worker URL SCHEMA TABLE BOOTSTRAP LOCK \
        none|before_publish|after_publish

Prints the number of records published when it is not killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData

from services.common.bus import KafkaBus
from services.common.db import create_engine
from services.common.outbox import OutboxRelay, OutboxRow, RelayHooks, outbox_table

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class WorkerResult:
    returncode: int
    stdout: str
    stderr: str


async def run_worker(
    url: str, schema: str, table: str, bootstrap: str, lock: str, crash: str
) -> WorkerResult:
    """Run this module in a child process and wait for it (killed or not)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.common.outbox_worker",
        url,
        schema,
        table,
        bootstrap,
        lock,
        crash,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return WorkerResult(proc.returncode, out.decode(), err.decode())


async def _die(rows: Sequence[OutboxRow]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(url: str, schema: str, table: str, bootstrap: str, lock: str, crash: str) -> None:
    engine = create_engine(url, schema)
    hooks = RelayHooks(
        before_publish=_die if crash == "before_publish" else None,
        after_publish=_die if crash == "after_publish" else None,
    )
    relay = OutboxRelay(
        engine,
        outbox_table(MetaData(schema=schema), table),
        KafkaBus(bootstrap),
        lock_name=lock,
        hooks=hooks,
    )
    try:
        print(await relay.drain())
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
