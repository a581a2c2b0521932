"""The documentation in docs/ and the code agree: indicator codes and settings, both ways.

A catalog code missing from docs/indicators.md, a documented indicator the catalog does not
have, a setting the code reads that docs/operations.md does not list, or a listed setting no
code reads: each fails here, so the pages cannot silently fall behind the code.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from contracts.indicator_codes import EXIT_REASON_PREFIX, INDICATOR_CODES
from services.indicators.catalog import BY_CODE

DOCS = Path(__file__).resolve().parents[1] / "docs"
TICKED = re.compile(r"`([^`]+)`")
PLACEHOLDER = re.compile(r"^(?P<base>[a-z0-9_]+)\.<[a-z_]+>$")
"""A family of codes, one per value (``exit_reason_share.<reason>``)."""
SETTINGS_MODULES = (
    "services.common.settings",
    "services.ingest.config",
    "services.ingest.fineract.config",
    "services.indicators.config",
    "services.objectives.config",
    "services.alerts.config",
    "spm.report.config",
    "spm.accounts.config",
)


def table_first_cells(page: str, header: str) -> list[str]:
    """The first cell of every body row of the tables whose first header cell is ``header``."""
    cells: list[str] = []
    in_table = False
    for line in page.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        first = line.strip("|").split("|")[0].strip()
        if not in_table:
            in_table = first == header
            continue
        if set(first) <= {"-", ":", " "}:
            continue
        cells.append(first)
    return cells


def documented_codes() -> set[str]:
    page = (DOCS / "indicators.md").read_text(encoding="utf-8")
    return {code for cell in table_first_cells(page, "code") for code in TICKED.findall(cell)}


def catalog_codes() -> set[str]:
    return set(INDICATOR_CODES) | set(BY_CODE)


def test_every_catalog_code_is_documented() -> None:
    missing = catalog_codes() - documented_codes()
    assert not missing, f"add to the catalog table of docs/indicators.md: {sorted(missing)}"


def test_every_documented_indicator_exists_in_the_catalog() -> None:
    unknown = []
    for code in documented_codes():
        family = PLACEHOLDER.match(code)
        if family is not None:
            base = family["base"]
            if f"{base}." != EXIT_REASON_PREFIX and base not in catalog_codes():
                unknown.append(code)
        elif code not in catalog_codes():
            unknown.append(code)
    assert not unknown, f"documented but not in the catalog: {sorted(unknown)}"


def settings_fields() -> dict[str, str]:
    """Every setting of every service: environment name -> the class that declares it."""
    fields: dict[str, str] = {}
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__ == module_name:
                for name in cls.model_fields:
                    fields.setdefault(name.upper(), cls.__name__)
    return fields


def documented_settings() -> set[str]:
    page = (DOCS / "operations.md").read_text(encoding="utf-8")
    return {
        name
        for cell in table_first_cells(page, "setting")
        for name in TICKED.findall(cell)
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name)
    }


def test_every_setting_of_every_service_is_documented() -> None:
    fields = settings_fields()
    assert {"DATABASE_URL", "INGEST_DB_SCHEMA", "ALERTS_SMTP_HOST"} <= set(fields)
    missing = sorted(
        f"{name} ({cls})" for name, cls in fields.items() if name not in documented_settings()
    )
    assert not missing, f"add to a settings table of docs/operations.md: {missing}"


def test_every_documented_setting_exists() -> None:
    unknown = documented_settings() - set(settings_fields())
    assert not unknown, f"docs/operations.md lists settings no code reads: {sorted(unknown)}"


def test_the_table_reader_finds_rows_and_placeholders() -> None:
    page = "| code | x |\n|---|---|\n| `a_b` / `c` | y |\n\n| other |\n|---|\n| `z` |\n"
    assert table_first_cells(page, "code") == ["`a_b` / `c`"]
    assert PLACEHOLDER.match("poverty_outreach_entry.<line>")
    assert not PLACEHOLDER.match("poverty_outreach_entry.national")
