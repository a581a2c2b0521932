"""The strategy file: the board-approved objectives and targets as readable YAML.

Import validates the whole file before anything changes and applies all of it or nothing;
every error names the line and the field. Errors are located through the YAML node tree
(``yaml.compose`` keeps each node's position), so a message reads
``line 42: objectives[1].targets[0].warning_threshold: ...``.

Objectives are matched by ``code``; targets of an objective by (indicator, segment,
effective_from), which the overlap rule makes unique. Objectives absent from the file are left
as they are. Export writes the active objectives in the same format, so a file written in the
export's style round-trips unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import field_errors
from services.common.errors import Invalid
from services.objectives.schemas import (
    ObjectiveCreate,
    ObjectiveFields,
    ObjectiveRead,
    ObjectiveUpdate,
    TargetFields,
    TargetIn,
)
from services.objectives.store import ObjectivesService

FORMAT_VERSION = 1
HEADER = """\
# SPM Monitor strategy file: `spm objectives import FILE` applies it (all or nothing),
# `spm objectives export` writes the active objectives in this format.
# Shares are fractions (0.60 = 60 %). direction: at_least | at_most | within ([low, high]).
# warning_threshold: a band on the safe side of the threshold that warns before the line is crossed.
# for_days: business days a breach must last before an alert fires. notify: e-mails and/or routes.
# Indicator codes and segments (all, branch:<id>, product:<id>, gender:<g>, rural:<true|false>):
# see the indicator catalog.
"""


class StrategyObjective(ObjectiveFields):
    targets: list[TargetFields] = Field(min_length=1, max_length=100)


class StrategyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    objectives: list[StrategyObjective] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class LineError:
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.reason}"


class StrategyInvalid(Exception):
    def __init__(self, errors: Sequence[LineError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]


# --- reading --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML with decimals read exactly (``0.1`` is Decimal('0.1'), never a float)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    assert isinstance(node, yaml.ScalarNode)  # noqa: S101 - a float tag is always a scalar
    return Decimal(loader.construct_scalar(node).replace("_", ""))


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal)


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Map each field path (keys and list indexes) to the line of its value (1-based)."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            _lines(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out)


def _line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    """The line of the deepest part of ``path`` present in the file."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _path(field: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in field.split(".") if p)


def _display(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse(text: str) -> StrategyFile:
    """Parse and validate a strategy file; raises :class:`StrategyInvalid` with line numbers."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise StrategyInvalid(
            [LineError(line, "(file)", f"not valid YAML: {exc.problem}")]
        ) from None
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _lines(root, (), lines)
    try:
        return StrategyFile.model_validate(data)
    except ValidationError as exc:
        raise StrategyInvalid(
            [_located(lines, _path(e.field), e.reason) for e in field_errors(exc)]
        ) from None


def _located(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...], reason: str) -> LineError:
    return LineError(_line_of(lines, path), _display(path), reason)


# --- applying -------------------------------------------------------------------------------------


async def apply(
    session: AsyncSession,
    service: ObjectivesService,
    text: str,
    *,
    author: str,
    reason: str,
) -> ImportResult:
    """Validate the whole file, then apply it in the caller's transaction.

    Every objective is applied through the same service as the API; if any of them fails, all
    errors are collected and :class:`StrategyInvalid` is raised — the caller then rolls back,
    so nothing of the file is kept.
    """
    strategy = parse(text)
    lines: dict[tuple[Any, ...], int] = {}
    root = yaml.compose(text, Loader=_Loader)
    if root is not None:
        _lines(root, (), lines)
    errors: list[LineError] = []
    first_index: dict[str, int] = {}
    for index, objective in enumerate(strategy.objectives):
        if objective.code in first_index:
            why = f"duplicate code: objectives[{first_index[objective.code]}] has it already"
            errors.append(_located(lines, ("objectives", index, "code"), why))
        first_index.setdefault(objective.code, index)
    if errors:
        raise StrategyInvalid(errors)
    result = ImportResult([], [], [])
    for index, objective in enumerate(strategy.objectives):
        try:
            outcome = await _apply_one(session, service, objective, author=author, reason=reason)
        except Invalid as exc:
            errors += [
                _located(lines, ("objectives", index, *_path(e.field)), e.reason)
                for e in exc.errors
            ]
            continue
        getattr(result, outcome).append(objective.code)
    if errors:
        raise StrategyInvalid(errors)
    return result


async def _apply_one(
    session: AsyncSession,
    service: ObjectivesService,
    objective: StrategyObjective,
    *,
    author: str,
    reason: str,
) -> Literal["created", "updated", "unchanged"]:
    fields = objective.model_dump(include=set(ObjectiveFields.model_fields))
    current = await service.find_by_code(session, objective.code)
    if current is None:
        create = ObjectiveCreate(**fields, targets=objective.targets, reason=reason)
        await service.create(session, create, author=author)
        return "created"
    by_key = {_key(t): t.id for t in current.targets}
    targets = [TargetIn(id=by_key.get(_key(t)), **t.model_dump()) for t in objective.targets]
    patch = ObjectiveUpdate(**fields, status="active", targets=targets, reason=reason)
    after = await service.update(
        session, current.id, patch, expected_version=current.version, author=author
    )
    return "unchanged" if after.version == current.version else "updated"


def _key(target: TargetFields) -> tuple[str, str, date]:
    return (target.indicator, target.segment, target.effective_from)


# --- writing --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value, "f")
    if "." not in text:
        return dumper.represent_scalar("tag:yaml.org,2002:int", text)
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flow = all(isinstance(v, str | int | Decimal) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)


def _target_doc(target: TargetFields) -> dict[str, Any]:
    doc = target.model_dump(include=set(TargetFields.model_fields))
    return {k: v for k, v in doc.items() if v is not None and v != []}


def _objective_doc(objective: ObjectiveRead | StrategyObjective) -> dict[str, Any]:
    doc = objective.model_dump(include=set(ObjectiveFields.model_fields))
    doc = {k: v for k, v in doc.items() if v is not None and v != ""}
    doc["targets"] = [_target_doc(t) for t in objective.targets]
    return doc


def dump(objectives: Sequence[ObjectiveRead | StrategyObjective]) -> str:
    document = {
        "version": FORMAT_VERSION,
        "objectives": [_objective_doc(o) for o in objectives],
    }
    text: str = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )
    return HEADER + text


async def export(session: AsyncSession, service: ObjectivesService) -> str:
    """The active objectives, in creation order, as a strategy file."""
    return dump(await service.list_all(session, "active"))
