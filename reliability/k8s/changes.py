"""Each fault as exact changes to named objects: planned (with every refusal checked before anything is
sent), applied (for real, or with server-side `dryRun=All`), and undone from the journal record.

Refusals (`Refused`, exit 2), all before any change is sent: a node that does not match the GPU node
selector, no GPU node matching it at all, more nodes than `limits.max_nodes_per_fault`, a fault
that would leave a region fewer ready GPU nodes than `limits.min_gpu_nodes_per_region`, a node whose
evicted pods would include pods of a namespace not on the allow-list (kube-system included) or
pods with no owner (nothing would recreate them), a region or object not in the target, a pod
selector matching no pod, a fault already active on the same node/region/object.

Node loss uses chaostoolkit-kubernetes' `drain_nodes` with exactly one node name (never a label
selector, never `count=`); everything else goes through the official client with JSON patches
guarded by `test` operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from reliability.errors import HarnessError
from reliability.k8s import objects as o
from reliability.k8s.client import Cluster, NeedsHuman, Refused, api_message, chaosk8s_secrets
from reliability.k8s.journal import Change, Entry, Journal, NodeDrain, NodeTaint, ObjectPatch, Partition
from reliability.k8s.target import ModelObject, forbidden_namespace

NODE_MODES = {"drain": "drain", "taint": "taint", "xid79": "taint", "sigkill": "drain"}
RETRIES = 5  # re-read and re-send a guarded patch when someone else changed the object meanwhile


@dataclass
class Planned:
    fault: str
    entry_id: str
    change: Change
    summary: str
    evicts: list[tuple[str, str]] = field(default_factory=list)  # (namespace, pod) a node fault removes
    model: ModelObject | None = None
    body: dict[str, Any] | None = None  # the NetworkPolicy to create


def _refuse(cluster: Cluster, field_name: str, message: str) -> Refused:
    return Refused(f"{cluster.where}: {field_name}", message)


def _active(journal: Journal) -> list[Entry]:
    return journal.active()


# ---------------------------------------------------------------- planning


def plan_node_loss(
    cluster: Cluster, journal: Journal, node: str | list[str], mode: str, removed: set[str] | None = None
) -> list[Planned]:
    t = cluster.state.target
    if mode not in NODE_MODES:
        raise _refuse(cluster, "kill_node.mode", f"mode {mode!r} is not one of {', '.join(NODE_MODES)}")
    how = NODE_MODES[mode]
    names = [node] if isinstance(node, str) else list(node)
    names = [n.strip() for n in names]
    if not names or not all(names):
        raise _refuse(
            cluster, "kill_node.node", "name the node(s) exactly; an empty name would select every node"
        )
    if len(set(names)) != len(names):
        raise _refuse(cluster, "kill_node.node", "a node is named twice")
    if len(names) > t.limits.max_nodes_per_fault:
        raise _refuse(
            cluster,
            "target.limits.max_nodes_per_fault",
            f"{len(names)} nodes named, the limit is {t.limits.max_nodes_per_fault}",
        )
    gpu = cluster.gpu_nodes()
    if not gpu:
        raise _refuse(cluster, "target.gpu_node_selector", f"{t.gpu_node_selector!r} matches no node")
    by_name = {o.name_of(n): n for n in gpu}
    busy = {e.change.node for e in _active(journal) if isinstance(e.change, NodeDrain | NodeTaint)}
    removed = set(removed or ())
    planned: list[Planned] = []
    for name in names:
        if name not in by_name:
            raise _refuse(cluster, "kill_node.node", f"node {name} does not match {t.gpu_node_selector!r}")
        if name in busy:
            raise _refuse(cluster, "kill_node.node", f"node {name} already has an active fault of this run")
        n = by_name[name]
        region = o.labels_of(n).get(t.region_label)
        if region is None or region not in t.regions:
            raise _refuse(
                cluster,
                "kill_node.node",
                f"node {name} is in region {region!r}, not one of the target's regions",
            )

    def _region(n: dict[str, Any]) -> str | None:
        return o.labels_of(n).get(t.region_label)

    for region in sorted({str(_region(by_name[n])) for n in names}):
        available = [
            o.name_of(n)
            for n in gpu
            if o.labels_of(n).get(t.region_label) == region
            and o.node_available(n)
            and o.name_of(n) not in removed
        ]
        left = [n for n in available if n not in names]
        if len(left) < t.limits.min_gpu_nodes_per_region:
            raise _refuse(
                cluster,
                "target.limits.min_gpu_nodes_per_region",
                f"losing {', '.join(n for n in names if _region(by_name[n]) == region)} would "
                f"leave {len(left)} ready GPU node(s) in region {region}, the minimum is "
                f"{t.limits.min_gpu_nodes_per_region}",
            )
    for name in names:
        n = by_name[name]
        region = str(o.labels_of(n).get(t.region_label))
        taint = o.our_taint(cluster.state.run_id)
        pods = cluster.pods_on_node(name)
        goes = [p for p in pods if (o.drain_evicts(p) if how == "drain" else o.taint_evicts(p, taint))]
        for p in goes:
            ns = (p.get("metadata") or {}).get("namespace", "")
            if forbidden_namespace(ns) or ns not in t.namespaces:
                raise _refuse(
                    cluster,
                    "target.namespaces",
                    f"losing node {name} would evict pod {ns}/{o.name_of(p)}, and namespace {ns} "
                    "is not on the allow-list",
                )
            if not o.owners(p) and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                raise _refuse(
                    cluster,
                    "kill_node.node",
                    f"pod {ns}/{o.name_of(p)} on node {name} has no owner: nothing would recreate it",
                )
        uid = str((n.get("metadata") or {}).get("uid", ""))
        evicts = [((p.get("metadata") or {}).get("namespace", ""), o.name_of(p)) for p in goes]
        change: Change
        if how == "drain":
            change = NodeDrain(
                region=region, node=name, node_uid=uid, was_unschedulable=o.node_unschedulable(n)
            )
            summary = f"cordon and drain node {name} (region {region}; {len(evicts)} pod(s) evicted)"
        else:
            change = NodeTaint(region=region, node=name, node_uid=uid, taint=taint)
            summary = (
                f"taint node {name} {taint['key']}={taint['value']}:NoExecute "
                f"(region {region}; {len(evicts)} pod(s) go)"
            )
        planned.append(Planned("kill_node", journal.new_id(), change, summary, evicts))
    return planned


def plan_partition(cluster: Cluster, journal: Journal, region: str) -> list[Planned]:
    t = cluster.state.target
    spec = t.regions.get(region)
    if spec is None:
        raise _refuse(
            cluster, "partition_region.region", f"region {region!r} is not one of {', '.join(t.regions)}"
        )
    if any(isinstance(e.change, Partition) and e.change.region == region for e in _active(journal)):
        raise _refuse(
            cluster, "partition_region.region", f"region {region} is already partitioned by this run"
        )
    planned = []
    for ns in sorted({m.namespace for m in spec.models}):
        if not cluster.pods(ns, spec.pod_selector):
            raise _refuse(
                cluster,
                f"target.regions.{region}.pod_selector",
                f"{spec.pod_selector} matches no pod in namespace {ns}",
            )
        entry_id = journal.new_id()
        name = o.policy_name(region, cluster.state.run_id, entry_id)
        body = o.network_policy(
            name=name,
            namespace=ns,
            pod_selector=spec.pod_selector,
            run_id=cluster.state.run_id,
            change_id=entry_id,
            region=region,
            dns=(t.partition.dns.namespace, t.partition.dns.pod_selector, t.partition.dns.ports),
            scrape_from=(
                t.partition.scrape_from.namespace,
                t.partition.scrape_from.pod_selector,
                t.partition.scrape_from.ports,
            ),
        )
        change = Partition(region=region, namespace=ns, name=name)
        planned.append(
            Planned(
                "partition_region",
                entry_id,
                change,
                f"NetworkPolicy {ns}/{name} isolating region {region}",
                body=body,
            )
        )
    return planned


def resolve_models(cluster: Cluster, target: str) -> list[tuple[str, ModelObject]]:
    t = cluster.state.target
    if target in t.regions:
        return [(target, m) for m in t.regions[target].models]
    found = [
        (region, m) for region, spec in t.regions.items() for m in spec.models if target in (m.ref, m.name)
    ]
    if not found:
        raise _refuse(
            cluster, "fail_model.target", f"{target!r} is neither a region nor a model object of the target"
        )
    if len(found) > 1:
        raise _refuse(
            cluster, "fail_model.target", f"{target!r} names {len(found)} objects: write namespace/name"
        )
    return found


def plan_model_fault(
    cluster: Cluster,
    journal: Journal,
    target: str,
    mode: str,
    *,
    fraction: float = 0.5,
    name: str | None = None,
    value: str | None = None,
) -> list[Planned]:
    busy = {
        (e.change.namespace, e.change.name) for e in _active(journal) if isinstance(e.change, ObjectPatch)
    }
    planned = []
    for region, m in resolve_models(cluster, target):
        obj = cluster.model_object(m)
        if obj is None:
            raise _refuse(cluster, "fail_model.target", f"{m.kind} {m.ref} not found in the cluster")
        if (m.namespace, m.name) in busy:
            raise _refuse(
                cluster, "fail_model.target", f"{m.kind} {m.ref} already has an active fault of this run"
            )
        try:
            fc = o.model_field_change(
                obj,
                m.kind,
                m.container,
                mode,
                bad_version=m.bad_version,
                fraction=fraction,
                gpu_memory_utilization=m.gpu_memory_utilization,
                name=name,
                value=value,
            )
        except Exception as exc:
            raise _refuse(cluster, "fail_model.mode", getattr(exc, "message", str(exc))) from exc
        if fc.before_present and fc.before == fc.after:
            raise _refuse(
                cluster, "fail_model.mode", f"{m.kind} {m.ref} already has {fc.path} = {fc.after!r}"
            )
        change = ObjectPatch(
            region=region,
            target=target,
            mode=mode,
            kind=m.kind,
            api_version=m.resolved_api_version,
            namespace=m.namespace,
            name=m.name,
            uid=str((obj.get("metadata") or {}).get("uid", "")),
            path=fc.path,
            before_present=fc.before_present,
            before=fc.before,
            after=fc.after,
            guard=fc.guard,
        )
        planned.append(
            Planned(
                "fail_model", journal.new_id(), change, f"patch {m.kind} {m.ref} {fc.path} ({mode})", model=m
            )
        )
    return planned


def _field_change(c: ObjectPatch) -> o.FieldChange:
    return o.FieldChange(c.path, c.before_present, c.before, c.after, c.guard)


def model_of(c: ObjectPatch) -> ModelObject:
    return ModelObject(kind=c.kind, namespace=c.namespace, name=c.name, api_version=c.api_version)  # type: ignore[arg-type]


# ---------------------------------------------------------------- applying


def _add_taint(cluster: Cluster, c: NodeTaint, dry_run: bool) -> None:
    for attempt in range(RETRIES):
        n = cluster.node(c.node)
        if n is None:
            raise HarnessError(f"node {c.node} is gone")
        taints = (n.get("spec") or {}).get("taints")
        if taints is None:
            rv = (n.get("metadata") or {}).get("resourceVersion")
            ops = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "add", "path": "/spec/taints", "value": [c.taint]},
            ]
        else:
            ops = [
                {"op": "test", "path": "/spec/taints", "value": taints},
                {"op": "add", "path": "/spec/taints/-", "value": c.taint},
            ]
        try:
            cluster.patch_node_json(c.node, ops, dry_run)
            return
        except ApiException as exc:
            if exc.status != 422 or attempt == RETRIES - 1:
                raise


def _drain(cluster: Cluster, c: NodeDrain) -> list[str]:
    """chaostoolkit-kubernetes' drain_nodes with exactly one name (it cordons, then evicts)."""
    from chaosk8s.node.actions import drain_nodes

    if not c.node:
        raise Refused(f"{cluster.where}: kill_node.node", "empty node name")
    with chaosk8s_secrets(cluster) as secrets:
        return list(
            drain_nodes(
                name=c.node,
                delete_pods_with_local_storage=True,
                timeout=int(cluster.state.target.drain_timeout),
                secrets=secrets,
            )
        )


def apply(cluster: Cluster, journal: Journal, p: Planned, dry_run: bool = False) -> dict[str, Any]:
    """Send one planned change. Not a dry run: the journal records it first, and a drain that fails
    has its cordon undone at once (litmus-go left cordons behind after failed drains)."""
    c = p.change
    if dry_run:
        return _dry_run(cluster, p)
    journal.intent_with_id(p.entry_id, p.fault, c)
    try:
        if isinstance(c, NodeDrain):
            before = {name for _, name in p.evicts}
            try:
                _drain(cluster, c)
            except Exception as exc:
                left = {o.name_of(q) for q in cluster.pods_on_node(c.node)}
                gone = sorted(before - left)
                try:
                    note = undo_change(cluster, Entry(p.entry_id, p.fault, c, "intent"))
                    journal.finish(p.entry_id, "undone", f"drain failed; {note}")
                except Exception as undo_exc:  # stays active in the journal: heal/recover retry it
                    note = f"its cordon could NOT be undone ({_reason(undo_exc)}): run `reliability recover`"
                raise HarnessError(
                    f"drain of node {c.node} failed ({_reason(exc)}); {note}"
                    + (f"; already evicted: {', '.join(gone)}" if gone else "")
                ) from exc
        elif isinstance(c, NodeTaint):
            _add_taint(cluster, c, False)
        elif isinstance(c, Partition):
            assert p.body is not None
            created = cluster.create_network_policy(p.body)
            c = c.model_copy(update={"uid": str(created["metadata"]["uid"])})
        elif isinstance(c, ObjectPatch):
            cluster.patch_model_json(model_of(c), o.forward_ops(_field_change(c)))
    except ApiException as exc:
        # The server refused it: nothing of this change is on the cluster.
        journal.finish(p.entry_id, "not_applied", f"{exc.status} {api_message(exc)}")
        raise HarnessError(
            f"{p.summary}: the API server refused it ({exc.status}: {api_message(exc)})"
        ) from exc
    journal.applied(p.entry_id, c)
    return {"id": p.entry_id, "change": c.model_dump(mode="json"), "summary": p.summary}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {api_message(exc)}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _dry_run(cluster: Cluster, p: Planned) -> dict[str, Any]:
    """The same changes with dryRun=All: the server validates them (and answers e.g. 429 for an
    eviction a PodDisruptionBudget forbids) and stores nothing."""
    c = p.change
    problems: list[str] = []

    def attempt(send: Any) -> None:
        try:
            send()
        except ApiException as exc:
            problems.append(f"{exc.status} {api_message(exc)}")

    if isinstance(c, NodeDrain):
        attempt(lambda: cluster.cordon(c.node, dry_run=True))
        for ns, pod in p.evicts:
            attempt(lambda ns=ns, pod=pod: cluster.evict(ns, pod, dry_run=True))
    elif isinstance(c, NodeTaint):
        attempt(lambda: _add_taint(cluster, c, True))
    elif isinstance(c, Partition):
        attempt(lambda: cluster.create_network_policy(p.body or {}, dry_run=True))
    elif isinstance(c, ObjectPatch):
        attempt(lambda: cluster.patch_model_json(model_of(c), o.forward_ops(_field_change(c)), dry_run=True))
    return {"id": p.entry_id, "change": c.model_dump(mode="json"), "summary": p.summary, "problems": problems}


# ---------------------------------------------------------------- undoing


def undo_change(cluster: Cluster, e: Entry) -> str:
    """Undo one recorded change; returns what was done. Raises NeedsHuman when the object no longer
    holds what we set (someone changed it since): it is left alone."""
    c = e.change
    if isinstance(c, NodeDrain):
        return _uncordon(cluster, c)
    if isinstance(c, NodeTaint):
        return _untaint(cluster, c)
    if isinstance(c, Partition):
        return _unpartition(cluster, c, e.id)
    return _unpatch(cluster, c)


def _same_node(cluster: Cluster, name: str, uid: str) -> dict[str, Any] | None:
    n = cluster.node(name)
    if n is None or (n.get("metadata") or {}).get("uid") != uid:
        return None  # gone, or a new node under the old name: not ours to change
    return n


def _uncordon(cluster: Cluster, c: NodeDrain) -> str:
    if c.was_unschedulable:
        return f"node {c.node} left cordoned (it was cordoned before the fault)"
    for attempt in range(RETRIES):
        n = _same_node(cluster, c.node, c.node_uid)
        if n is None:
            return f"node {c.node} is gone or was replaced: nothing to uncordon"
        if not o.node_unschedulable(n):
            return f"node {c.node} already schedulable"
        ops = [
            {"op": "test", "path": "/spec/unschedulable", "value": True},
            {"op": "replace", "path": "/spec/unschedulable", "value": False},
        ]
        try:
            cluster.patch_node_json(c.node, ops)
            return f"node {c.node} uncordoned"
        except ApiException as exc:
            if exc.status not in (409, 422) or attempt == RETRIES - 1:
                raise
    raise HarnessError(f"node {c.node}: could not uncordon")


def _untaint(cluster: Cluster, c: NodeTaint) -> str:
    for attempt in range(RETRIES):
        n = _same_node(cluster, c.node, c.node_uid)
        if n is None:
            return f"node {c.node} is gone or was replaced: nothing to untaint"
        i = o.taint_index(n, c.taint)
        if i is None:
            return f"node {c.node}: our taint is already gone"
        current = n["spec"]["taints"][i]
        ops = [
            {"op": "test", "path": f"/spec/taints/{i}", "value": current},
            {"op": "remove", "path": f"/spec/taints/{i}"},
        ]
        try:
            cluster.patch_node_json(c.node, ops)
            return f"node {c.node}: taint {c.taint['key']} removed"
        except ApiException as exc:
            if exc.status not in (409, 422) or attempt == RETRIES - 1:
                raise
    raise HarnessError(f"node {c.node}: could not remove our taint")


def _unpartition(cluster: Cluster, c: Partition, entry_id: str) -> str:
    uid = c.uid
    if uid is None:
        # Crashed between create and record: find it by name, and delete it only if its labels say it
        # is this very change.
        found = cluster.network_policy(c.namespace, c.name)
        if found is None:
            return f"NetworkPolicy {c.namespace}/{c.name} was never created"
        labels = o.labels_of(found)
        if labels.get(o.CHANGE_LABEL) != entry_id or labels.get(o.RUN_LABEL) != cluster.state.run_id:
            raise NeedsHuman(
                f"NetworkPolicy {c.namespace}/{c.name} exists but is not the one this run created: "
                "left alone, "
                "needs a human"
            )
        uid = str(found["metadata"]["uid"])
    try:
        cluster.delete_network_policy(c.namespace, c.name, uid)
    except ApiException as exc:
        if exc.status == 404:
            return f"NetworkPolicy {c.namespace}/{c.name} already gone"
        if exc.status == 409:
            return (
                f"NetworkPolicy {c.namespace}/{c.name} (uid {uid}) is gone; "
                "another object of that name was left alone"
            )
        raise
    return f"NetworkPolicy {c.namespace}/{c.name} deleted (uid {uid})"


def _unpatch(cluster: Cluster, c: ObjectPatch) -> str:
    m = model_of(c)
    fc = _field_change(c)
    for attempt in range(2):
        obj = cluster.model_object(m)
        if obj is None or (obj.get("metadata") or {}).get("uid") != c.uid:
            return f"{c.kind} {m.ref} is gone or was recreated: our patch went with it"
        present, current = o.pointer_get(obj, c.path)
        if (present, current) == (c.before_present, c.before if c.before_present else None):
            return f"{c.kind} {m.ref} {c.path} already holds its old value"
        if not present or current != c.after:
            raise NeedsHuman(
                f"{c.kind} {m.ref} {c.path} was changed by someone else since the fault "
                f"(now {current!r}, we set "
                f"{c.after!r}): left alone, needs a human to restore {c.before!r}"
            )
        try:
            cluster.patch_model_json(m, o.reverse_ops(fc))
            return f"{c.kind} {m.ref} {c.path} restored"
        except ApiException as exc:
            if exc.status != 422 or attempt == 1:
                if exc.status == 422:
                    raise NeedsHuman(
                        f"{c.kind} {m.ref} {c.path}: the reverse patch's test failed "
                        f"({api_message(exc)}): left "
                        "alone, needs a human"
                    ) from exc
                raise
    raise NeedsHuman(f"{c.kind} {m.ref} {c.path}: could not restore, needs a human")
