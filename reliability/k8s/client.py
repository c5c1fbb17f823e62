"""The connection to the target cluster, refused unless it is the expected one.

`connect()` builds an official-client `ApiClient` from exactly the state file's kubeconfig and
context (a missing file or context is refused: no current context, no `~/.kube/config`, no
`http://localhost`), then reads the `kube-system` namespace and compares its UID with the expected
cluster identity. Only then can anything that changes the cluster be sent; every such call goes
through `Cluster.mutate`, which records it (method, path, body, dry run, answer) for the plan.

chaostoolkit-kubernetes builds its client from `$KUBECONFIG` and the `KUBERNETES_CONTEXT` secret
and, without a config file, falls back to `http://localhost`; `chaosk8s_secrets()` points it at the
checked kubeconfig and context for the duration of one call.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException
from pydantic import BaseModel
from urllib3.exceptions import HTTPError

from reliability.errors import HarnessError, InputError
from reliability.k8s.target import ModelObject, TargetState, kubeconfig_server, load_state

TIMEOUT = (5.0, 60.0)  # connect, read (seconds): no call to the API server waits forever
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class Refused(InputError):
    """A safety rail stopped the run before anything that changes the cluster was sent (exit 2)."""


class NeedsHuman(HarnessError):
    """An undo found the object changed by someone else since the fault and left it alone."""


class Mutation(BaseModel):
    """One call that changes the cluster (or would, when `dry_run`)."""

    method: str
    path: str
    content_type: str | None = None
    body: Any = None
    dry_run: bool = False
    status: int | None = None
    answer: str = ""


def api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except ValueError:
        return str(exc.reason or exc.body)


def _raw(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.data or b"{}"))


@dataclass
class Cluster:
    state: TargetState
    state_path: Path
    api: k8s.ApiClient
    server: str
    sent: list[Mutation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.core = k8s.CoreV1Api(self.api)
        self.apps = k8s.AppsV1Api(self.api)
        self.net = k8s.NetworkingV1Api(self.api)
        self.custom = k8s.CustomObjectsApi(self.api)
        self.authz = k8s.AuthorizationV1Api(self.api)

    @property
    def where(self) -> str:
        return str(self.state_path)

    # ------------------------------------------------------------ reads (raw JSON dicts)

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return _raw(fn(*args, _preload_content=False, _request_timeout=TIMEOUT, **kwargs))
        except ApiException as exc:
            if exc.status == 404:
                raise
            raise HarnessError(
                f"the API server at {self.server} answered {exc.status}: {api_message(exc)}"
            ) from exc
        except HTTPError as exc:
            raise HarnessError(f"the API server at {self.server} did not answer: {exc}") from exc

    def maybe(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return self.read(fn, *args, **kwargs)
        except ApiException:
            return None

    def node(self, name: str) -> dict[str, Any] | None:
        return self.maybe(self.core.read_node, name)

    def gpu_nodes(self) -> list[dict[str, Any]]:
        return list(
            self.read(self.core.list_node, label_selector=self.state.target.gpu_node_selector)["items"]
        )

    def pods_on_node(self, name: str) -> list[dict[str, Any]]:
        return list(
            self.read(self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}")["items"]
        )

    def pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return list(self.read(self.core.list_namespaced_pod, namespace, label_selector=selector)["items"])

    def model_object(self, obj: ModelObject) -> dict[str, Any] | None:
        if obj.kind == "Deployment":
            return self.maybe(self.apps.read_namespaced_deployment, obj.name, obj.namespace)
        group, version = obj.resolved_api_version.split("/", 1)
        return self.maybe(
            self.custom.get_namespaced_custom_object,
            group,
            version,
            obj.namespace,
            plural(obj.kind),
            obj.name,
        )

    def network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.maybe(self.net.read_namespaced_network_policy, name, namespace)

    # ------------------------------------------------------------ mutations

    def mutate(self, m: Mutation, send: Callable[[], Any]) -> Any:
        """Send one change (recorded whatever the answer); ApiException propagates to the caller."""
        self.sent.append(m)
        try:
            out = send()
        except ApiException as exc:
            m.status, m.answer = exc.status, api_message(exc)
            raise
        except HTTPError as exc:
            m.answer = f"no answer: {exc}"
            raise HarnessError(
                f"the API server at {self.server} did not answer {m.method} {m.path}: {exc}"
            ) from exc
        m.status = 201 if m.method == "POST" else 200
        return out

    def _dry(self, dry_run: bool) -> str | None:
        return "All" if dry_run else None

    def patch_node_json(self, name: str, ops: list[dict[str, Any]], dry_run: bool = False) -> Any:
        m = Mutation(
            method="PATCH", path=f"/api/v1/nodes/{name}", content_type=JSON_PATCH, body=ops, dry_run=dry_run
        )
        return self.mutate(
            m,
            lambda: self.core.patch_node(
                name, ops, dry_run=self._dry(dry_run), _content_type=JSON_PATCH, _request_timeout=TIMEOUT
            ),
        )

    def cordon(self, name: str, dry_run: bool = False) -> Any:
        """What chaosk8s' cordon_node sends (a strategic merge patch), here so a dry run can send it."""
        body = {"spec": {"unschedulable": True}}
        m = Mutation(
            method="PATCH", path=f"/api/v1/nodes/{name}", content_type=STRATEGIC, body=body, dry_run=dry_run
        )
        return self.mutate(
            m,
            lambda: self.core.patch_node(
                name, body, dry_run=self._dry(dry_run), _content_type=STRATEGIC, _request_timeout=TIMEOUT
            ),
        )

    def evict(self, namespace: str, pod: str, dry_run: bool = False) -> Any:
        body = k8s.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=k8s.V1ObjectMeta(name=pod, namespace=namespace),
            delete_options=k8s.V1DeleteOptions(dry_run=["All"] if dry_run else None),
        )
        m = Mutation(
            method="POST",
            path=f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction",
            body=self.api.sanitize_for_serialization(body),
            dry_run=dry_run,
        )
        return self.mutate(
            m,
            lambda: self.core.create_namespaced_pod_eviction(
                pod, namespace, body, dry_run=self._dry(dry_run), _request_timeout=TIMEOUT
            ),
        )

    def create_network_policy(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        ns = body["metadata"]["namespace"]
        m = Mutation(
            method="POST",
            path=f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
            body=body,
            dry_run=dry_run,
        )
        resp = self.mutate(
            m,
            lambda: self.net.create_namespaced_network_policy(
                ns,
                k8s.V1NetworkPolicy.from_dict(body),
                dry_run=self._dry(dry_run),
                _preload_content=False,
                _request_timeout=TIMEOUT,
            ),
        )
        return _raw(resp)

    def delete_network_policy(self, namespace: str, name: str, uid: str, dry_run: bool = False) -> Any:
        """Delete by name *with a uid precondition*: a same-named policy someone else made survives."""
        opts = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid))
        m = Mutation(
            method="DELETE",
            path=f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
            body=self.api.sanitize_for_serialization(opts),
            dry_run=dry_run,
        )
        return self.mutate(
            m,
            lambda: self.net.delete_namespaced_network_policy(
                name, namespace, body=opts, dry_run=self._dry(dry_run), _request_timeout=TIMEOUT
            ),
        )

    def patch_model_json(self, obj: ModelObject, ops: list[dict[str, Any]], dry_run: bool = False) -> Any:
        """A JSON Patch (a list, sent as application/json-patch+json: custom resources refuse the
        strategic merge patch the client would otherwise pick for a dict)."""
        if obj.kind == "Deployment":
            path = f"/apis/apps/v1/namespaces/{obj.namespace}/deployments/{obj.name}"
            m = Mutation(method="PATCH", path=path, content_type=JSON_PATCH, body=ops, dry_run=dry_run)
            return self.mutate(
                m,
                lambda: self.apps.patch_namespaced_deployment(
                    obj.name,
                    obj.namespace,
                    ops,
                    dry_run=self._dry(dry_run),
                    _content_type=JSON_PATCH,
                    _request_timeout=TIMEOUT,
                ),
            )
        group, version = obj.resolved_api_version.split("/", 1)
        path = f"/apis/{group}/{version}/namespaces/{obj.namespace}/{plural(obj.kind)}/{obj.name}"
        m = Mutation(method="PATCH", path=path, content_type=JSON_PATCH, body=ops, dry_run=dry_run)
        return self.mutate(
            m,
            lambda: self.custom.patch_namespaced_custom_object(
                group,
                version,
                obj.namespace,
                plural(obj.kind),
                obj.name,
                ops,
                dry_run=self._dry(dry_run),
                _content_type=JSON_PATCH,
                _request_timeout=TIMEOUT,
            ),
        )

    def can_i(
        self, verb: str, group: str, resource: str, namespace: str = "", subresource: str = "", name: str = ""
    ) -> tuple[bool, str]:
        review = k8s.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(
                    verb=verb,
                    group=group,
                    resource=resource,
                    namespace=namespace or None,
                    subresource=subresource or None,
                    name=name or None,
                )
            ),
        )
        try:
            out = _raw(
                self.authz.create_self_subject_access_review(
                    review, _preload_content=False, _request_timeout=TIMEOUT
                )
            )
        except ApiException as exc:
            return False, f"access review failed: {exc.status} {api_message(exc)}"
        status = out.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")


def plural(kind: str) -> str:
    return {"InferenceService": "inferenceservices", "LLMInferenceService": "llminferenceservices"}.get(
        kind, kind.lower() + "s"
    )


def api_client(kubeconfig: Path, context: str) -> k8s.ApiClient:
    """An ApiClient for exactly this kubeconfig and context (the process-wide default is untouched)."""
    try:
        return k8s_config.new_client_from_config(
            config_file=str(kubeconfig), context=context, persist_config=False
        )
    except (ConfigException, OSError) as exc:
        raise InputError(f"{kubeconfig}", f"cannot use context {context!r}: {exc}") from exc


def connect(state_path: Path | str) -> Cluster:
    """The cluster of a state file, after checking it is the expected one (else Refused, nothing sent
    but one read of the kube-system namespace)."""
    state_path = Path(state_path)
    state = load_state(state_path)
    return connect_state(state, state_path)


def connect_state(state: TargetState, state_path: Path, where: str | None = None) -> Cluster:
    where = where or f"{state_path}: target"
    kubeconfig = Path(state.target.kubeconfig)
    server = kubeconfig_server(kubeconfig, state.target.context, where)
    cluster = Cluster(state, state_path, api_client(kubeconfig, state.target.context), server)
    try:
        ns = cluster.read(cluster.core.read_namespace, "kube-system")
    except ApiException as exc:
        raise Refused(
            f"{where}.cluster_uid",
            f"context {state.target.context!r} ({server}) has no kube-system namespace: "
            "not a cluster we can check",
        ) from exc
    uid = (ns.get("metadata") or {}).get("uid")
    if uid != state.target.cluster_uid:
        raise Refused(
            f"{where}.cluster_uid",
            f"context {state.target.context!r} reaches {server}, whose kube-system UID is {uid}, "
            "not the expected "
            f"{state.target.cluster_uid}: wrong cluster, nothing was sent",
        )
    return cluster


_ENV_LOCK = threading.Lock()


@contextmanager
def chaosk8s_secrets(cluster: Cluster) -> Iterator[dict[str, str]]:
    """chaostoolkit-kubernetes pointed at the checked kubeconfig and context for one call."""
    kubeconfig = Path(cluster.state.target.kubeconfig)
    if not kubeconfig.is_file():  # chaosk8s would fall back to http://localhost
        raise Refused(f"{cluster.where}: target.kubeconfig", f"kubeconfig not found: {kubeconfig}")
    with _ENV_LOCK:
        saved = os.environ.get("KUBECONFIG")
        saved_default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        # chaosk8s checks $KUBECONFIG but then calls load_kube_config() without a file, which reads
        # the location the kubernetes package took from $KUBECONFIG *when it was imported* (else
        # ~/.kube/config, maybe another cluster with a context of the same name): pin both.
        os.environ["KUBECONFIG"] = str(kubeconfig)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        try:
            yield {"KUBERNETES_CONTEXT": cluster.state.target.context}
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_default
            if saved is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = saved
