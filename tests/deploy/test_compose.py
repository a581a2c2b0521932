"""No Docker engine runs here, so the compose file is checked for structure instead."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

import services
from services.common.settings import CommonSettings
from spm.cli import Service, app

ROOT = Path(__file__).resolve().parents[2]
OUR_SERVICES = {s.value for s in Service}
# Read by the settings machinery itself rather than being a setting.
SETTINGS_PLUMBING = {"SPM_SECRETS_DIR"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def known_settings() -> set[str]:
    """Every field of CommonSettings and of each service's own settings class, as env names."""
    classes: set[type[BaseSettings]] = {CommonSettings}
    for module_info in pkgutil.iter_modules(services.__path__):
        try:
            config = importlib.import_module(f"services.{module_info.name}.config")
        except ModuleNotFoundError:
            continue
        classes |= {
            obj
            for obj in vars(config).values()
            if isinstance(obj, type) and issubclass(obj, BaseSettings)
        }
    return {name.upper() for cls in classes for name in cls.model_fields} | SETTINGS_PLUMBING


def test_every_container_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        assert "healthcheck" in spec, f"{name} has no healthcheck"
        assert spec["healthcheck"]["test"], name


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
            assert condition == {"condition": "service_healthy"}, (name, dependency)


def test_all_four_services_run_cli_commands_that_exist(compose: dict[str, Any]) -> None:
    ours = {n: s for n, s in compose["services"].items() if "build" in s}
    assert set(ours) == OUR_SERVICES
    for name, spec in ours.items():
        assert spec["command"] == ["serve", name]
        result = CliRunner().invoke(app, [*spec["command"], "--help"])
        assert result.exit_code == 0, result.output
    assert (ROOT / ours["ingest"]["build"]["dockerfile"]).is_file()


def test_every_env_var_is_a_known_setting(compose: dict[str, Any]) -> None:
    known = known_settings()
    for name, spec in compose["services"].items():
        if "build" not in spec:
            continue
        unknown = set(spec.get("environment", {})) - known
        assert not unknown, f"{name} sets unknown settings {sorted(unknown)}"


def test_no_host_port_clashes(compose: dict[str, Any]) -> None:
    host_ports = [
        str(port).split(":")[0]
        for spec in compose["services"].values()
        for port in spec.get("ports", [])
    ]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_kafka_runs_kraft_without_zookeeper(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "zookeeper" not in compose["services"]


def test_secret_examples_exist(compose: dict[str, Any]) -> None:
    for secret in compose["secrets"].values():
        assert (ROOT / f"{secret['file']}.example").is_file(), secret["file"]
