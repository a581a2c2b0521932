"""Generate the committed contract artefacts from the code, byte for byte reproducibly.

- ``contracts/schemas/<type>.json``: JSON Schema (draft 2020-12) of each canonical payload, as it
  travels (serialisation form: decimals are strings);
- ``contracts/schemas/input/<type>.json``: the input form ingest accepts (validation form);
- ``contracts/asyncapi.yaml``: the AsyncAPI 3.0 document of every topic and event type;
- ``contracts/examples/<type>.{input,canonical}.json``: example events (``contracts.examples``).

``export_all`` writes them; ``check_all`` names the files that differ from what it would write
(CI and the tests run it, so a model change without regenerating fails).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts.asyncapi import asyncapi_yaml
from contracts.examples import EXAMPLES
from contracts.jsontypes import JsonObject
from contracts.registry import EVENT_TYPES, EventType

CONTRACT_VERSION = "1.2.0"
"""Version of the contract; ``contracts/history/<version>/`` keeps the schemas of each release
(1.1 added the optional ``transaction_id`` of ``loan.disbursed`` and ``loan.written_off``; 1.2
the optional ``owner`` of ``target.changed``)."""

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_PREFIX = "urn:spm-monitor:contracts:schema:"

CONTRACTS_DIR = "contracts"
SCHEMAS_DIR = f"{CONTRACTS_DIR}/schemas"
INPUT_SCHEMAS_DIR = f"{SCHEMAS_DIR}/input"
EXAMPLES_DIR = f"{CONTRACTS_DIR}/examples"
ASYNCAPI_FILE = f"{CONTRACTS_DIR}/asyncapi.yaml"
MANAGED_DIRS = (SCHEMAS_DIR, INPUT_SCHEMAS_DIR, EXAMPLES_DIR)
"""Directories whose ``*.json`` files are all generated: anything else in them is stale."""


def _with_header(body: JsonObject, id_: str, title: str, description: str) -> JsonObject:
    rest = {k: v for k, v in body.items() if k not in ("title", "description")}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": id_,
        "title": title,
        "description": description,
        **rest,
    }


def canonical_schema(et: EventType) -> JsonObject:
    """JSON Schema of the canonical payload (the CloudEvents ``data``) of one event type."""
    return _with_header(
        et.model.model_json_schema(mode="serialization"),
        f"{SCHEMA_ID_PREFIX}{et.type}",
        et.type,
        f"{et.summary} Canonical payload on {et.topic.name}; unknown fields are rejected.",
    )


def input_schema(et: EventType) -> JsonObject | None:
    """JSON Schema of the input form ingest accepts, or None when no source sends the type."""
    if et.input_model is None:
        return None
    return _with_header(
        et.input_model.model_json_schema(mode="validation"),
        f"{SCHEMA_ID_PREFIX}input:{et.type}",
        f"{et.type} (input)",
        f"{et.summary} Input form accepted by ingest: raw source identifiers (client_id, "
        "officer_id) instead of pseudonyms; unknown fields are accepted and dropped.",
    )


def canonical_schemas() -> dict[str, JsonObject]:
    """Event type -> JSON Schema of its canonical payload, for every registered type."""
    return {type_: canonical_schema(et) for type_, et in EVENT_TYPES.items()}


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def artefacts() -> dict[str, str]:
    """Every generated file: path relative to the project root (POSIX) -> its exact text."""
    out: dict[str, str] = {}
    for type_, et in EVENT_TYPES.items():
        out[f"{SCHEMAS_DIR}/{type_}.json"] = _json_text(canonical_schema(et))
        schema = input_schema(et)
        if schema is not None:
            out[f"{INPUT_SCHEMAS_DIR}/{type_}.json"] = _json_text(schema)
    for type_ in EVENT_TYPES:
        example = EXAMPLES.get(type_)
        if example is None:
            raise LookupError(f"no example event for {type_}: add one to contracts/examples.py")
        structured_input = example.input()
        if structured_input is not None:
            out[f"{EXAMPLES_DIR}/{type_}.input.json"] = _json_text(structured_input)
        out[f"{EXAMPLES_DIR}/{type_}.canonical.json"] = _json_text(example.canonical())
    out[ASYNCAPI_FILE] = asyncapi_yaml(CONTRACT_VERSION, schemas_dir="./schemas")
    return out


def _stale(root: Path, expected: dict[str, str]) -> list[str]:
    found = (path for folder in MANAGED_DIRS for path in (root / folder).glob("*.json"))
    return sorted(
        rel for rel in (p.relative_to(root).as_posix() for p in found) if rel not in expected
    )


def export_all(root: Path) -> list[Path]:
    """Write every artefact under ``root`` (the project root), delete stale generated files.

    Files whose content is already right are left untouched. Returns the artefact paths.
    """
    expected = artefacts()
    paths = []
    for rel, text in expected.items():
        path = root / rel
        if not path.is_file() or path.read_bytes() != text.encode():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())
        paths.append(path)
    for rel in _stale(root, expected):
        (root / rel).unlink()
    return paths


def check_all(root: Path) -> list[str]:
    """Relative paths of the artefacts under ``root`` that are missing, differ or are stale."""
    expected = artefacts()
    differ = [
        rel
        for rel, text in expected.items()
        if not (root / rel).is_file() or (root / rel).read_bytes() != text.encode()
    ]
    return sorted(differ + _stale(root, expected))
