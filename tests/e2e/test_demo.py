"""The demo (embedded mode + sample strategy + drift scenario) for a fixed simulated period:
the drifting branch raises the expected alerts, the control branch none, and mail arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from spm.devmode import DevStack, demo_config, run_demo
from tests.e2e.demo import fires_on, running_demo, until_caught_up, wait_for

DRIFTING, CONTROL = "branch:BR-MSA", "branch:BR-NAI"
DAYS = 240


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[DevStack, httpx.AsyncClient]]:
    async with running_demo(tmp_path, timeout_s=60) as running:
        yield running


@pytest.mark.slow
async def test_drifting_branch_alerts_and_control_branch_stays_quiet(
    demo: tuple[DevStack, httpx.AsyncClient],
) -> None:
    stack, client = demo
    config = demo_config(days=DAYS)
    stats = await run_demo(stack, config, days_per_second=None)
    assert stats.days == DAYS

    last_day = config.end.isoformat()
    await until_caught_up(client, last_day, 300)
    alerts = await wait_for(client, "/v1/alerts", fires_on(DRIFTING), 120)
    firing = {(a["indicator"], a["kind"]) for a in alerts if a["segment"] == DRIFTING}
    assert ("dsti_breach_share", "breach") in firing, alerts
    control = [
        (a["indicator"], a["kind"], a["state"], a["value"], a["as_of"])
        for a in alerts
        if a["segment"] == CONTROL
    ]
    assert not control, control

    assert stack.mailbox is not None

    def to_drifting_manager(mail: list[dict[str, Any]]) -> bool:
        return any("branch.msa@example-mfi.co.ke" in m["to"] for m in mail)

    mail = await wait_for(client, "/v1/demo/mail", to_drifting_manager, 120)
    assert to_drifting_manager(mail), [(m["to"], m["subject"]) for m in mail]
    assert not any("branch.nai@example-mfi.co.ke" in m["to"] for m in mail)
