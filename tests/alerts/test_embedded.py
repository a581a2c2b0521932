"""The same service on the embedded mode (in-process bus + SQLite): fire, notify, resolve."""

from __future__ import annotations

import json
from pathlib import Path

from services.common.bus import MemoryBus
from tests.alerts.harness import Harness, business_days, settings_for, target
from tests.alerts.servers import HttpReceiver, SmtpServer


async def test_embedded_fire_and_resolve(
    tmp_path: Path, unique: str, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    hooks = [{"url": webhook.url, "format": "slack"}]
    routes = {"receivers": {"ops": {"email": ["ops@example.org"], "webhooks": hooks}}}
    settings = settings_for(
        "", f"sqlite+aiosqlite:///{tmp_path / 'spm.db'}", unique, smtp_port=smtp.port,
        routes=routes, kafka_bootstrap_servers=None,
    )  # fmt: skip
    h = await Harness.start(settings, MemoryBus())
    try:
        await h.targets(target(for_days=1))
        d = business_days(3)
        await h.values(d[0], ("women_borrower_share", "all", "0.50"))
        await h.values(d[1], ("women_borrower_share", "all", "0.50"))
        assert (await h.alerts("breach"))[0]["state"] == "firing"
        await h.settle()
        assert len(smtp.messages) == 1
        [hook] = webhook.requests
        assert (
            hook.body["text"].startswith("Women borrower share off target") and hook.body["blocks"]
        )
        h.clock.advance(61)
        await h.values(d[2], ("women_borrower_share", "all", "0.90"))
        await h.settle()
        assert len(smtp.messages) == 2 and "Back to normal" in smtp.messages[1]["Subject"]
        assert "no longer off target" in json.dumps(webhook.requests[1].body)
    finally:
        await h.stop()
