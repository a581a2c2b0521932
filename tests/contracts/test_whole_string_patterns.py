"""Every pattern-validated field of the contracts and of every API body matches the WHOLE value.

Python's ``$`` also matches before a final ``"\\n"``: ``branch:Y\\n`` once passed as a segment and
broke the e-mail subject built from it. The fields are enumerated from the models themselves (the
contract's payload and envelope models, their input twins, and the body and query models of every
route of every service), so a new field cannot escape; for each, a value its pattern allows is
accepted and the same value followed by a line feed, a carriage return or a NUL is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from contracts.envelope import CanonicalEvent
from contracts.registry import EVENT_TYPES
from services.alerts.app import create_app as alerts_app
from services.common.settings import CommonSettings
from services.indicators.app import create_app as indicators_app
from services.ingest.app import create_app as ingest_app
from services.ingest.validation import InputEnvelope
from services.objectives.app import create_app as objectives_app

SUFFIXES = ("\n", "\r", "\x00")


@dataclass(frozen=True)
class PatternField:
    """One field whose JSON Schema carries a ``pattern``, probed on its own."""

    where: str
    probe: type[BaseModel]
    key: str
    pattern: str
    in_list: bool
    min_length: int
    max_length: int

    def __str__(self) -> str:
        return self.where

    def check(self, value: str) -> None:
        self.probe.model_validate({self.key: [value] if self.in_list else value})


def _routes(app: FastAPI) -> Iterator[APIRoute]:
    stack: list[Any] = list(app.router.routes)
    while stack:
        route = stack.pop()
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            stack += list(included.routes)


def _api_models() -> Iterator[tuple[str, type[BaseModel] | FieldInfo, str]]:
    """Body models and query/path parameters of every route of every service."""
    shared = CommonSettings(pseudonym_pepper="p" * 40)
    apps = {
        "ingest": ingest_app(shared),
        "indicators": indicators_app(shared),
        "objectives": objectives_app(shared),
        "alerts": alerts_app(shared),
    }
    for service, app in apps.items():
        for route in _routes(app):
            if route.body_field is not None:
                annotation = route.body_field.field_info.annotation
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    yield f"{service} {route.path} body", annotation, ""
            for param in route.dependant.query_params + route.dependant.path_params:
                yield f"{service} {route.path} {param.name}", param.field_info, param.name


def _nested(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``model`` and every model its fields hold (lists and optionals included)."""
    seen: set[type[BaseModel]] = set()
    stack = [model]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        for info in current.model_fields.values():
            stack += [t for t in _types(info.annotation) if issubclass(t, BaseModel)]


def _types(annotation: Any) -> Iterator[type]:
    if isinstance(annotation, type):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _types(arg)


def _find_pattern(schema: dict[str, Any], defs: dict[str, Any], in_list: bool = False) -> Any:
    """(pattern, in_list, minLength, maxLength) of a string field, else None."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "pattern" in schema:
        return schema["pattern"], in_list, schema.get("minLength", 0), schema.get("maxLength")
    for option in schema.get("anyOf", []):
        if (found := _find_pattern(option, defs, in_list)) is not None:
            return found
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _find_pattern(schema["items"], defs, True)
    return None


def _probe(where: str, info: FieldInfo, key: str) -> PatternField | None:
    field: dict[str, Any] = {key: (info.annotation, info)}
    probe = create_model("Probe", __config__=ConfigDict(extra="forbid"), **field)
    schema = probe.model_json_schema()
    found = _find_pattern(schema["properties"][info.alias or key], schema.get("$defs", {}))
    if found is None:
        return None
    pattern, in_list, min_length, max_length = found
    return PatternField(
        where, probe, info.alias or key, pattern, in_list, min_length, max_length or 10_000
    )


def pattern_fields() -> list[PatternField]:
    roots: list[tuple[str, type[BaseModel]]] = [
        ("envelope", CanonicalEvent),
        ("input envelope", InputEnvelope),
    ]
    for spec in EVENT_TYPES.values():
        roots.append((spec.type, spec.model))
        if spec.input_model is not None:
            roots.append((f"{spec.type} input", spec.input_model))
    out: dict[str, PatternField] = {}
    for where, root, key in _api_models():
        if isinstance(root, FieldInfo):
            if (field := _probe(where, root, key)) is not None:
                out[where] = field
        else:
            roots.append((where, root))
    for where, root in roots:
        for model in _nested(root):
            for name, info in model.model_fields.items():
                label = f"{where}: {model.__name__}.{name}"
                if (field := _probe(label, info, name)) is not None:
                    out[label] = field
    return sorted(out.values(), key=str)


FIELDS = pattern_fields()


def test_the_enumeration_finds_the_fields_that_matter() -> None:
    names = {f.where.rsplit(": ", 1)[-1] for f in FIELDS}
    expected = {
        "CanonicalEvent.source",
        "InputEnvelope.datacontenttype",
        "LoanDisbursed.branch_id",
        "LoanDisbursed.loan_id",
        "LoanDisbursedInput.loan_id",
        "ComplaintOpenedInput.complaint_id",
        "LoanDisbursed.client_pid",
        "TargetFields.segment",
        "TargetFields.notify",
        "ObjectiveCreate.code",
    }
    assert expected <= names, expected - names


@pytest.mark.parametrize("field", FIELDS, ids=str)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), suffix=st.sampled_from(SUFFIXES))
def test_a_pattern_matches_the_whole_value(
    field: PatternField, data: st.DataObject, suffix: str
) -> None:
    value = data.draw(
        st.from_regex(field.pattern, fullmatch=True).filter(
            lambda v: field.min_length <= len(v) < field.max_length
        ),
        label="value",
    )
    field.check(value)  # allowed by its pattern: accepted
    with pytest.raises(ValidationError):
        field.check(value + suffix)
