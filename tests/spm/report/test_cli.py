"""``spm report`` as an operator runs it: against a running ``spm demo`` over HTTP, it writes
the month's PDF and XLSX; a malformed month is refused before anything is read."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
from openpyxl import load_workbook

from tests.alerts.servers import REPO, free_port
from tests.spm.test_cli_demo import _wait_for

SPM = str(REPO / ".venv" / "bin" / "spm")


def test_a_malformed_month_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [SPM, "report", "--month", "2026-13", "--api-key", "k", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 2
    assert "YYYY-MM" in done.stderr
    assert not list(tmp_path.iterdir())


def test_the_report_of_a_running_demo(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [SPM, "demo", "--data-dir", str(tmp_path / "demo"), "--port", str(port),
             "--days", "35", "--days-per-second", "35"],
            cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        key = _wait_for(r"API key \(for scripts\): (\S+)", out, proc, 60)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        with httpx.Client(base_url=base, timeout=10) as client:
            as_of = None
            while as_of is None or as_of < "2025-11-30":
                assert time.monotonic() < deadline, f"business date {as_of} after 180 s"
                assert proc.poll() is None, err.read_text()
                try:
                    r = client.get("/v1/indicators", params={"code": "active_clients"},
                                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                    as_of = r.json()["as_of"]
                except httpx.TransportError:  # not listening yet
                    pass
                time.sleep(0.5)
        reports = tmp_path / "reports"
        done = subprocess.run(  # noqa: S603 - our own CLI
            [SPM, "report", "--month", "2025-11", "--url", base, "--out", str(reports)],
            capture_output=True, text=True, timeout=300, cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SPM_API_KEY": key},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pdf, xlsx = reports / "spm-report-2025-11.pdf", reports / "spm-report-2025-11.xlsx"
        assert pdf.read_bytes().startswith(b"%PDF-")
        assert f"{pdf} (" in done.stdout and "figures as of 2025-11-30" in done.stderr
        values = load_workbook(xlsx)["Values"]
        assert values.max_row > 50
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
