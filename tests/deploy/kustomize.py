"""A renderer of the small kustomize subset deploy/k8s uses, so the manifests are tested where no
kubectl runs: ``resources`` (files and directories), ``patches`` (inline JSON 6902 with a kind +
name target), ``images`` (newName/newTag), ``labels`` (metadata labels only) and ``namespace``.
Anything else in a kustomization is refused, so the manifests cannot drift outside what the test
understands (the real kustomize renders the same subset the same way)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "patches", "images", "labels", "namespace"}
CLUSTER_SCOPED = {"Namespace"}

Obj = dict[str, Any]


def render(directory: Path) -> list[Obj]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise ValueError(f"{directory}: fields this renderer does not know: {sorted(unsupported)}")
    objects: list[Obj] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        matched = [
            o
            for o in objects
            if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        if not matched:
            raise ValueError(f"{directory}: patch target {target} matches nothing")
        for obj in matched:
            for op in yaml.safe_load(patch["patch"]):
                json_patch(obj, op)
    for image in kustomization.get("images", []):
        for container in containers(objects):
            name, _, _ = container["image"].partition(":")
            if name == image["name"]:
                new = image.get("newName", name)
                container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else new
    for label in kustomization.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise ValueError(f"{directory}: only metadata labels are supported")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def json_patch(obj: Obj, op: dict[str, Any]) -> None:
    """One RFC 6902 operation (add, replace, remove) on ``obj``, in place."""
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    if op["op"] == "replace":
        if isinstance(node, dict) and key not in node:
            raise KeyError(f"replace of a missing {op['path']}")
        node[key] = copy.deepcopy(op["value"])
    elif op["op"] == "add":
        if isinstance(node, list):
            node.insert(len(node) if key == "-" else key, copy.deepcopy(op["value"]))
        else:
            node[key] = copy.deepcopy(op["value"])
    elif op["op"] == "remove":
        del node[key]
    else:
        raise ValueError(f"unsupported patch operation {op['op']}")


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(objects: list[Obj]) -> list[Obj]:
    out: list[Obj] = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            out += spec.get("initContainers", []) + spec["containers"]
    return out
