"""The compatibility checker, and the current schemas against every released version."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts.cli import contracts_app
from contracts.compat import check_compatibility, check_history, snapshot
from contracts.export import canonical_schemas

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HISTORY = PROJECT_ROOT / "contracts" / "history"
DISBURSED = "spm.loan.disbursed.v1"


@pytest.fixture
def old() -> dict[str, Any]:
    return canonical_schemas()[DISBURSED]


@pytest.fixture
def new(old: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(old)


def test_first_release_is_recorded() -> None:
    released = {p.name.removesuffix(".json") for p in (HISTORY / "1.0.0").glob("*.json")}
    assert DISBURSED in released
    assert "spm.client.registered.v1" in released


def test_current_schemas_are_compatible_with_history() -> None:
    assert check_history(HISTORY, canonical_schemas()) == []


def test_release_1_0_is_recorded_as_released() -> None:
    """Every type of 1.0, without the fields 1.1 added; `spm contracts compat` accepts 1.1."""
    released = {p.name.removesuffix(".json") for p in (HISTORY / "1.0.0").glob("*.json")}
    # 1.1 added one type (corrective actions), which 1.0 does not know
    assert set(canonical_schemas()) - released == {"spm.action.changed.v1"}
    assert released <= set(canonical_schemas())
    for type_ in (DISBURSED, "spm.loan.written_off.v1"):
        schema = json.loads((HISTORY / "1.0.0" / f"{type_}.json").read_text(encoding="utf-8"))
        assert "transaction_id" not in schema["properties"]
        assert "transaction_id" in canonical_schemas()[type_]["properties"]
    result = CliRunner().invoke(contracts_app, ["compat", "--root", str(PROJECT_ROOT)])
    assert result.exit_code == 0, result.output
    assert "compatible with every released version" in result.output


def test_unchanged_schema_is_compatible(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert check_compatibility(old, new) == []


def test_rejects_a_removed_field(old: dict[str, Any], new: dict[str, Any]) -> None:
    del new["properties"]["term_months"]
    assert check_compatibility(old, new) == [f"{DISBURSED}: field 'term_months' removed"]


def test_rejects_a_removed_required_field(old: dict[str, Any], new: dict[str, Any]) -> None:
    del new["properties"]["amount"]
    new["required"].remove("amount")
    violations = check_compatibility(old, new)
    assert violations == [f"{DISBURSED}: field 'amount' removed"]


@pytest.mark.parametrize(
    ("field", "schema"),
    [
        ("amount", {"type": "number"}),
        ("amount", {"type": "string"}),
        ("loan_cycle", {"type": "integer"}),
        ("currency", {"type": "string", "enum": ["KES"]}),
        ("disbursed_on", {"type": "string", "format": "date-time"}),
    ],
)
def test_rejects_a_retyped_field(
    old: dict[str, Any], new: dict[str, Any], field: str, schema: dict[str, Any]
) -> None:
    new["properties"][field] = schema
    violations = check_compatibility(old, new)
    assert len(violations) == 1
    assert violations[0].startswith(f"{DISBURSED}: field '{field}' retyped: ")


def test_rejects_a_changed_enum() -> None:
    old = canonical_schemas()["spm.client.registered.v1"]
    new = copy.deepcopy(old)
    new["properties"]["gender"]["enum"].append("nonbinary")
    violations = check_compatibility(old, new)
    assert len(violations) == 1
    assert "field 'gender' retyped" in violations[0]


def test_rejects_a_new_required_field(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["properties"]["purpose_code"] = {"type": "string"}
    new["required"].append("purpose_code")
    assert check_compatibility(old, new) == [
        f"{DISBURSED}: field 'purpose_code' added as required (a new field must be optional)"
    ]


def test_rejects_an_optional_field_made_required(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["required"].append("term_months")
    assert check_compatibility(old, new) == [
        f"{DISBURSED}: field 'term_months' became required (was optional)"
    ]


def test_rejects_a_required_field_made_optional(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["required"].remove("product_id")
    violations = check_compatibility(old, new)
    assert violations == [
        f"{DISBURSED}: field 'product_id' is no longer required (old consumers need it)"
    ]


def test_accepts_a_new_optional_field(old: dict[str, Any], new: dict[str, Any]) -> None:
    new["properties"]["purpose_code"] = {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "default": None,
    }
    assert check_compatibility(old, new) == []


def test_ignores_titles_descriptions_examples_and_member_order(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    prop = new["properties"]["term_months"]
    prop["title"] = "Term (months)"
    prop["description"] = "Contractual term."
    prop["examples"] = [12]
    prop["anyOf"].reverse()
    new["description"] = "Reworded."
    assert check_compatibility(old, new) == []


def test_resolves_local_refs_structurally() -> None:
    enum_ref = {"$ref": "#/$defs/Gender"}
    old: dict[str, Any] = {
        "title": "t",
        "type": "object",
        "$defs": {"Gender": {"enum": ["female", "male"], "type": "string"}},
        "properties": {"gender": enum_ref},
    }
    renamed = copy.deepcopy(old)
    renamed["$defs"] = {"Sex": old["$defs"]["Gender"]}
    renamed["properties"]["gender"] = {"$ref": "#/$defs/Sex"}
    assert check_compatibility(old, renamed) == []
    widened = copy.deepcopy(old)
    widened["$defs"]["Gender"]["enum"].append("other")
    assert check_compatibility(old, widened) != []


def test_nested_object_fields_are_checked() -> None:
    old: dict[str, Any] = {
        "title": "t",
        "type": "object",
        "properties": {"address": {"type": "object", "properties": {"county": {"type": "string"}}}},
    }
    new = copy.deepcopy(old)
    new["properties"]["address"]["properties"] = {}
    assert check_compatibility(old, new) == ["t: field 'address.county' removed"]


def test_history_reports_a_removed_type(tmp_path: Path) -> None:
    schemas = canonical_schemas()
    snapshot(tmp_path, "1.0.0", schemas)
    current = {t: s for t, s in schemas.items() if t != DISBURSED}
    assert check_history(tmp_path, current) == [f"1.0.0: {DISBURSED}: event type removed"]


def test_history_checks_every_version(tmp_path: Path) -> None:
    schemas = canonical_schemas()
    snapshot(tmp_path, "1.0.0", schemas)
    later = copy.deepcopy(schemas)
    later[DISBURSED]["properties"]["purpose_code"] = {"type": "string"}
    snapshot(tmp_path, "1.10.0", later)
    snapshot(tmp_path, "1.2.0", schemas)
    violations = check_history(tmp_path, schemas)
    assert violations == [f"1.10.0: {DISBURSED}: field 'purpose_code' removed"]


def test_history_flags_bad_folders_and_missing_root(tmp_path: Path) -> None:
    (tmp_path / "latest").mkdir()
    assert check_history(tmp_path, {}) == ["latest: not a version number (expected e.g. 1.0.0)"]
    assert check_history(tmp_path / "absent", {})[0].endswith(
        "no contract history (expected <version>/<type>.json)"
    )


def test_snapshot_never_rewrites_a_release(tmp_path: Path) -> None:
    paths = snapshot(tmp_path, "1.0.0", canonical_schemas())
    assert json.loads(paths[0].read_text("utf-8"))["$schema"]
    with pytest.raises(FileExistsError):
        snapshot(tmp_path, "1.0.0", canonical_schemas())
    with pytest.raises(ValueError, match="not a version"):
        snapshot(tmp_path, "v2", canonical_schemas())
