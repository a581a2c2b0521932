"""No Docker engine runs here, so the compose file is checked for structure instead."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import services
from services.common.settings import CommonSettings
from spm.accounts.config import DashboardSettings
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
    classes.add(DashboardSettings)  # spm serve dashboard
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


def test_only_the_services_ports_are_published(compose: dict[str, Any]) -> None:
    """Kafka (plain text, no authentication), PostgreSQL and OTLP stay on the compose network."""
    published = {name for name, spec in compose["services"].items() if spec.get("ports")}
    assert published == OUR_SERVICES


def test_the_database_password_comes_from_a_secret(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/database_password"
    assert "database_password" in postgres["secrets"]
    for name in OUR_SERVICES:
        spec = compose["services"][name]
        assert make_url(spec["environment"]["DATABASE_URL"]).password is None, name
        assert "database_password" in spec["secrets"], name
        assert spec["environment"]["SPM_SECRETS_DIR"] == "/run/secrets"


def test_every_secret_our_services_mount_is_a_setting(compose: dict[str, Any]) -> None:
    """A secret file in SPM_SECRETS_DIR is read as the setting of the same name."""
    known = known_settings()
    for name in OUR_SERVICES:
        for secret in compose["services"][name]["secrets"]:
            assert secret.upper() in known, (name, secret)


DIGEST = re.compile(r"@sha256:[0-9a-f]{64}")


def _third_party_images(compose: dict[str, Any]) -> list[str]:
    images = [spec["image"] for spec in compose["services"].values() if "build" not in spec]
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    return images + re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)


def test_images_have_a_version_and_well_formed_digests(compose: dict[str, Any]) -> None:
    """Digests not known here are left to `make pin-images`, which the compose file names."""
    images = _third_party_images(compose)
    assert len(images) == 5
    for image in images:
        name_tag = DIGEST.sub("", image)
        assert re.fullmatch(r"[a-z0-9./-]+:[0-9][\w.-]*", name_tag), image  # a version, no latest
        assert "@" not in image or DIGEST.search(image), image
    assert all(DIGEST.search(i) for i in images if i.startswith(("python:", "postgres:")))
    assert (ROOT / "deploy" / "pin-images.sh").stat().st_mode & 0o111
    assert "make pin-images" in (ROOT / "docker-compose.yml").read_text()


def test_the_collector_forwards_to_an_otlp_backend(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "otel" / "collector.yaml").read_text())
    exporter = config["exporters"]["otlphttp"]
    assert exporter["endpoint"] == "${env:OTLP_BACKEND_ENDPOINT}"
    for pipeline in config["service"]["pipelines"].values():
        assert "otlphttp" in pipeline["exporters"]
        assert set(pipeline["processors"]) <= set(config["processors"])
    collector = compose["services"]["otel-collector"]
    assert "OTLP_BACKEND_ENDPOINT" in collector["environment"]
