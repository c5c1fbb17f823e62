"""Pure functions over Kubernetes objects as JSON dicts: what a drain or a taint would evict, where a
model's image / URI / args live, the JSON patches that change them (each guarded by a `test` of the
value it replaces) and the NetworkPolicy of a partition. No I/O, so all of it is unit-tested.

Object layouts (checked against the projects' sources): Deployment `spec.template.spec.containers[]`;
KServe InferenceService v1beta1 `spec.predictor.model` (`storageUri`, `args`, `env`, `image`) or a
custom `spec.predictor.containers[]`; LLMInferenceService (v1alpha1/v1alpha2) `spec.model.uri` and
`spec.template.containers[]` (the serving container is called `main`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from reliability.errors import InputError

MANAGED_BY = "reliability-harness"
RUN_LABEL = "reliability.dev/run-id"
CHANGE_LABEL = "reliability.dev/change-id"
TAINT_KEY = "reliability.dev/gpu-lost"


# ---------------------------------------------------------------- JSON pointers


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer_get(doc: Any, path: str) -> tuple[bool, Any]:
    """(present, value) at a JSON pointer."""
    cur = doc
    for raw in path.lstrip("/").split("/") if path else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, list) and token.isdigit() and int(token) < len(cur):
            cur = cur[int(token)]
        elif isinstance(cur, dict) and token in cur:
            cur = cur[token]
        else:
            return False, None
    return True, cur


# ---------------------------------------------------------------- nodes and pods


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def node_unschedulable(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def node_available(node: dict[str, Any]) -> bool:
    """Ready, schedulable and free of NoExecute/NoSchedule taints: capacity a region can count on."""
    if condition(node, "Ready") != "True" or node_unschedulable(node):
        return False
    return not any(
        t.get("effect") in ("NoExecute", "NoSchedule") for t in (node.get("spec") or {}).get("taints") or []
    )


def owners(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("metadata") or {}).get("ownerReferences") or [])


def is_mirror(pod: dict[str, Any]) -> bool:
    return "kubernetes.io/config.mirror" in ((pod.get("metadata") or {}).get("annotations") or {})


def is_daemonset_pod(pod: dict[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in owners(pod))


def drain_evicts(pod: dict[str, Any]) -> bool:
    """Pods a drain evicts, as `kubectl drain --ignore-daemonsets` (and chaosk8s) decide."""
    return not is_mirror(pod) and not is_daemonset_pod(pod)


def tolerates(pod: dict[str, Any], taint: dict[str, Any]) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if not tol.get("key"):
            if tol.get("operator") == "Exists":
                return True
            continue
        if tol.get("key") != taint.get("key"):
            continue
        if tol.get("operator") == "Exists" or tol.get("value") == taint.get("value"):
            return True
    return False


def taint_evicts(pod: dict[str, Any], taint: dict[str, Any]) -> bool:
    return not is_mirror(pod) and not tolerates(pod, taint)


def our_taint(run_id: str) -> dict[str, str]:
    """A NoExecute taint, as GPU health tooling puts on a node whose GPU is gone; its value names the
    run so that an undo removes only ours."""
    return {"key": TAINT_KEY, "value": run_id, "effect": "NoExecute"}


def taint_index(node: dict[str, Any], taint: dict[str, Any]) -> int | None:
    for i, t in enumerate((node.get("spec") or {}).get("taints") or []):
        if all(t.get(k) == v for k, v in taint.items()):
            return i
    return None


# ---------------------------------------------------------------- model objects


@dataclass(frozen=True)
class Container:
    pointer: str  # JSON pointer of the container-like object (holds image/args/env)
    guard: list[dict[str, Any]]  # `test` ops that pin it (its name), so an index cannot drift
    uri_pointer: str | None  # where the model URI lives, when the kind has one


def serving_container(obj: dict[str, Any], kind: str, container: str | None) -> Container:
    spec = obj.get("spec") or {}
    if kind == "InferenceService":
        predictor = spec.get("predictor") or {}
        if isinstance(predictor.get("model"), dict):
            return Container("/spec/predictor/model", [], "/spec/predictor/model/storageUri")
        return _in_list(predictor.get("containers"), "/spec/predictor/containers", container, None)
    if kind == "LLMInferenceService":
        return _in_list(
            (spec.get("template") or {}).get("containers"),
            "/spec/template/containers",
            container or "main",
            "/spec/model/uri",
        )
    return _in_list(
        ((spec.get("template") or {}).get("spec") or {}).get("containers"),
        "/spec/template/spec/containers",
        container,
        None,
    )


def _in_list(items: Any, base: str, wanted: str | None, uri: str | None) -> Container:
    items = items if isinstance(items, list) else []
    for i, item in enumerate(items):
        if wanted is None or item.get("name") == wanted:
            name = item.get("name")
            guard = [{"op": "test", "path": f"{base}/{i}/name", "value": name}] if name is not None else []
            return Container(f"{base}/{i}", guard, uri)
    raise InputError(
        "target.regions", f"no container {wanted or ''!s} at {base} of the object".replace("  ", " ")
    )


def set_arg(args: list[str], flag: str, value: str | None) -> list[str]:
    """`args` with `flag` set: `--flag=value` / `--flag value` replaced in place, else appended;
    `value` None means a bare switch (`--enforce-eager`)."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == flag:
            if value is None:
                return out
            if i + 1 < len(out) and not out[i + 1].startswith("--"):
                out[i + 1] = value
            else:
                out[i] = f"{flag}={value}"
            return out
        if arg.startswith(flag + "="):
            out[i] = flag if value is None else f"{flag}={value}"
            return out
    out.append(flag if value is None else f"{flag}={value}")
    return out


def get_arg(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args) and not args[i + 1].startswith("--"):
            return args[i + 1]
    return None


def set_env(env: list[dict[str, Any]], name: str, value: str) -> list[dict[str, Any]]:
    out = [copy.deepcopy(e) for e in env]
    for e in out:
        if e.get("name") == name:
            e.pop("valueFrom", None)
            e["value"] = value
            return out
    out.append({"name": name, "value": value})
    return out


MODES = ("bad_version", "slow_decode", "kv_cache_cut", "env", "arg")


@dataclass(frozen=True)
class FieldChange:
    path: str
    before_present: bool
    before: Any
    after: Any
    guard: list[dict[str, Any]]


def model_field_change(
    obj: dict[str, Any],
    kind: str,
    container: str | None,
    mode: str,
    *,
    bad_version: str | None = None,
    fraction: float = 0.5,
    gpu_memory_utilization: float = 0.9,
    name: str | None = None,
    value: str | None = None,
) -> FieldChange:
    """Which field of a model object a fault mode changes, and to what.

    bad_version: the image (Deployment, or a KServe container) or model URI (KServe) -> `bad_version`;
    slow_decode: vLLM's `--enforce-eager` (no CUDA graphs: every decode step is slower);
    kv_cache_cut: `--gpu-memory-utilization` scaled by `fraction` (vLLM sizes its KV cache from it);
    env / arg: set environment variable or server argument `name` to `value`.
    """
    c = serving_container(obj, kind, container)
    if mode == "bad_version":
        if not bad_version:
            raise InputError(
                "target.regions", "fail_model mode bad_version needs bad_version set on the model object"
            )
        path = c.uri_pointer if c.uri_pointer and pointer_get(obj, c.uri_pointer)[0] else f"{c.pointer}/image"
        present, before = pointer_get(obj, path)
        return FieldChange(path, present, before, bad_version, c.guard)
    if mode in ("slow_decode", "kv_cache_cut", "arg"):
        path = f"{c.pointer}/args"
        present, before = pointer_get(obj, path)
        args = list(before or [])
        if mode == "slow_decode":
            after = set_arg(args, "--enforce-eager", None)
        elif mode == "kv_cache_cut":
            if not 0 < fraction < 1:
                raise InputError("fail_model", f"fraction must be between 0 and 1, got {fraction}")
            current = float(get_arg(args, "--gpu-memory-utilization") or gpu_memory_utilization)
            after = set_arg(args, "--gpu-memory-utilization", f"{current * fraction:.3f}")
        else:
            if not name:
                raise InputError("fail_model", "mode arg needs name (the server flag, e.g. --max-num-seqs)")
            after = set_arg(args, name, value)
        return FieldChange(path, present, before, after, c.guard)
    if mode == "env":
        if not name or value is None:
            raise InputError("fail_model", "mode env needs name and value")
        path = f"{c.pointer}/env"
        present, before = pointer_get(obj, path)
        return FieldChange(path, present, before, set_env(list(before or []), name, value), c.guard)
    raise InputError(
        "fail_model",
        f"mode {mode!r} has no Kubernetes mapping (use one of: {', '.join(MODES)})",
    )


def forward_ops(fc: FieldChange) -> list[dict[str, Any]]:
    """Apply: pin the container, test the old value, set the new one."""
    ops = list(fc.guard)
    if fc.before_present:
        ops.append({"op": "test", "path": fc.path, "value": fc.before})
        ops.append({"op": "replace", "path": fc.path, "value": fc.after})
    else:
        ops.append({"op": "add", "path": fc.path, "value": fc.after})
    return ops


def reverse_ops(fc: FieldChange) -> list[dict[str, Any]]:
    """Undo: only if the field still holds exactly what we set (else a human must look)."""
    ops = [*fc.guard, {"op": "test", "path": fc.path, "value": fc.after}]
    if fc.before_present:
        ops.append({"op": "replace", "path": fc.path, "value": fc.before})
    else:
        ops.append({"op": "remove", "path": fc.path})
    return ops


# ---------------------------------------------------------------- partition


def _peer(namespace: str, pod_selector: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(pod_selector)},
    }


def network_policy(
    *,
    name: str,
    namespace: str,
    pod_selector: dict[str, str],
    run_id: str,
    change_id: str,
    region: str,
    dns: tuple[str, dict[str, str], list[int]],
    scrape_from: tuple[str, dict[str, str], list[int]],
) -> dict[str, Any]:
    """Deny all ingress and egress of the region's pods except DNS egress and Prometheus' scrapes.

    NetworkPolicies add up: another policy that allows more still allows it, and some CNIs do not
    cut connections that already exist - so a partition counts only once Prometheus shows it."""
    dns_ns, dns_pods, dns_ports = dns
    prom_ns, prom_pods, prom_ports = scrape_from
    egress_ports = [{"protocol": proto, "port": p} for p in dns_ports for proto in ("UDP", "TCP")]
    ingress: dict[str, Any] = {"from": [_peer(prom_ns, prom_pods)]}
    if prom_ports:
        ingress["ports"] = [{"protocol": "TCP", "port": p} for p in prom_ports]
    egress: dict[str, Any] = {"to": [_peer(dns_ns, dns_pods)]}
    if egress_ports:
        egress["ports"] = egress_ports
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                RUN_LABEL: run_id,
                CHANGE_LABEL: change_id,
            },
            "annotations": {"reliability.dev/partitioned-region": region},
        },
        "spec": {
            "podSelector": {"matchLabels": dict(pod_selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [ingress],
            "egress": [egress],
        },
    }


def policy_name(region: str, run_id: str, change_id: str) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in region.lower()).strip("-")
    return f"reliability-partition-{base}-{run_id}-{change_id[:6]}"[:253].rstrip("-.")
