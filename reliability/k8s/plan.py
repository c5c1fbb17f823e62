"""What a game day would do to a cluster, shown before it does it (`reliability gameday plan`,
`run --dry-run`).

`plan_faults()` connects exactly as a run does (kubeconfig, named context, cluster identity), plans
every fault with every refusal a run would meet, sends each change with server-side `dryRun=All`
(the API server validates and admits it - and answers 429 for an eviction a PodDisruptionBudget
forbids - but stores nothing), lists the calls that would undo them, and asks a
`SelfSubjectAccessReview` for every verb the faults, their undo and the watch need. Nothing is
written to the journal: a plan leaves nothing to undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reliability.errors import InputError
from reliability.k8s import changes
from reliability.k8s import objects as o
from reliability.k8s.client import JSON_PATCH, Cluster, Mutation, connect_state, plural
from reliability.k8s.journal import Journal, NodeDrain, NodeTaint, ObjectPatch, Partition
from reliability.k8s.target import KubernetesTarget, TargetState, load_state, new_run_id, resolve_target


class FaultCall(BaseModel):
    """One fault of the scenario, as the chaos action would call it (without the state file)."""

    model_config = ConfigDict(extra="forbid")
    func: Literal["kill_node", "partition_region", "fail_model"]
    args: dict[str, Any] = Field(default_factory=dict)


class AccessCheck(BaseModel):
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    why: str
    allowed: bool = False
    reason: str = ""


class PlannedChange(BaseModel):
    fault: str
    summary: str
    change: dict[str, Any]
    dry_run_problems: list[str] = Field(default_factory=list)


class K8sPlan(BaseModel):
    context: str
    server: str
    cluster_uid: str
    run_id: str
    nodes: list[str]
    namespaces: list[str]
    objects: list[str]
    changes: list[PlannedChange]
    calls: list[Mutation] = Field(description="Every change sent, with dryRun=All.")
    undo_calls: list[Mutation] = Field(description="What the undo would send (not sent).")
    access: list[AccessCheck]

    @property
    def ok(self) -> bool:
        return all(a.allowed for a in self.access) and not any(c.dry_run_problems for c in self.changes)


def _plan_one(
    cluster: Cluster, journal: Journal, call: FaultCall, removed: set[str]
) -> list[changes.Planned]:
    a = dict(call.args)
    if call.func == "kill_node":
        mode = str(a.get("mode", "drain"))
        return changes.plan_node_loss(cluster, journal, a.get("node", ""), mode, removed)
    if call.func == "partition_region":
        return changes.plan_partition(cluster, journal, str(a.get("region", "")))
    return changes.plan_model_fault(
        cluster,
        journal,
        str(a.get("target", "")),
        str(a.get("mode", "bad_version")),
        fraction=float(a.get("fraction", 0.5)),
        name=a.get("name"),
        value=a.get("value"),
    )


def undo_calls(cluster: Cluster, p: changes.Planned) -> list[Mutation]:
    c = p.change
    if isinstance(c, NodeDrain):
        if c.was_unschedulable:
            return []
        ops = [
            {"op": "test", "path": "/spec/unschedulable", "value": True},
            {"op": "replace", "path": "/spec/unschedulable", "value": False},
        ]
        return [Mutation(method="PATCH", path=f"/api/v1/nodes/{c.node}", content_type=JSON_PATCH, body=ops)]
    if isinstance(c, NodeTaint):
        ops = [
            {"op": "test", "path": "/spec/taints/<index of our taint>", "value": c.taint},
            {"op": "remove", "path": "/spec/taints/<index of our taint>"},
        ]
        return [Mutation(method="PATCH", path=f"/api/v1/nodes/{c.node}", content_type=JSON_PATCH, body=ops)]
    if isinstance(c, Partition):
        return [
            Mutation(
                method="DELETE",
                path=f"/apis/networking.k8s.io/v1/namespaces/{c.namespace}/networkpolicies/{c.name}",
                body={"preconditions": {"uid": "<uid the server gives it>"}},
            )
        ]
    assert isinstance(c, ObjectPatch)
    ops = o.reverse_ops(changes._field_change(c))
    group_path = (
        f"/apis/apps/v1/namespaces/{c.namespace}/deployments/{c.name}"
        if c.kind == "Deployment"
        else f"/apis/{c.api_version}/namespaces/{c.namespace}/{plural(c.kind)}/{c.name}"
    )
    return [Mutation(method="PATCH", path=group_path, content_type=JSON_PATCH, body=ops)]


def _a(
    verb: str, resource: str, why: str, group: str = "", ns: str = "", sub: str = "", name: str = ""
) -> AccessCheck:
    return AccessCheck(
        verb=verb, group=group, resource=resource, subresource=sub, namespace=ns, name=name, why=why
    )


def access_needed(cluster: Cluster, planned: Sequence[changes.Planned]) -> list[AccessCheck]:
    """Every verb the planned faults, their undo and the watch use (the RBAC example grants these)."""
    t = cluster.state.target
    net = "networking.k8s.io"
    need = [
        _a("get", "namespaces", "cluster identity (kube-system UID)", name="kube-system"),
        _a("list", "nodes", "GPU nodes; watch"),
        _a("watch", "nodes", "watch"),
    ]
    for ns in t.namespaces:
        need += [_a(v, "pods", "watch", ns=ns) for v in ("list", "watch")]
        need += [_a(v, "networkpolicies", "watch", group=net, ns=ns) for v in ("list", "watch")]
    for p in planned:
        c = p.change
        if isinstance(c, NodeDrain | NodeTaint):
            need += [_a(v, "nodes", p.summary) for v in ("get", "patch")]
            need.append(_a("list", "pods", "pods on the node (all namespaces)"))
            if isinstance(c, NodeDrain):
                for ns in sorted({ns for ns, _ in p.evicts}):
                    need.append(_a("create", "pods", p.summary, ns=ns, sub="eviction"))
                    need.append(_a("get", "pods", "the drain waits for evicted pods to go", ns=ns))
        elif isinstance(c, Partition):
            need.append(_a("list", "pods", "pod selector check", ns=c.namespace))
            need += [
                _a(v, "networkpolicies", p.summary, group=net, ns=c.namespace)
                for v in ("create", "get", "delete")
            ]
        elif isinstance(c, ObjectPatch):
            group = "apps" if c.kind == "Deployment" else c.api_version.split("/")[0]
            need += [_a(v, plural(c.kind), p.summary, group=group, ns=c.namespace) for v in ("get", "patch")]
    seen: dict[tuple[str, str, str, str, str, str], AccessCheck] = {}
    for a in need:
        seen.setdefault((a.verb, a.group, a.resource, a.subresource, a.namespace, a.name), a)
    return list(seen.values())


def plan_faults(
    source: Path | str | KubernetesTarget,
    faults: Sequence[FaultCall | dict[str, Any]],
    scenario_path: Path | None = None,
) -> K8sPlan:
    """Plan from a state file, or from the scenario's target (then nothing is written anywhere)."""
    if isinstance(source, KubernetesTarget):
        from reliability.k8s.target import kubeconfig_server

        where = f"{scenario_path}: target" if scenario_path else "target"
        resolved = resolve_target(source, scenario_path)
        server = kubeconfig_server(Path(resolved.kubeconfig), resolved.context, where)
        state = TargetState(
            run_id=new_run_id(),
            target=resolved,
            server=server,
            endpoint=resolved.endpoint,
            prometheus_url=resolved.prometheus.url,
            dry_run=True,
        )
        state_path = Path(scenario_path or "scenario")
    else:
        state_path = Path(source)
        state = load_state(state_path)
        where = f"{state_path}: target"
    cluster = connect_state(state, state_path, where)
    # A journal in a place nothing reads: planning checks "already active" against the run's real
    # journal when there is one, and records nothing.
    journal = Journal(state_path) if not isinstance(source, KubernetesTarget) else _NoJournal()
    calls = [FaultCall.model_validate(f) if isinstance(f, dict) else f for f in faults]
    planned: list[changes.Planned] = []
    removed: set[str] = set()
    for call in calls:
        more = _plan_one(cluster, journal, call, removed)
        removed |= {p.change.node for p in more if isinstance(p.change, NodeDrain | NodeTaint)}
        planned += more
    results = []
    for p in planned:
        out = changes.apply(cluster, journal, p, dry_run=True)
        results.append(
            PlannedChange(
                fault=p.fault, summary=p.summary, change=out["change"], dry_run_problems=out["problems"]
            )
        )
    access = access_needed(cluster, planned)
    for a in access:
        a.allowed, a.reason = cluster.can_i(a.verb, a.group, a.resource, a.namespace, a.subresource, a.name)
    nodes = sorted({p.change.node for p in planned if isinstance(p.change, NodeDrain | NodeTaint)})
    objs = sorted(
        {
            f"{c.kind} {c.namespace}/{c.name}"
            for c in (p.change for p in planned)
            if isinstance(c, ObjectPatch)
        }
        | {
            f"NetworkPolicy {c.namespace}/{c.name}"
            for c in (p.change for p in planned)
            if isinstance(c, Partition)
        }
    )
    namespaces = sorted(
        {p.change.namespace for p in planned if isinstance(p.change, ObjectPatch | Partition)}
        | {ns for p in planned for ns, _ in p.evicts}
    )
    return K8sPlan(
        context=state.target.context,
        server=cluster.server,
        cluster_uid=state.target.cluster_uid,
        run_id=state.run_id,
        nodes=nodes,
        namespaces=namespaces,
        objects=objs,
        changes=results,
        calls=[m for m in cluster.sent if m.dry_run],
        undo_calls=[m for p in planned for m in undo_calls(cluster, p)],
        access=access,
    )


class _NoJournal(Journal):
    """Planning from a scenario: no run directory, no journal, nothing active."""

    def __init__(self) -> None:
        self.path = Path("/nonexistent/k8s-changes.jsonl")

    def _append(self, op: str, entry_id: str, **fields: Any) -> None:
        raise AssertionError("a plan records nothing")


def render_plan(plan: K8sPlan) -> str:
    """The plan as text for the terminal."""
    lines = [
        f"cluster   context {plan.context} -> {plan.server} (kube-system uid {plan.cluster_uid}, checked)",
        f"nodes     {', '.join(plan.nodes) or '-'}",
        f"namespaces {', '.join(plan.namespaces) or '-'}",
        f"objects   {', '.join(plan.objects) or '-'}",
        "faults:",
    ]
    for c in plan.changes:
        lines.append(f"  {c.fault}: {c.summary}")
        lines += [f"    dry run refused: {p}" for p in c.dry_run_problems]
    lines.append("calls sent with dryRun=All:")
    for m in plan.calls:
        lines.append(f"  {m.method} {m.path} -> {m.status}{' ' + m.answer if m.answer else ''}")
    lines.append("undo would send:")
    lines += [f"  {m.method} {m.path}" for m in plan.undo_calls]
    lines.append("access (SelfSubjectAccessReview):")
    for a in plan.access:
        res = a.resource + (f"/{a.subresource}" if a.subresource else "")
        grp = f"{a.group}/" if a.group else ""
        where = f" in {a.namespace}" if a.namespace else " (cluster)"
        lines.append(f"  {'ok  ' if a.allowed else 'DENY'} {a.verb} {grp}{res}{where}")
    lines.append("plan OK" if plan.ok else "plan NOT OK: see DENY / refused above")
    return "\n".join(lines)


def plan_scenario(scenario: Any, scenario_path: Path) -> K8sPlan:
    """The plan of a game-day scenario with a Kubernetes target: the faults its experiment's method
    injects (`experiment.fault_calls`), planned against the cluster as a run would meet it."""
    from reliability.k8s.experiment import fault_calls
    from reliability.scenario import resolve

    if not isinstance(scenario.target, KubernetesTarget):
        raise InputError(
            f"{scenario_path}: target.kind",
            "a plan is for a Kubernetes target (a lab is started, and torn down, by the run itself)",
        )
    calls = fault_calls(resolve(scenario_path, scenario.experiment.file), scenario.experiment.configuration)
    return plan_faults(scenario.target, calls, scenario_path=Path(scenario_path))
