"""Ground truth from the cluster: GPU nodes, the allow-listed namespaces' pods and this run's
NetworkPolicies, watched into `events.jsonl` (the lab's record shape: `{"ts", "mono", "event", ...}`),
so capacity RTO is measured from real readiness rather than inferred from metrics.

Events: `node_state` (`node`, `region`, `ready`, `reason`: whether the GPU node is capacity a region
can count on - Ready, schedulable, no NoExecute/NoSchedule taint - written for every GPU node when the
watch starts and on every change: the ground truth `reliability.analysis.capacity` replays),
`node_condition` (a condition changed status: `node`, `region`, `condition`, `status`,
`reason`), `node_cordoned` / `node_uncordoned`, `node_tainted` / `node_untainted` (`key`, `effect`),
`node_added` / `node_deleted`, `pod_ready` / `pod_not_ready` (`pod`, `namespace`, `node`, `region`),
`pod_deleted`, `networkpolicy_applied` / `networkpolicy_removed` (`namespace`, `name`, `uid`),
`watch_started` (counts), `watch_error` (the stream failed; it is re-listed), `watch_truncated`
(the event bound was reached).

The initial list sets the baseline and emits a `node_state` per GPU node, then `watch_started`;
afterwards, transitions.
Bounded: each watch request lasts at most `window_s`, so `stop()` returns within about that long;
at most `max_events` events are written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from reliability.chaos.jsonl import append_record, stamp
from reliability.k8s import objects as o
from reliability.k8s.client import TIMEOUT, Cluster, connect

Obj = dict[str, Any]


# ---------------------------------------------------------------- transitions (pure)


def _taints(node: Obj) -> set[tuple[str, str]]:
    return {(t.get("key", ""), t.get("effect", "")) for t in (node.get("spec") or {}).get("taints") or []}


def _conditions(obj: Obj) -> dict[str, tuple[str, str]]:
    return {
        str(c.get("type")): (str(c.get("status")), str(c.get("reason") or ""))
        for c in (obj.get("status") or {}).get("conditions") or []
    }


def _why_not(node: Obj) -> str:
    if o.condition(node, "Ready") != "True":
        return "not Ready"
    if o.node_unschedulable(node):
        return "cordoned"
    taints = [
        t.get("key", "")
        for t in (node.get("spec") or {}).get("taints") or []
        if t.get("effect") in ("NoExecute", "NoSchedule")
    ]
    return f"tainted {', '.join(taints)}" if taints else "available"


def node_state(node: Obj, region_label: str, reason: str | None = None) -> dict[str, Any]:
    """The capacity record of one GPU node (the lab's `node_state` shape)."""
    return {
        "event": "node_state",
        "node": o.name_of(node),
        "region": o.labels_of(node).get(region_label),
        "ready": o.node_available(node),
        "reason": reason or _why_not(node),
    }


def node_events(old: Obj | None, new: Obj | None, region_label: str) -> list[dict[str, Any]]:
    """What changed between two versions of a node (None: it did not exist)."""
    obj = new or old or {}
    base = {"node": o.name_of(obj), "region": o.labels_of(obj).get(region_label)}
    if old is None and new is not None:
        return [
            {"event": "node_added", **base, "ready": o.condition(new, "Ready") == "True"},
            node_state(new, region_label),
        ]
    if new is None:
        return [
            {"event": "node_deleted", **base},
            {"event": "node_state", **base, "ready": False, "reason": "deleted"},
        ]
    assert old is not None
    out: list[dict[str, Any]] = []
    before, after = _conditions(old), _conditions(new)
    for kind, (status, reason) in sorted(after.items()):
        if before.get(kind, ("", ""))[0] != status:
            out.append(
                {"event": "node_condition", **base, "condition": kind, "status": status, "reason": reason}
            )
    if o.node_unschedulable(old) != o.node_unschedulable(new):
        out.append({"event": "node_cordoned" if o.node_unschedulable(new) else "node_uncordoned", **base})
    for key, effect in sorted(_taints(new) - _taints(old)):
        out.append({"event": "node_tainted", **base, "key": key, "effect": effect})
    for key, effect in sorted(_taints(old) - _taints(new)):
        out.append({"event": "node_untainted", **base, "key": key, "effect": effect})
    if o.node_available(old) != o.node_available(new):
        out.append(node_state(new, region_label))
    return out


def pod_events(
    old: Obj | None, new: Obj | None, region_of_node: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    obj = new or old or {}
    node = str((obj.get("spec") or {}).get("nodeName") or "")
    base = {
        "pod": o.name_of(obj),
        "namespace": (obj.get("metadata") or {}).get("namespace"),
        "node": node,
        "region": region_of_node(node) if node else None,
    }
    if new is None:
        return [{"event": "pod_deleted", **base}]
    was = old is not None and o.condition(old, "Ready") == "True"
    now = o.condition(new, "Ready") == "True"
    if was == now and old is not None:
        return []
    if old is None and not now:
        return []  # a new pod that is not ready yet: its readiness is the event that matters
    return [{"event": "pod_ready" if now else "pod_not_ready", **base}]


def policy_events(old: Obj | None, new: Obj | None) -> list[dict[str, Any]]:
    obj = new or old or {}
    base = {
        "namespace": (obj.get("metadata") or {}).get("namespace"),
        "name": o.name_of(obj),
        "uid": (obj.get("metadata") or {}).get("uid"),
        "region": ((obj.get("metadata") or {}).get("annotations") or {}).get(
            "reliability.dev/partitioned-region"
        ),
    }
    if old is None and new is not None:
        return [{"event": "networkpolicy_applied", **base}]
    if new is None:
        return [{"event": "networkpolicy_removed", **base}]
    return []


# ---------------------------------------------------------------- the watcher


class ClusterWatch:
    """`with ClusterWatch(state_file, events_path): ...` or `.start()` / `.stop()`."""

    def __init__(
        self,
        state_file: Path | str,
        events_path: Path | str,
        window_s: int = 5,
        max_events: int = 100_000,
        cluster: Cluster | None = None,
    ) -> None:
        self.cluster = cluster or connect(state_file)
        self.events_path = Path(events_path)
        self.window_s = max(1, int(window_s))
        self.max_events = max_events
        self.written = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._watches: list[k8s_watch.Watch] = []
        self._node_region: dict[str, str | None] = {}
        self._ready = threading.Event()
        self._pending = 0

    def __enter__(self) -> ClusterWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ output

    def emit(self, records: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            for rec in records:
                if self.written >= self.max_events:
                    return
                self.written += 1
                if self.written == self.max_events:
                    rec = {"event": "watch_truncated", "max_events": self.max_events}
                append_record(self.events_path, {**stamp(), **rec})

    # ------------------------------------------------------------ streams

    def start(self, timeout: float = 30.0) -> None:
        """Start the streams; returns once each has its baseline (so no transition is missed after)."""
        c = self.cluster
        t = c.state.target
        streams: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any], Callable[..., Any]]] = [
            ("nodes", c.core.list_node, (), {"label_selector": t.gpu_node_selector}, self._on_node)
        ]
        for ns in t.namespaces:
            streams.append((f"pods/{ns}", c.core.list_namespaced_pod, (ns,), {}, self._on_pod))
            streams.append(
                (
                    f"networkpolicies/{ns}",
                    c.net.list_namespaced_network_policy,
                    (ns,),
                    {"label_selector": f"{o.RUN_LABEL}={c.state.run_id}"},
                    lambda old, new: self.emit(policy_events(old, new)),
                )
            )
        self._pending = len(streams)
        for name, fn, args, kwargs, handler in streams:
            th = threading.Thread(
                target=self._loop,
                args=(name, fn, args, kwargs, handler),
                name=f"k8s-watch-{name}",
                daemon=True,
            )
            th.start()
            self._threads.append(th)
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError("the cluster watch could not list its baseline in time")
        self.emit(
            [
                {
                    "event": "watch_started",
                    "context": t.context,
                    "gpu_nodes": len(self._node_region),
                    "streams": len(streams),
                }
            ]
        )

    def stop(self) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()
        for th in self._threads:
            th.join(self.window_s + TIMEOUT[0] + 5)

    def _baseline_done(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending <= 0:
                self._ready.set()

    def _loop(
        self,
        name: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        handler: Callable[[Obj | None, Obj | None], None],
    ) -> None:
        known: dict[str, Obj] = {}
        first = True
        failures = 0
        while not self._stop.is_set():
            try:
                listed = self.cluster.read(fn, *args, **kwargs)
                rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                current = {str(i["metadata"]["uid"]): i for i in listed.get("items") or []}
                if first:
                    known = current
                    if name == "nodes":
                        label = self.cluster.state.target.region_label
                        for n in current.values():
                            self._node_region[o.name_of(n)] = o.labels_of(n).get(label)
                        # The level before any fault: what capacity is measured against.
                        self.emit(
                            node_state(n, label, f"watch start: {_why_not(n)}") for n in current.values()
                        )
                    first = False
                    self._baseline_done()
                else:  # after a gap: what changed while we were not watching
                    for uid in set(known) | set(current):
                        if known.get(uid) != current.get(uid):
                            handler(known.get(uid), current.get(uid))
                    known = current
                failures = 0
                self._stream(fn, args, kwargs, rv, known, handler)
            except Exception as exc:  # API errors, a dropped connection, the harness error of a read
                failures += 1
                self.emit([{"event": "watch_error", "stream": name, "error": str(exc)[:200]}])
                self._stop.wait(min(30.0, 0.5 * 2**failures))
            if first and failures >= 5:
                self._baseline_done()  # let start() return; the error is in events.jsonl
                first = False

    def _stream(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        rv: str,
        known: dict[str, Obj],
        handler: Callable[[Obj | None, Obj | None], None],
    ) -> None:
        while not self._stop.is_set():
            w = k8s_watch.Watch()
            self._watches.append(w)
            try:
                for ev in w.stream(
                    fn,
                    *args,
                    resource_version=rv,
                    timeout_seconds=self.window_s,
                    _request_timeout=(TIMEOUT[0], self.window_s + 10),
                    **kwargs,
                ):
                    obj = ev["raw_object"]
                    uid = str((obj.get("metadata") or {}).get("uid"))
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    old = known.get(uid)
                    if ev["type"] == "DELETED":
                        known.pop(uid, None)
                        handler(old, None)
                    else:
                        known[uid] = obj
                        handler(old, obj)
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:  # history gone: re-list
                    return
                raise
            finally:
                self._watches.remove(w)

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old or {}
        self._node_region[o.name_of(obj)] = o.labels_of(obj).get(self.cluster.state.target.region_label)
        self.emit(node_events(old, new, self.cluster.state.target.region_label))

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        self.emit(pod_events(old, new, lambda n: self._node_region.get(n)))
