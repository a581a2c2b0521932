"""A crash between a batch's effects (alerts, their notifications) and its stored offsets, made
deterministic with a fault point: the replacement instance applies the batch once — one alert,
one e-mail, one webhook call — never none and never two."""

from __future__ import annotations

import asyncio

import pytest

from services.common.faults import injected
from tests.alerts.harness import Harness, business_days, target
from tests.alerts.servers import HttpReceiver, SmtpServer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
CODE = "women_borrower_share"


class InjectedCrash(Exception):
    """Raised at the fault point: the batch's transaction aborts as if the process died."""


async def test_a_crash_between_effects_and_offsets_loses_and_doubles_nothing(
    h: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    d = business_days(2)
    await h.targets(target(for_days=0))
    crashed = asyncio.Event()

    async def crash() -> None:
        crashed.set()
        raise InjectedCrash

    with injected("alerts.between_effects_and_offsets", crash):
        await h.values(d[0], (CODE, "all", "0.55"), wait=False)
        await asyncio.wait_for(crashed.wait(), 60)
    await h.service.stop()  # the crashed instance is gone; a new one takes over
    replacement = await Harness.start(h.settings)
    try:
        replacement.ends = dict(h.ends)
        await replacement.caught_up()
        [alert] = await replacement.alerts("breach")
        assert alert["state"] == "firing"
        await replacement.settle()
        assert len(smtp.messages) == 1 and len(webhook.requests) == 1
        notes = await replacement.notifications()
        assert sorted(n["channel"] for n in notes) == ["email", "webhook"]
    finally:
        await replacement.stop()
        await h.service.start()  # so the fixture's teardown stops what it started
