"""What a person receives: the e-mail, webhook text and SMS from the shipped templates, an
operator's override, and a link that opens a page the dashboard's router knows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import pytest

from services.alerts.notify.render import Templates
from tests.alerts.harness import Harness, business_days, settings_for, target
from tests.alerts.servers import REPO, HttpReceiver, SmtpServer, mail_part

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
DASHBOARD = "http://spm.example.org/dashboard"


def _body(mail: Message) -> str:
    return mail_part(mail)


async def _start(
    kafka: str, pg: str, unique: str, smtp: SmtpServer, webhook: HttpReceiver, **extra: object
) -> Harness:
    routes = {
        "receivers": {
            "ops": {
                "email": ["ops@example.org"],
                "webhooks": [{"url": webhook.url, "format": "slack"}],
            }
        }
    }
    return await Harness.start(
        settings_for(
            kafka,
            pg,
            unique,
            smtp_port=smtp.port,
            routes=routes,
            alerts_dashboard_url=DASHBOARD,
            institution_currency="KES",
            alerts_group_wait_s=5,
            **extra,
        )  # fmt: skip
    )


@pytest.fixture
async def texts(
    kafka_bootstrap: str, postgres_url: str, unique: str, smtp: SmtpServer, webhook: HttpReceiver
) -> AsyncIterator[Harness]:
    h = await _start(kafka_bootstrap, postgres_url, unique, smtp, webhook)
    yield h
    await h.stop()


async def test_the_email_reads_as_a_person_would_write_it(
    texts: Harness, smtp: SmtpServer, webhook: HttpReceiver
) -> None:
    h = texts
    d = business_days(3)
    await h.targets(
        target("t-dsti", indicator="dsti_breach_share", segment="branch:BR-MSA", lower=None,
               upper="0.05", for_days=0, owner="Wanjiru Kamau, Head of Social Performance"),
        target("t-glp", indicator="gross_loan_portfolio", lower="50000000", for_days=0),
    )  # fmt: skip
    await h.values(d[0], ("dsti_breach_share", "branch:BR-MSA", "0.1056338028169014084507042254"),
                   figures=("15", "142"))  # fmt: skip
    await h.values(d[0], ("gross_loan_portfolio", "all", "40134583.4"))
    await h.deliver()  # the group opens now: its wait counts from the flush that first sees it
    h.clock.advance(6)  # the group's wait: both alerts in one notification
    await h.settle()
    assert len(smtp.messages) == 1, [m["Subject"] for m in smtp.messages]
    mail = smtp.messages[0]
    subject = str(mail["Subject"]).replace("\r\n", "")
    assert subject in (  # the group's alerts come in fingerprint order
        "DSTI breach share off target for Branch BR-MSA: 10.6 % (and 1 more)",
        "Gross loan portfolio off target for the whole institution: KES 40,134,583 (and 1 more)",
    ), subject
    text = _body(mail)
    ids = {a["indicator"]: a["id"] for a in await h.alerts()}
    dsti_link = f"{DASHBOARD}/#/alert/{ids['dsti_breach_share']}"
    for expected in (
        "DSTI breach share is off target for Branch BR-MSA.",
        "Objective:   Reach women entrepreneurs",
        "Value:       10.6 % (on 2 June 2025)",
        "Target:      at most 5.0 %",
        "Since:       2 June 2025",
        "Figures:     15 out of 142",
        "Owner:       Wanjiru Kamau, Head of Social Performance",
        "Gross loan portfolio is off target for the whole institution.",
        "Value:       KES 40,134,583 (on 2 June 2025)",
        "Target:      at least KES 50,000,000",
        "Figures:     the indicator service sent no numerator and denominator",
        "Owner:       no owner recorded on the target",
        dsti_link,
        f"{DASHBOARD}/#/alert/{ids['gross_loan_portfolio']}",
    ):
        assert expected in text, (expected, text)
    assert "0.1056338" not in text and "SPM FIRING" not in text
    html = mail_part(mail, 1)
    assert f'href="{dsti_link}"' in html
    assert "<td>Wanjiru Kamau, Head of Social Performance</td>" in html
    [hook] = webhook.requests
    assert hook.body["text"] == subject
    assert "10.6 %, target at most 5.0 %" in hook.body["blocks"][1]["text"]["text"]


def test_the_link_is_a_route_of_the_dashboard_router() -> None:
    """The link's hash route is one ``route()`` in the dashboard's app.js dispatches on, and the
    page it opens reads the alert by that id."""
    link = f"{DASHBOARD}/#/alert/4b0c6a52-1f3e-4d55-9a51-8a3f0e6d2c11"
    path, _, query = urlsplit(link).fragment.partition("?")
    page, alert_id = path.strip("/").split("/")
    app = (REPO / "spm" / "dashboard" / "static" / "app.js").read_text(encoding="utf-8")
    assert re.search(rf'page === "{page}" && parts\[1\]', app), "no such route"
    assert query == "" and alert_id == "4b0c6a52-1f3e-4d55-9a51-8a3f0e6d2c11"
    page_js = (REPO / "spm" / "dashboard" / "static" / "alert.js").read_text(encoding="utf-8")
    assert "`/v1/alerts/${encodeURIComponent(id)}`" in page_js


async def test_an_operator_overrides_a_template_without_code(
    kafka_bootstrap: str,
    postgres_url: str,
    unique: str,
    smtp: SmtpServer,
    webhook: HttpReceiver,
    tmp_path: Path,
) -> None:
    (tmp_path / "email_subject.txt").write_text(
        "Tahadhari: {{ alerts[0].indicator_name }} ({{ alerts[0].value_text }})\n"
    )
    (tmp_path / "webhook_text.txt").write_text("{{ alerts[0].no_such_field }}")  # fails: shipped
    h = await _start(
        kafka_bootstrap, postgres_url, unique, smtp, webhook, alerts_templates_dir=tmp_path
    )
    try:
        await h.targets(target(for_days=0))
        await h.values(business_days(1)[0], ("women_borrower_share", "all", "0.55"))
        await h.deliver()  # the group opens now, not after the clock moved
        h.clock.advance(6)
        await h.settle()
        [mail] = smtp.messages
        assert mail["Subject"] == "Tahadhari: Women borrower share (55.0 %)"
        assert "Target:      at least 60.0 %" in _body(mail)  # the shipped body still
        [hook] = webhook.requests
        assert "55.0 %, target at least 60.0 %" in hook.body["blocks"][1]["text"]["text"]
    finally:
        await h.stop()


def test_a_broken_template_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "sms.txt").write_text("{% if %}")
    with pytest.raises(jinja2.TemplateSyntaxError) as err:
        Templates(tmp_path)
    assert err.value.name == "sms.txt"
    with pytest.raises(ValueError, match="not a directory"):
        Templates(tmp_path / "missing")
