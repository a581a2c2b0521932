"""Several worker processes on one port, each with a listening socket of its own.

uvicorn's ``--workers`` share one listening socket, and a worker that wakes up accepts every
connection waiting (asyncio accepts in a loop). So a few long-lived client connections all
landed on one worker while the others idled: bench/ingest_throughput.py measured 7.2 s of CPU
on one of two workers and 0.02 s on the other. Here each worker binds its own socket with
``SO_REUSEPORT``, and the kernel spreads new connections over the workers.

The supervisor is deliberately small. It passes SIGINT/SIGTERM on to the workers. If a worker
dies, it stops the others and exits non-zero, so the process manager (systemd, Kubernetes)
restarts the service as a whole.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import tempfile
from multiprocessing.connection import wait
from types import FrameType

import uvicorn
from prometheus_client.multiprocess import mark_process_dead

from services.common import siblings
from services.common.logs import LogFormat, configure_logging
from services.common.serving import server_config
from services.common.settings import get_settings

WORKER_FAILED = 3


def serve_workers(
    app: str, host: str, port: int, workers: int, log: tuple[LogFormat, str] = ("json", "INFO")
) -> int:
    """Run ``workers`` processes serving the ASGI app ``app`` (an import path); the exit code.
    ``log`` is the workers' logging (format, level): spawned processes start unconfigured."""
    context = multiprocessing.get_context("spawn")
    metrics_dir = tempfile.TemporaryDirectory(prefix="spm-metrics-")
    # the workers' metrics in files there, added up by whichever answers /metrics
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir.name)
    barrier = context.Barrier(workers)  # services.common.siblings
    processes = [
        context.Process(target=_serve, args=(app, host, port, log, barrier), name=f"worker-{n}")
        for n in range(workers)
    ]
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        while not stop_requested:
            if wait([p.sentinel for p in processes], timeout=0.5):
                break  # a worker ended on its own: stop the rest
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in processes:
            process.join()
            if process.pid is not None:
                mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
        metrics_dir.cleanup()
    if stop_requested:
        return 0
    return WORKER_FAILED


def _serve(
    app: str, host: str, port: int, log: tuple[LogFormat, str], barrier: siblings.Barrier
) -> None:
    configure_logging(*log)
    siblings.share(barrier)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    config = server_config(app, host, port, get_settings(), log_config=None)
    uvicorn.Server(config).run(sockets=[sock])
