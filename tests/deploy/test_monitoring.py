"""The Prometheus rules and the Grafana dashboard, checked for structure (promtool is not
available here). That every metric they name is exposed is checked after a real workload in
tests/common/test_metrics.py; here, that they name only families the services define."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from services.common.metrics import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "spm.json"
DURATION = re.compile(r"\d+[smhd]")
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def defined_names() -> set[str]:
    return {next(iter(f.describe())).name + s for f in FAMILIES for s in SUFFIXES}


def names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bspm_[a-z0-9_]+\b", expr))


def _balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1, "{": 1, "}": -1, "[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_the_rules_file_has_prometheus_rule_structure() -> None:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    alerts: list[str] = []
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"], group.get("name")
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"][0].isupper() and rule["expr"].strip(), rule
            assert _balanced(rule["expr"]), rule["alert"]
            assert "for" not in rule or DURATION.fullmatch(rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"], rule["alert"]
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    # the three the operators asked for
    exprs = " ".join(r["expr"] for g in document["groups"] for r in g["rules"])
    assert "delta(spm_consumer_lag" in exprs
    assert 'outcome="dead_lettered"' in exprs
    assert 'spm_notifications_total{outcome="failed"}' in exprs


def test_rules_and_dashboard_name_only_defined_families() -> None:
    rules = yaml.safe_load(RULES.read_text())
    named = {n for g in rules["groups"] for r in g["rules"] for n in names_in(r["expr"])}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named |= {n for e in exprs for n in names_in(e)}
    assert named and named <= defined_names(), named - defined_names()


def test_the_dashboard_shows_every_family() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for family in FAMILIES:
        name = next(iter(family.describe())).name
        assert name in exprs, name
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(_balanced(t["expr"]) for t in panel["targets"]), panel["title"]
