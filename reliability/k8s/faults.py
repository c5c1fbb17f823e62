"""Faults on a Kubernetes target over its state file - the surface of `reliability.lab.faults`, so the
chaos actions (`faults_module: reliability.k8s.faults`) and `reliability recover` use it unchanged.

Every call first connects with the state file's kubeconfig and context and checks the cluster's
identity (undo calls too: recover may run days later with another kubeconfig in place); every change
is written to the journal (`k8s-changes.jsonl`, next to the state file) before it is sent; undo
functions undo only what the journal recorded, never by selector.

- `kill_node(state, node, mode)`: `node` is one node name or a list of names (at most
  `limits.max_nodes_per_fault`). `drain` (alias `sigkill`): cordon + evictions through
  chaostoolkit-kubernetes' `drain_nodes(name=...)`; `taint` (alias `xid79`, the lab's default): the
  NoExecute taint `reliability.dev/gpu-lost=<run id>` as GPU health tooling puts on a node whose GPU
  fell off the bus. Undone by `heal`.
- `partition_region(state, region)` / `heal_partition(state, region)`: one NetworkPolicy per
  namespace of the region's model objects; injected only once Prometheus shows the region's
  traffic stopped (`verify`), else the call fails.
- `fail_model(state, target, mode, ...)` / `restore_model(state, target)`: `target` is a region or a
  model object (`namespace/name` or `name`); modes `bad_version`, `slow_decode`, `kv_cache_cut`,
  `env`, `arg` (see `objects.model_field_change`). The lab's `errors`, `latency`, `nan`, `wrong` have
  no Kubernetes equivalent on a stock vLLM and are refused; `rate`, `latency_ms`, `factor`, `hang`
  and `version` are accepted for signature compatibility and unused. `deploy_model(state, target)`
  is fail_model mode bad_version.
- `heal(state)`: undo every active change, newest first. `lab_status(state)`: what the cluster and the
  journal say now.

A state file written with `dry_run: true` makes every fault send its changes with `dryRun=All` and
record nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reliability.errors import HarnessError
from reliability.k8s import changes, objects, verify
from reliability.k8s.client import Cluster, NeedsHuman, Refused, connect
from reliability.k8s.journal import Entry, Journal, NodeDrain, NodeTaint, ObjectPatch, Partition


def _session(state: Path | str) -> tuple[Cluster, Journal]:
    cluster = connect(state)
    return cluster, Journal(Path(state))


def _run(cluster: Cluster, journal: Journal, planned: list[changes.Planned]) -> dict[str, Any]:
    dry = cluster.state.dry_run
    done = [changes.apply(cluster, journal, p, dry_run=dry) for p in planned]
    return {
        "dry_run": dry,
        "context": cluster.state.target.context,
        "server": cluster.server,
        "changes": done,
    }


def kill_node(state: Path | str, node: str | list[str], mode: str = "drain") -> dict[str, Any]:
    cluster, journal = _session(state)
    return _run(cluster, journal, changes.plan_node_loss(cluster, journal, node, mode))


def partition_region(state: Path | str, region: str) -> dict[str, Any]:
    """NetworkPolicies cutting the region off, then a wait until Prometheus shows its traffic stopped
    (`target.partition.verify_timeout`); not seen by then: HarnessError (the fault failed: the run
    cannot be judged, and its rollback deletes the policies). The region must show traffic before,
    or nothing is sent: a partition of a region without traffic could not be verified."""
    cluster, journal = _session(state)
    planned = changes.plan_partition(cluster, journal, region)
    t = cluster.state.target
    if cluster.state.dry_run:
        return _run(cluster, journal, planned)
    traffic = verify.Traffic.of(cluster.state)
    before = traffic.rate(region)
    if before is None or before <= t.partition.traffic_stopped_below:
        raise Refused(
            f"{cluster.where}: partition_region.region",
            f"Prometheus shows {'no' if before is None else f'{before:g} req/s of'} traffic of region "
            f"{region} ({verify.SERIES} of signals profile {t.signals}): a partition could not be "
            "verified, so nothing was sent",
        )
    out = _run(cluster, journal, planned)
    stopped, last, waited = verify.wait_stopped(
        lambda: traffic.rate(region), t.partition.traffic_stopped_below, t.partition.verify_timeout
    )
    out["verified"] = {"before_rps": before, "after_rps": last, "waited_s": round(waited, 2)}
    if not stopped:
        raise HarnessError(
            f"partition of region {region} NOT in effect: NetworkPolicy in place, but Prometheus still "
            f"shows {last if last is not None else 'no data for'} req/s of its traffic after "
            f"{waited:.0f}s (before: {before:g} req/s). Some CNIs do not cut existing connections or "
            "enforce no NetworkPolicy; the fault counts as not injected and the run cannot be judged"
        )
    return out


def fail_model(
    state: Path | str,
    target: str,
    mode: str = "bad_version",
    rate: float = 1.0,
    latency_ms: float = 0,
    *,
    fraction: float = 0.5,
    name: str | None = None,
    value: str | None = None,
    factor: float | None = None,
    hang: bool | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """`factor` (slow_decode), `hang` and `version` are what the chaos action passes for the lab;
    on Kubernetes slow_decode is `--enforce-eager` and bad_version rolls out the model object's own
    `bad_version`, so they are accepted and unused."""
    cluster, journal = _session(state)
    planned = changes.plan_model_fault(
        cluster, journal, target, mode, fraction=fraction, name=name, value=value
    )
    return _run(cluster, journal, planned)


def deploy_model(
    state: Path | str, target: str, version: str = "", failure: str = "errors"
) -> dict[str, Any]:
    """A broken version rolled out: on Kubernetes, the model objects' `bad_version` (an image or a
    model URI the platform must not promote) patched in - fail_model mode bad_version. The lab's
    `version` name and `failure` (how its broken version fails) have no meaning on a cluster."""
    return fail_model(state, target, mode="bad_version")


def _undo(state: Path | str, pick: Any) -> dict[str, Any]:
    """Undo the journal's active changes that `pick` selects, newest first; every one is tried, then
    the failures are raised together (they stay active, so `reliability recover` tries again)."""
    cluster, journal = _session(state)
    healed: list[str] = []
    problems: list[str] = []
    human = False
    for entry in reversed(journal.active()):
        if not pick(entry):
            continue
        try:
            note = changes.undo_change(cluster, entry)
        except NeedsHuman as exc:
            journal.finish(entry.id, "needs_human", str(exc))
            problems.append(str(exc))
            human = True
            continue
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
            continue
        journal.finish(entry.id, "undone", note)
        healed.append(note)
    if problems:
        cls = NeedsHuman if human else HarnessError
        raise cls("; ".join(problems) + (f" (undone: {'; '.join(healed)})" if healed else ""))
    return {"healed": healed, "context": cluster.state.target.context, "server": cluster.server}


def heal_partition(state: Path | str, region: str) -> dict[str, Any]:
    return _undo(state, lambda e: isinstance(e.change, Partition) and e.change.region == region)


def restore_model(state: Path | str, target: str) -> dict[str, Any]:
    def pick(e: Entry) -> bool:
        c = e.change
        return isinstance(c, ObjectPatch) and target in (
            c.target,
            c.region,
            c.name,
            f"{c.namespace}/{c.name}",
        )

    return _undo(state, pick)


def heal(state: Path | str) -> dict[str, Any]:
    """Undo every change this run's journal holds as active."""
    return _undo(state, lambda e: True)


def lab_status(state: Path | str) -> dict[str, Any]:
    """The GPU nodes per region, the model objects and the active changes (read only)."""
    cluster, journal = _session(state)
    t = cluster.state.target
    nodes: dict[str, list[dict[str, Any]]] = {}
    for n in cluster.gpu_nodes():
        region = objects.labels_of(n).get(t.region_label, "")
        nodes.setdefault(region, []).append(
            {
                "name": objects.name_of(n),
                "ready": objects.condition(n, "Ready") == "True",
                "unschedulable": objects.node_unschedulable(n),
                "available": objects.node_available(n),
                "our_taint": objects.taint_index(n, objects.our_taint(cluster.state.run_id)) is not None,
            }
        )
    models = []
    for region, spec in t.regions.items():
        for m in spec.models:
            obj = cluster.model_object(m)
            meta = (obj or {}).get("metadata") or {}
            models.append(
                {
                    "region": region,
                    "kind": m.kind,
                    "ref": m.ref,
                    "found": obj is not None,
                    "generation": meta.get("generation"),
                }
            )
    active = [
        {"id": e.id, "fault": e.fault, "status": e.status, "change": e.change.model_dump(mode="json")}
        for e in journal.active()
    ]
    return {
        "phase": "ready",
        "kind": "kubernetes",
        "context": t.context,
        "server": cluster.server,
        "run_id": cluster.state.run_id,
        "nodes": nodes,
        "models": models,
        "active_changes": active,
        "faults": [a for a in active if a["status"] != "needs_human"],
        "needs_human": [a for a in active if a["status"] == "needs_human"],
    }


def target_status(state: Path | str) -> dict[str, Any]:
    return lab_status(state)


__all__ = [
    "NodeDrain",
    "NodeTaint",
    "deploy_model",
    "fail_model",
    "heal",
    "heal_partition",
    "kill_node",
    "lab_status",
    "partition_region",
    "restore_model",
]
