"""`spm demo`, the command `make run` runs: it prints the dashboard URL, the people to sign in as
(an administrator, the managers of the drifting and the control branch) and an API key, serves
the dashboard and the APIs on that one port, fills them with the simulated MFI, and ends cleanly
on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.alerts.servers import REPO, free_port

SPM = str(REPO / ".venv" / "bin" / "spm")


def _wait_for(pattern: str, log: Path, proc: subprocess.Popen[bytes], limit_s: float) -> str:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found.group(1)
        assert proc.poll() is None, f"spm demo exited with {proc.returncode}: {log.read_text()}"
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not printed within {limit_s} s: {log.read_text()}")


def test_the_demo_prints_its_url_serves_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [SPM, "demo", "--data-dir", str(tmp_path / "demo"), "--port", str(port),
             "--days", "30", "--days-per-second", "30"],
            cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        url = _wait_for(r"SPM Monitor dashboard: (\S+)", out, proc, 60)
        key = _wait_for(r"API key \(for scripts\): (\S+)", out, proc, 5)
        assert url == f"http://127.0.0.1:{port}/dashboard/"
        deadline = time.monotonic() + 120
        items: list[dict[str, object]] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while not items:
                assert time.monotonic() < deadline, "no indicator values after 120 s"
                assert proc.poll() is None, err.read_text()
                try:
                    r = client.get(
                        "/v1/indicators",
                        params={"code": "active_borrowers", "segment": "all"},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.TransportError:  # not listening yet
                    time.sleep(0.5)
                    continue
                assert r.status_code == 200, r.text
                items = [i for i in r.json()["items"] if i["value"]]
                time.sleep(0.5)
            page = client.get(url)
            assert page.status_code == 200 and "SPM Monitor" in page.text
            assert client.get("/v1/indicators").status_code == 401  # no key, no data
            assert client.get("/readyz").status_code == 200
            # the branch manager printed signs in and sees her branch's limit
            printed = out.read_text()
            for user in ("admin", "manager-msa", "manager-nai"):
                assert re.search(rf"^\s+{user}\s+\S+\s+", printed, re.MULTILINE), printed
            password = _wait_for(r"manager-msa\s+(\S+)\s+branch_manager, BR-MSA", out, proc, 5)
            login = client.post(
                "/auth/login", json={"username": "manager-msa", "password": password}
            )
            assert login.status_code == 200, login.text
            assert login.json()["user"]["branches"] == ["BR-MSA"]
            assert client.get("/v1/alerts").status_code == 200  # with the session cookie
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    # uvicorn shuts down gracefully, then re-raises the SIGINT: 130 (128 + 2) is the shell's
    # convention for a program ended by Ctrl-C
    assert code == 130, err.read_text()
    assert "Traceback" not in err.read_text()
