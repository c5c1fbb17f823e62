"""The Kubernetes target (`target: {kind: kubernetes, ...}` in a scenario) and its state file.

The state file is what every fault function works from (as the lab's `state.json` is for
`reliability.lab.faults`): the harness writes it into the run directory before any fault, and the
fault ledger next to it names it, so `reliability recover` finds the right cluster - kubeconfig
path, context and the identity to check - with no scenario at hand.

Nothing here guesses: the kubeconfig and the context must be named (no `~/.kube/config`, no current
context, no `http://localhost` fallback as chaostoolkit-kubernetes and the official client have),
and the cluster must prove it is the expected one (the `kube-system` namespace's UID) before
anything is sent that could change it.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from reliability.errors import InputError
from reliability.files import parse_model, write_json_atomic

STATE_NAME = "k8s-target.json"
DEFAULT_GPU_SELECTOR = "nvidia.com/gpu.present=true"
DEFAULT_REGION_LABEL = "topology.kubernetes.io/region"
DEFAULT_SIGNALS = "vllm-dcgm-ksm"
KIND_API_VERSION = {
    "Deployment": "apps/v1",
    "InferenceService": "serving.kserve.io/v1beta1",
    "LLMInferenceService": "serving.kserve.io/v1alpha1",
}
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _seconds(value: Any) -> Any:
    from reliability.scenario import parse_duration

    return parse_duration(value)


Seconds = Annotated[float, Field(gt=0), BeforeValidator(_seconds, json_schema_input_type=float | str)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def forbidden_namespace(name: str) -> bool:
    """The cluster's own namespaces are never a target (kube-system, kube-public, kube-node-lease)."""
    return name.startswith("kube-")


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if not labels:
        raise ValueError("must name at least one label (an empty selector selects everything)")
    for key in labels:
        if not _LABEL_KEY.match(key):
            raise ValueError(f"invalid label key {key!r}")
    return labels


class ModelObject(_Strict):
    """One object serving a model: a Deployment of vLLM, a KServe InferenceService or
    LLMInferenceService. fail_model patches only objects listed here."""

    kind: Literal["Deployment", "InferenceService", "LLMInferenceService"]
    namespace: str = Field(pattern=_DNS_LABEL)
    name: str = Field(pattern=_DNS_SUBDOMAIN, max_length=253)
    api_version: str | None = Field(
        None,
        description="apiVersion (default: apps/v1, serving.kserve.io/v1beta1, serving.kserve.io/v1alpha1).",
    )
    container: str | None = Field(
        None,
        description="The serving container (default: the first container; `main` for LLMInferenceService).",
    )
    bad_version: str | None = Field(
        None,
        description="What fail_model mode bad_version rolls out: an image (Deployment) or a model URI "
        "(KServe storageUri / model.uri) the platform must not promote.",
    )
    gpu_memory_utilization: float = Field(
        0.9,
        gt=0,
        le=1,
        description="The server's --gpu-memory-utilization when its args do not set it (vLLM's default).",
    )

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def resolved_api_version(self) -> str:
        return self.api_version or KIND_API_VERSION[self.kind]


class RegionSpec(_Strict):
    models: list[ModelObject] = Field(min_length=1)
    pod_selector: dict[str, str] = Field(
        description="Labels of the region's serving pods: what a partition's NetworkPolicy selects."
    )

    @field_validator("pod_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


class PeerSpec(_Strict):
    """Pods a partition keeps reachable (matched by namespace name and pod labels)."""

    namespace: str = Field(pattern=_DNS_LABEL)
    pod_selector: dict[str, str]
    ports: list[int] = Field(default_factory=list, description="Empty: every port.")

    @field_validator("pod_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)


class PartitionSpec(_Strict):
    dns: PeerSpec = Field(
        default_factory=lambda: PeerSpec(
            namespace="kube-system", pod_selector={"k8s-app": "kube-dns"}, ports=[53]
        ),
        description="Egress the partitioned pods keep (name resolution).",
    )
    scrape_from: PeerSpec = Field(
        default_factory=lambda: PeerSpec(
            namespace="monitoring", pod_selector={"app.kubernetes.io/name": "prometheus"}
        ),
        description="Ingress the partitioned pods keep (Prometheus scraping them).",
    )
    verify_timeout: Seconds = Field(
        60.0,
        description="Longest wait for Prometheus to show the region's traffic stopped once the policy "
        "is in place (the signals profile's requests_by_region); not seen by then: the fault fails.",
    )
    traffic_stopped_below: float = Field(
        0.0,
        ge=0,
        description="Requests/s of the region (all status codes) at or under which its traffic counts "
        "as stopped.",
    )


class PrometheusSpec(_Strict):
    url: str = Field(pattern=r"^https?://")
    bearer_token_env: str | None = Field(
        None, pattern=_ENV_NAME, description="Environment variable holding a bearer token (never the token)."
    )
    headers_env: dict[str, str] = Field(
        default_factory=dict, description="HTTP header name -> environment variable holding its value."
    )

    def headers(self) -> dict[str, str]:
        """The auth headers, read from the environment now; a named variable that is unset is an error."""
        out: dict[str, str] = {}
        wanted = dict(self.headers_env)
        if self.bearer_token_env:
            wanted["Authorization"] = self.bearer_token_env
        for header, env in wanted.items():
            value = os.environ.get(env)
            if value is None:
                raise InputError("target.prometheus", f"environment variable {env} is not set")
            out[header] = (
                f"Bearer {value}" if header == "Authorization" and env == self.bearer_token_env else value
            )
        return out


class Limits(_Strict):
    max_nodes_per_fault: int = Field(1, ge=1, description="Most nodes one fault may act on.")
    min_gpu_nodes_per_region: int = Field(
        1, ge=0, description="Fewest ready, schedulable GPU nodes a fault must leave in a region."
    )


class KubernetesTarget(_Strict):
    """`target: {kind: kubernetes, ...}`: which cluster, what the harness may touch, and the limits."""

    kind: Literal["kubernetes"]
    kubeconfig: str = Field(min_length=1, description="Kubeconfig file (relative to the scenario file).")
    context: str = Field(
        min_length=1, description="Context in the kubeconfig; required, never the current one."
    )
    cluster_uid: str = Field(
        min_length=1,
        description="Expected cluster identity: the UID of its kube-system namespace "
        "(kubectl get namespace kube-system -o jsonpath='{.metadata.uid}').",
    )
    namespaces: list[str] = Field(min_length=1, description="The only namespaces the harness may touch.")
    gpu_node_selector: str = Field(DEFAULT_GPU_SELECTOR, min_length=1)
    region_label: str = Field(DEFAULT_REGION_LABEL, min_length=1)
    regions: dict[str, RegionSpec] = Field(min_length=1)
    endpoint: str = Field(pattern=r"^https?://", description="The service endpoint load is sent to.")
    prometheus: PrometheusSpec
    signals: str = Field(
        DEFAULT_SIGNALS,
        min_length=1,
        description="Signals profile: a shipped name or a profile file (relative to the scenario file).",
    )
    golden: str | None = Field(
        None,
        description="Known prompts and answers of the served model (golden.jsonl, relative to the "
        "scenario file): a share of the load is judged against them.",
    )
    limits: Limits = Field(default_factory=Limits)
    partition: PartitionSpec = Field(default_factory=PartitionSpec)
    drain_timeout: Seconds = Field(300.0, description="Longest wait for a drained node's pods to go.")

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for ns in value:
            if forbidden_namespace(ns):
                raise ValueError(f"{ns} is never a target namespace")
            if not re.match(_DNS_LABEL, ns):
                raise ValueError(f"invalid namespace name {ns!r}")
        return value

    @field_validator("gpu_node_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if not all(parts):
            raise ValueError("empty requirement in selector")
        return value

    @model_validator(mode="after")
    def _objects_allowed(self) -> KubernetesTarget:
        for region, spec in self.regions.items():
            for i, obj in enumerate(spec.models):
                if obj.namespace not in self.namespaces:
                    raise ValueError(
                        f"regions.{region}.models[{i}]: namespace {obj.namespace} is not in namespaces"
                    )
        return self


def kubernetes_target_json_schema() -> dict[str, Any]:
    return KubernetesTarget.model_json_schema(by_alias=True)


class TargetState(_Strict):
    """The state file (`k8s-target.json` in the run directory)."""

    kind: Literal["kubernetes"] = "kubernetes"
    version: Literal[1] = 1
    run_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    target: KubernetesTarget
    server: str = Field(description="The API server the context pointed at when the run began.")
    dry_run: bool = Field(
        False,
        description="Every fault function sends its changes with dryRun=All and records nothing to undo.",
    )
    # Read by the chaos probes like a lab state file's keys.
    endpoint: str
    prometheus_url: str


# ---------------------------------------------------------------- kubeconfig


def kubeconfig_server(kubeconfig: Path, context: str, where: str) -> str:
    """The API server URL of `context`; refusal when the file or the context is missing."""
    if not kubeconfig.is_file():
        raise InputError(f"{where}.kubeconfig", f"kubeconfig not found: {kubeconfig} (no fallback is used)")
    try:
        cfg = yaml.safe_load(kubeconfig.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{where}.kubeconfig", f"cannot read kubeconfig {kubeconfig}: {exc}") from exc
    contexts = {
        c.get("name"): c.get("context") or {} for c in cfg.get("contexts") or [] if isinstance(c, dict)
    }
    if context not in contexts:
        known = ", ".join(sorted(str(n) for n in contexts)) or "none"
        raise InputError(f"{where}.context", f"context {context!r} is not in {kubeconfig} (it has: {known})")
    cluster_name = contexts[context].get("cluster")
    for c in cfg.get("clusters") or []:
        if isinstance(c, dict) and c.get("name") == cluster_name:
            server = (c.get("cluster") or {}).get("server")
            if server:
                return str(server)
    raise InputError(f"{where}.context", f"context {context!r} names cluster {cluster_name!r} with no server")


def resolve_target(target: KubernetesTarget, scenario_path: Path | None) -> KubernetesTarget:
    """The target with its files made absolute (relative to the scenario file's directory): the
    kubeconfig, the golden file and a signals profile given as a file."""
    base = Path(scenario_path).resolve().parent if scenario_path else Path.cwd()

    def absolute(rel: str) -> str:
        path = Path(rel).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    update = {"kubeconfig": absolute(target.kubeconfig)}
    if target.golden:
        update["golden"] = absolute(target.golden)
    if target.signals.endswith((".yaml", ".yml")):
        update["signals"] = absolute(target.signals)
    return target.model_copy(update=update)


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def write_state(
    target: KubernetesTarget,
    run_dir: Path,
    run_id: str | None = None,
    scenario_path: Path | None = None,
    dry_run: bool = False,
) -> Path:
    """Write `k8s-target.json` into the run directory (refusing a missing kubeconfig or context)."""
    where = f"{scenario_path}: target" if scenario_path else "target"
    resolved = resolve_target(target, scenario_path)
    server = kubeconfig_server(Path(resolved.kubeconfig), resolved.context, where)
    state = TargetState(
        run_id=run_id or new_run_id(),
        target=resolved,
        server=server,
        endpoint=resolved.endpoint,
        prometheus_url=resolved.prometheus.url,
        dry_run=dry_run,
    )
    path = Path(run_dir) / STATE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, state.model_dump(mode="json"))
    return path


def load_state(path: Path | str) -> TargetState:
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(str(path), "no Kubernetes target state file here") from exc
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"unreadable Kubernetes target state: {exc}") from exc
    return parse_model(TargetState, data, path)
