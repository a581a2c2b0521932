"""Compatibility of the canonical payload schemas with every released contract version.

Each release keeps its schemas under ``contracts/history/<version>/<type>.json``. A change that
keeps an event type must be FULL compatible with all of them — data written under the new schema
readable by old consumers and vice versa:

- no field is removed;
- no field changes type (a normalised descriptor: type, format, const, enum, anyOf/oneOf/allOf
  members, items; local ``$ref``s are resolved and compared by structure; titles, descriptions,
  examples, defaults and value constraints are ignored);
- no field becomes required (a new required field, or an optional one made required), and no
  required field becomes optional (old consumers count on it).

A new optional field is compatible. Anything else needs a new major version (a new type).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts.jsontypes import JsonObject

Schema = Mapping[str, Any]

_DESCRIPTOR_KEYS = ("type", "format", "const", "enum")
_COMBINATORS = ("anyOf", "oneOf", "allOf")
_MAX_DEPTH = 32


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow local ``#/...`` references; an external one stays as it is."""
    for _ in range(_MAX_DEPTH):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest}
    return schema


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def descriptor(schema: Schema, root: Schema, depth: int = 0) -> JsonObject:
    """The parts of a property schema that decide which values it accepts, order-free."""
    if depth > _MAX_DEPTH:
        return {"$ref": "(recursive)"}
    schema = _resolve(schema, root)
    out: JsonObject = {}
    if isinstance(schema.get("$ref"), str):
        out["$ref"] = schema["$ref"]
    for key in _DESCRIPTOR_KEYS:
        if key in schema:
            value = schema[key]
            if isinstance(value, list):
                value = sorted(value, key=_canonical_json)
            out[key] = value
    for key in _COMBINATORS:
        if key in schema:
            members = [descriptor(m, root, depth + 1) for m in schema[key]]
            out[key] = sorted(members, key=_canonical_json)
    if isinstance(schema.get("items"), Mapping):
        out["items"] = descriptor(schema["items"], root, depth + 1)
    return out


def _nested_object(schema: Schema, root: Schema) -> Schema | None:
    """The object schema of a property that is a (possibly nullable) nested object."""
    schema = _resolve(schema, root)
    if isinstance(schema.get("properties"), Mapping):
        return schema
    members = [_resolve(m, root) for m in schema.get("anyOf", [])]
    objects = [m for m in members if isinstance(m.get("properties"), Mapping)]
    others = [m for m in members if m.get("type") != "null" and m not in objects]
    return objects[0] if len(objects) == 1 and not others else None


class _Checker:
    def __init__(self, name: str, old_root: Schema, new_root: Schema) -> None:
        self.name = name
        self.old_root = old_root
        self.new_root = new_root
        self.violations: list[str] = []

    def _violation(self, path: str, reason: str) -> None:
        self.violations.append(f"{self.name}: field '{path}' {reason}")

    def compare_object(self, old: Schema, new: Schema, prefix: str = "", depth: int = 0) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        for field, old_prop in old_props.items():
            path = prefix + field
            if field not in new_props:
                self._violation(path, "removed")
            else:
                self._compare_property(path, old_prop, new_props[field], depth)
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        for field in sorted(new_required - old_required):
            if field in old_props:
                self._violation(prefix + field, "became required (was optional)")
            else:
                self._violation(prefix + field, "added as required (a new field must be optional)")
        for field in sorted(old_required - new_required):
            if field in new_props:
                self._violation(prefix + field, "is no longer required (old consumers need it)")

    def _compare_property(self, path: str, old: Schema, new: Schema, depth: int) -> None:
        old_object = _nested_object(old, self.old_root)
        new_object = _nested_object(new, self.new_root)
        if old_object is not None and new_object is not None and depth < _MAX_DEPTH:
            nullable_old = descriptor(old, self.old_root).get("anyOf") is not None
            nullable_new = descriptor(new, self.new_root).get("anyOf") is not None
            if nullable_old != nullable_new:
                self._violation(path, "retyped: nullability changed")
            self.compare_object(old_object, new_object, f"{path}.", depth + 1)
            return
        old_desc = descriptor(old, self.old_root)
        new_desc = descriptor(new, self.new_root)
        if old_desc != new_desc:
            self._violation(
                path, f"retyped: {_canonical_json(old_desc)} -> {_canonical_json(new_desc)}"
            )


def check_compatibility(old: Schema, new: Schema) -> list[str]:
    """Violations of FULL compatibility of ``new`` against ``old``; empty when compatible.

    Each names the schema (its ``title``, the event type), the field and the reason.
    """
    name = str(old.get("title") or new.get("title") or "(schema)")
    checker = _Checker(name, old, new)
    checker.compare_object(old, new)
    return checker.violations


def _version_key(name: str) -> tuple[int, ...] | None:
    parts = name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def check_history(history_root: Path, current_schemas: Mapping[str, Schema]) -> list[str]:
    """Check the current schemas against every released version under ``history_root``.

    A type released once and missing now is a violation (it needs to stay, or be replaced by a
    new major version while the old one is still produced).
    """
    if not history_root.is_dir():
        return [f"{history_root}: no contract history (expected <version>/<type>.json)"]
    violations: list[str] = []
    versions: list[tuple[tuple[int, ...], Path]] = []
    for folder in sorted(p for p in history_root.iterdir() if p.is_dir()):
        key = _version_key(folder.name)
        if key is None:
            violations.append(f"{folder.name}: not a version number (expected e.g. 1.0.0)")
        else:
            versions.append((key, folder))
    for _, folder in sorted(versions):
        for file in sorted(folder.glob("*.json")):
            type_ = file.name.removesuffix(".json")
            if type_ not in current_schemas:
                violations.append(f"{folder.name}: {type_}: event type removed")
                continue
            released = json.loads(file.read_text(encoding="utf-8"))
            found = check_compatibility(released, current_schemas[type_])
            violations += [f"{folder.name}: {violation}" for violation in found]
    return violations


def snapshot(history_root: Path, version: str, schemas: Mapping[str, Schema]) -> list[Path]:
    """Record the schemas of a new release as ``history_root/<version>/<type>.json``."""
    if _version_key(version) is None:
        raise ValueError(f"not a version number: {version!r}")
    folder = history_root / version
    if folder.exists():
        raise FileExistsError(f"{folder} exists: a released version is never rewritten")
    folder.mkdir(parents=True)
    paths = []
    for type_, schema in sorted(schemas.items()):
        path = folder / f"{type_}.json"
        path.write_bytes((json.dumps(schema, indent=2, ensure_ascii=False) + "\n").encode())
        paths.append(path)
    return paths
