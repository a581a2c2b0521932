"""Role receivers: the directory's members for a branch, from settings (JSON or a YAML file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.alerts.config import AlertSettings
from services.alerts.directory import Member, StaticDirectory
from services.alerts.routing import receiver, receivers_for

YAML = """
- {name: Mary, email: mary@example.org, phone: "+254711000001", role: branch_manager,
   branches: [MSA]}
- {name: Njeri, email: njeri@example.org, role: branch_manager, branches: [NBO, KSM]}
- {name: Head of SPM, email: spm@example.org, role: branch_manager}
"""
ROUTES = """
receivers:
  managers: {directory: {role: branch_manager}, email: [audit@example.org]}
  nairobi: {directory: {role: branch_manager, branch: NBO}}
routes:
  - {receiver: managers, continue: true}
  - {receiver: nairobi, indicator: par30}
"""


def _row(segment: str, indicator: str = "women_borrower_share") -> dict[str, object]:
    return {"fingerprint": "f", "objective_code": "o", "target_id": "t", "indicator": indicator,
            "segment": segment, "kind": "breach", "severity": "warning", "detail": {}}  # fmt: skip


def test_members_by_role_and_branch() -> None:
    directory = StaticDirectory(
        [
            Member(name="a", role="r", branches=["X"]),
            Member(name="b", role="r"),
            Member(name="c", role="other", branches=["X"]),
        ]  # fmt: skip
    )
    assert [m.name for m in directory.members("r", "X")] == ["a"]
    assert [m.name for m in directory.members("r", None)] == ["b"]
    assert directory.members("r", "Y") == []


def test_the_directory_comes_from_a_yaml_file_and_resolves_per_branch(tmp_path: Path) -> None:
    people = tmp_path / "directory.yaml"
    people.write_text(YAML)
    routing = AlertSettings(alerts_routes=ROUTES, alerts_directory_file=people).routing()
    assert receivers_for(routing, _row("branch:MSA")) == ["managers#branch:MSA"]
    assert receivers_for(routing, _row("all", "par30")) == [
        "managers#institution",
        "nairobi#branch:NBO",
    ]
    msa = receiver(routing, "managers#branch:MSA")
    assert msa is not None
    assert (msa.email, msa.sms) == (["audit@example.org", "mary@example.org"], ["+254711000001"])
    everyone = receiver(routing, "managers#institution")
    assert everyone is not None and everyone.email == ["audit@example.org", "spm@example.org"]
    nbo = receiver(routing, "nairobi#branch:NBO")
    assert nbo is not None and nbo.email == ["njeri@example.org"]
    nobody = receiver(routing, "managers#branch:ELD")
    assert nobody is not None and nobody.email == ["audit@example.org"] and nobody.sms == []


def test_a_bad_directory_entry_is_refused() -> None:
    with pytest.raises(ValidationError, match="phone"):
        AlertSettings(alerts_directory='[{"name": "x", "role": "r", "phone": "0711"}]').routing()
