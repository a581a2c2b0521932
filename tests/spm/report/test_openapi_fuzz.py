"""schemathesis over ``GET /v1/report`` (tests/common/openapi_fuzz.py) on the embedded mode
served over HTTP: any month or format answers as documented, never 5xx."""

from __future__ import annotations

import asyncio
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from services.common.auth import hash_key
from spm.devmode import build_dev_stack, free_port
from spm.report.router import report_router
from tests.common.openapi_fuzz import KEY, fuzz_operations


async def test_fuzz(tmp_path: Path) -> None:
    port = free_port()
    admin = {"name": "fuzz", "sha256": hash_key(KEY), "scopes": ["admin"]}
    stack = build_dev_stack(data_dir=tmp_path, port=port, extra_api_keys=[admin])
    documented = FastAPI()  # the route's own OpenAPI document, as the embedded host serves it
    documented.include_router(report_router(lambda: stack.app))
    assert "/v1/report" in stack.host_app.openapi()["paths"]
    server = uvicorn.Server(
        uvicorn.Config(stack.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    async with stack.host_app.router.lifespan_context(stack.host_app):
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes only this flag
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.05)
        try:
            failures = await asyncio.to_thread(fuzz_operations, documented, stack.base_url)
        finally:
            server.should_exit = True
            await task
    assert not failures, "\n\n".join(failures)
