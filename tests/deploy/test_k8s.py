"""deploy/k8s, rendered offline (tests/deploy/kustomize.py) and validated against the Kubernetes
schemas (``kubernetes-validate``, strict: unknown fields are errors), then checked against the
code: probe ports and paths against the services' settings and routes, secrets mounted where
``SPM_SECRETS_DIR`` points and named as settings, the engine's autoscaler capped at its input
partitions, the migration Job running a command that exists."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
from typer.testing import CliRunner

from contracts.topics import CLIENTS, COMPLAINTS, LOANS
from services.common.settings import CommonSettings
from spm.accounts.config import DashboardSettings
from spm.accounts.server import create_dashboard_app
from spm.cli import Service, app
from tests.deploy.kustomize import Obj, containers, pod_spec, render
from tests.deploy.test_compose import known_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.33.0"
SERVICES = [s.value for s in Service]
NOT_SETTINGS = {"PYTHONDONTWRITEBYTECODE"}  # read by Python itself
SECRET_SETTINGS = {"DATABASE_URL", "PSEUDONYM_PEPPER", "API_KEYS", "ALERTS_SMTP_PASSWORD"}


@pytest.fixture(scope="module", params=["base", "overlays/example"])
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    return render(K8S / request.param)


@pytest.fixture(scope="module")
def example() -> list[Obj]:
    return render(K8S / "overlays" / "example")


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def config(objects: list[Obj]) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "spm-config")["data"]
    return data


def test_every_object_is_valid_against_the_kubernetes_schemas(rendered: list[Obj]) -> None:
    assert rendered
    for obj in rendered:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    names = Counter((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert all(n == 1 for n in names.values()), names


def test_each_service_and_the_dashboard_have_a_deployment_and_a_service(
    rendered: list[Obj],
) -> None:
    for name in [*SERVICES, "dashboard"]:
        deployment = find(rendered, "Deployment", name)
        service = find(rendered, "Service", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        assert service["spec"]["selector"] == labels
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][:2] == ["serve", name]
        assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_pods_run_locked_down_with_requests_and_limits(rendered: list[Obj]) -> None:
    pods = [o for o in rendered if pod_spec(o) is not None]
    assert {o["kind"] for o in pods} == {"Deployment", "Job"}
    for obj in pods:
        spec = pod_spec(obj)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
    for container in containers(rendered):
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, container["name"]


def _app(service: str, tmp: Path) -> Any:
    if service == "dashboard":
        key = str(tmp / "key.pem")
        return create_dashboard_app(DashboardSettings(dashboard_signing_key_file=key))
    module = importlib.import_module(f"services.{service}.app")
    settings = CommonSettings(pseudonym_pepper="p" * 32)
    return module.create_app(settings)


@pytest.mark.parametrize("service", SERVICES)
async def test_probes_use_the_services_port_and_health_routes(
    example: list[Obj], service: str, tmp_path: Path
) -> None:
    """The container port is the port setting's default and the ConfigMap's value; the probes
    call routes the service answers (its app, built without starting it: not a 404)."""
    (container,) = find(example, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    setting = f"{service}_port"
    default = DashboardSettings.model_fields[setting].default
    assert port == {"name": "http", "containerPort": default, "protocol": "TCP"}
    assert config(example)[setting.upper()] == str(port["containerPort"])
    assert find(example, "Service", service)["spec"]["ports"][0]["port"] == port["containerPort"]
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/healthz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    # ASGITransport never runs the lifespan: the app is built, not started (no Kafka, database)
    transport = httpx.ASGITransport(app=_app(service, tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://k8s") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code in (200, 503)  # 503: dependencies down
        assert (await client.get("/no-such-route")).status_code == 404


def test_the_services_trust_the_dashboard_it_proxies_to(example: list[Obj]) -> None:
    """The issuer the services trust is the dashboard's Service; its proxy targets are theirs."""
    data = config(example)
    port = find(example, "Service", "dashboard")["spec"]["ports"][0]["port"]
    url = f"http://dashboard:{port}"
    assert data["DASHBOARD_PUBLIC_URL"] == url
    trusted = {issuer["issuer"]: issuer for issuer in json.loads(data["OIDC_ISSUERS"])}
    assert trusted[url]["jwks_url"] == f"{url}/.well-known/jwks.json"
    assert (trusted[url]["roles_claim"], trusted[url]["branches_claim"]) == ("roles", "branches")
    for name in SERVICES:
        if name != "dashboard":
            service_port = find(example, "Service", name)["spec"]["ports"][0]["port"]
            assert data[f"DASHBOARD_{name.upper()}_URL"] == f"http://{name}:{service_port}"


def test_settings_are_known_and_secrets_are_files(rendered: list[Obj]) -> None:
    data = config(rendered)
    known = known_settings()
    assert set(data) - known - NOT_SETTINGS == set()
    assert not set(data) & SECRET_SETTINGS, "a secret in the ConfigMap"
    secrets_dir = data["SPM_SECRETS_DIR"]
    for obj in rendered:
        spec = pod_spec(obj)
        if spec is None:
            continue
        (container,) = spec["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "spm-config"}}]
        assert "env" not in container  # nothing secret inline
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["secrets"]["mountPath"] == secrets_dir and mounts["secrets"]["readOnly"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
        files = [i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]]
        assert files and {f.upper() for f in files} <= SECRET_SETTINGS & known, files
        assert "database_url" in files
    ingest = pod_spec(find(rendered, "Deployment", "ingest"))
    assert ingest is not None
    assert "pseudonym_pepper" in str(ingest["volumes"])
    others = [pod_spec(find(rendered, "Deployment", s)) for s in SERVICES if s != "ingest"]
    assert all("pseudonym_pepper" not in str(spec) for spec in others)  # only ingest needs it


def test_autoscaling_and_disruption_budgets(rendered: list[Obj]) -> None:
    hpas = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == {"ingest", "indicators"}
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    partitions = max(t.partitions for t in (CLIENTS, LOANS, COMPLAINTS))
    assert hpas["indicators"]["spec"]["maxReplicas"] == partitions  # more would own nothing
    deployments = [o for o in rendered if o["kind"] == "Deployment"]
    pdbs = [o for o in rendered if o["kind"] == "PodDisruptionBudget"]
    assert {p["metadata"]["name"] for p in pdbs} == set(SERVICES)
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            d["metadata"]["name"]
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matched == [pdb["metadata"]["name"]]


def test_migrations_run_as_a_job_of_an_existing_command(rendered: list[Obj]) -> None:
    job = find(rendered, "Job", "migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    result = CliRunner().invoke(app, [*container["args"], "--help"])
    assert result.exit_code == 0, result.output
    assert container["args"] == ["migrate"]


def test_the_example_overlay_applies_its_namespace_image_and_patches(example: list[Obj]) -> None:
    namespace = find(example, "Namespace", "spm")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in example:
        if obj["kind"] != "Namespace":  # the overlay's own: the base's labels are not on it
            assert obj["metadata"]["namespace"] == "spm", obj["metadata"]["name"]
            assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "spm-monitor"
    images = {c["image"] for c in containers(example)}
    assert images == {"registry.example.org/spm-monitor:0.1.0"}
    assert config(example)["INSTITUTION_TIMEZONE"] == "Africa/Nairobi"
    assert find(example, "HorizontalPodAutoscaler", "ingest")["spec"]["maxReplicas"] == 4
