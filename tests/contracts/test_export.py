"""Generated artefacts: committed files equal what the code generates, and say the right things."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from contracts.cli import contracts_app
from contracts.envelope import parse_canonical, to_kafka
from contracts.examples import EXAMPLES
from contracts.export import (
    ASYNCAPI_FILE,
    JSON_SCHEMA_DIALECT,
    SCHEMAS_DIR,
    artefacts,
    check_all,
    export_all,
)
from contracts.registry import EVENT_TYPES
from contracts.topics import OBJECTIVES, TOPICS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / ASYNCAPI_FILE).read_text("utf-8"))
    return doc


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_committed_artefacts_are_up_to_date() -> None:
    assert check_all(PROJECT_ROOT) == []


def test_regenerating_into_a_tmp_dir_equals_the_committed_files(tmp_path: Path) -> None:
    paths = export_all(tmp_path)
    assert paths
    for path in paths:
        rel = path.relative_to(tmp_path)
        assert path.read_bytes() == (PROJECT_ROOT / rel).read_bytes(), rel
    assert check_all(tmp_path) == []


def test_generation_is_stable_across_processes(tmp_path: Path) -> None:
    export_all(tmp_path)
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-m", "contracts.cli", "export", "--check", "--root", str(tmp_path)],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_check_all_names_missing_changed_and_stale_files(tmp_path: Path) -> None:
    export_all(tmp_path)
    changed = tmp_path / SCHEMAS_DIR / "spm.loan.disbursed.v1.json"
    changed.write_text(changed.read_text() + " ", encoding="utf-8")
    (tmp_path / ASYNCAPI_FILE).unlink()
    (tmp_path / SCHEMAS_DIR / "spm.loan.teleported.v1.json").write_text("{}", encoding="utf-8")

    assert check_all(tmp_path) == sorted(
        [
            ASYNCAPI_FILE,
            f"{SCHEMAS_DIR}/spm.loan.disbursed.v1.json",
            f"{SCHEMAS_DIR}/spm.loan.teleported.v1.json",
        ]
    )
    export_all(tmp_path)
    assert check_all(tmp_path) == []
    assert not (tmp_path / SCHEMAS_DIR / "spm.loan.teleported.v1.json").exists()


def test_cli_export_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    stale = runner.invoke(contracts_app, ["export", "--check", "--root", str(tmp_path)])
    assert stale.exit_code == 1
    assert ASYNCAPI_FILE in stale.output
    assert "out of date" in stale.output

    written = runner.invoke(contracts_app, ["export", "--root", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert f"Wrote {len(artefacts())}" in written.output

    fresh = runner.invoke(contracts_app, ["export", "--check", "--root", str(tmp_path)])
    assert fresh.exit_code == 0
    assert "up to date" in fresh.output


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_schema_files_are_identified_json_schemas(type_: str) -> None:
    schema = json.loads((PROJECT_ROOT / SCHEMAS_DIR / f"{type_}.json").read_text("utf-8"))
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"].endswith(type_)
    assert schema["title"] == type_
    assert schema["additionalProperties"] is False
    if EVENT_TYPES[type_].input_model is not None:
        path = PROJECT_ROOT / SCHEMAS_DIR / "input" / f"{type_}.json"
        raw = json.loads(path.read_text("utf-8"))
        assert raw["$id"] != schema["$id"]
        assert "client_pid" not in raw["properties"]


def test_asyncapi_version_and_info(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"]
    assert asyncapi["info"]["version"]


def test_asyncapi_has_a_channel_per_topic(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]
    assert set(channels) == set(TOPICS)
    for name, spec in TOPICS.items():
        binding = channels[name]["bindings"]["kafka"]
        assert channels[name]["address"] == name
        assert binding["partitions"] == spec.partitions
        assert binding["topicConfiguration"]["cleanup.policy"] == [spec.cleanup_policy]
        assert binding["topicConfiguration"]["retention.ms"] == spec.retention_ms
    objectives = channels[OBJECTIVES.name]["bindings"]["kafka"]["topicConfiguration"]
    assert objectives["cleanup.policy"] == ["compact"]


def test_asyncapi_has_a_message_per_event_type(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    assert set(messages) == set(EVENT_TYPES)
    for type_, et in EVENT_TYPES.items():
        message = messages[type_]
        assert message["name"] == type_
        assert message["contentType"] == "application/json"
        ref = message["payload"]["schema"]["$ref"]
        assert (PROJECT_ROOT / "contracts" / ref).resolve().is_file(), ref
        assert "description" in message["bindings"]["kafka"]["key"]
        channel_messages = asyncapi["channels"][et.topic.name]["messages"]
        assert resolve(asyncapi, channel_messages[type_]["$ref"]) is message


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_asyncapi_headers_cover_what_the_codec_writes(asyncapi: dict[str, Any], type_: str) -> None:
    headers = asyncapi["components"]["messages"][type_]["headers"]
    record = to_kafka(parse_canonical(EXAMPLES[type_].canonical()))
    written = {name for name, _ in record.headers}
    assert written <= set(headers["properties"])
    assert set(headers["required"]) <= written
    assert headers["properties"]["ce_type"]["const"] == type_


def test_asyncapi_operations(asyncapi: dict[str, Any]) -> None:
    operations = asyncapi["operations"]
    senders: dict[str, list[str]] = {}
    for operation_id, operation in operations.items():
        channel = resolve(asyncapi, operation["channel"]["$ref"])
        assert operation["action"] in ("send", "receive")
        for message_ref in operation.get("messages", []):
            assert message_ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            resolve(asyncapi, message_ref["$ref"])
        if operation["action"] == "send":
            app = operation_id.split(".", 1)[0]
            senders.setdefault(channel["address"], []).append(app)
    assert senders == {
        "spm.clients.v1": ["ingest"],
        "spm.loans.v1": ["ingest"],
        "spm.complaints.v1": ["ingest"],
        "spm.ingest.deadletter.v1": ["ingest"],
        "spm.indicators.v1": ["indicators"],
        "spm.objectives.v1": ["objectives"],
        "spm.alerts.v1": ["alerts"],
        "spm.actions.v1": ["alerts"],
    }
