"""What a server's worker processes hold, read from /proc (tests and benchmarks of `--workers`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

ESTABLISHED, LISTEN = "01", "0A"
"""TCP states as /proc/net/tcp writes them."""


def workers_of(pid: int) -> list[int]:
    """Child processes started by multiprocessing's spawn (the workers of `spm serve`)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def sockets_on(pid: int, port: int, state: str) -> int:
    """TCP sockets on local ``port`` in ``state`` that process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state and fields[9] in inodes:
                count += 1
    return count


async def until_every_worker_listens(
    pid: int, port: int, workers: int, timeout_s: float = 60
) -> list[int]:
    """The workers start one by one and the first answers /readyz alone: a worker that does
    not listen yet gets no connection, so a test or benchmark waits for all of them."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = workers_of(pid)
        if len(found) == workers and all(sockets_on(w, port, LISTEN) == 1 for w in found):
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{workers} workers of {pid} not all listening on {port}")
        await asyncio.sleep(0.1)
