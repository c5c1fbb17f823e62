"""The controller's view of the cluster as kube-state-metrics exports it (job `kube-state-metrics`).

Names, label names and the true/false/unknown triplet of conditions as kube-state-metrics v2
(`internal/store/node.go`, `pod.go`) has them, so alerts and the signals profile written on them
work on a real cluster. Labels of nodes are exported as `label_<sanitised key>` the way
`--metric-labels-allowlist=nodes=[topology.kubernetes.io/region,nvidia.com/gpu.present]` does.
One serving pod (`vllm-<node>` in namespace `inference`) runs on each GPU node. A warm standby's pod
is in namespace `inference-standby` (a warm pool the Service does not select) until it is promoted,
so that queries of serving capacity (ready pods in `inference`) never count it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from reliability.lab.state import NodeState

NAMESPACE = "inference"
STANDBY_NAMESPACE = "inference-standby"
REGION_LABEL = "topology.kubernetes.io/region"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia_com_gpu"  # nvidia.com/gpu, sanitised as kube-state-metrics exports resources
CONDITION_STATUSES = ("true", "false", "unknown")


def label_name(key: str) -> str:
    """kube-state-metrics' sanitising of a Kubernetes label key into a Prometheus label name."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def pod_name(node: str) -> str:
    return f"vllm-{node}"


class KubeStateCollector(Collector):
    def __init__(self, snapshot: Callable[[], Sequence[NodeState]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = [n for n in self.snapshot() if n.status not in ("replaced", "stopped")]
        region_l, gpu_l = label_name(REGION_LABEL), label_name(GPU_LABEL)
        labels = GaugeMetricFamily(
            "kube_node_labels",
            "Kubernetes labels converted to Prometheus labels.",
            labels=["node", region_l, gpu_l],
        )
        condition = GaugeMetricFamily(
            "kube_node_status_condition",
            "The condition of a cluster node.",
            labels=["node", "condition", "status"],
        )
        unschedulable = GaugeMetricFamily(
            "kube_node_spec_unschedulable", "Whether a node can schedule new pods.", labels=["node"]
        )
        # One GPU per node, as the NVIDIA device plugin advertises it; an unhealthy GPU is no longer
        # allocatable (the plugin reports the device unhealthy).
        capacity = GaugeMetricFamily(
            "kube_node_status_capacity",
            "The capacity for different resources of a node.",
            labels=["node", "resource", "unit"],
        )
        allocatable = GaugeMetricFamily(
            "kube_node_status_allocatable",
            "The allocatable for different resources of a node that are available for scheduling.",
            labels=["node", "resource", "unit"],
        )
        taint = GaugeMetricFamily(
            "kube_node_spec_taint", "The taint of a cluster node.", labels=["node", "key", "value", "effect"]
        )
        pod_info = GaugeMetricFamily(
            "kube_pod_info",
            "Information about pod.",
            labels=["namespace", "pod", "uid", "node", "created_by_kind"],
        )
        pod_ready = GaugeMetricFamily(
            "kube_pod_status_ready",
            "Describes whether the pod is ready to serve requests.",
            labels=["namespace", "pod", "uid", "condition"],
        )
        for n in nodes:
            labels.add_metric([n.name, n.region, "true"], 1.0)
            conditions = {"Ready": n.status != "lost", **n.conditions}
            for cond, value in conditions.items():
                lost = cond == "Ready" and n.status == "lost"
                observed = "unknown" if lost else ("true" if value else "false")
                for status in CONDITION_STATUSES:
                    condition.add_metric([n.name, cond, status], 1.0 if status == observed else 0.0)
            unschedulable.add_metric([n.name], 1.0 if n.unschedulable else 0.0)
            capacity.add_metric([n.name, GPU_RESOURCE, "integer"], 1.0)
            healthy = not n.conditions.get("GPUUnhealthy")
            allocatable.add_metric([n.name, GPU_RESOURCE, "integer"], 1.0 if healthy else 0.0)
            if n.unschedulable:
                taint.add_metric([n.name, "node.kubernetes.io/unschedulable", "", "NoSchedule"], 1.0)
            if n.conditions.get("GPUUnhealthy"):
                taint.add_metric([n.name, "nvidia.com/gpu-unhealthy", "true", "NoExecute"], 1.0)
            if n.status == "drained":
                continue  # its pod was evicted: the node stays, cordoned, without one
            pod = pod_name(n.name)
            namespace = STANDBY_NAMESPACE if n.standby else NAMESPACE
            uid = f"uid-{namespace}-{pod}"
            pod_info.add_metric([namespace, pod, uid, n.name, "ReplicaSet"], 1.0)
            ready = "true" if n.ready else "false"
            for status in CONDITION_STATUSES:
                pod_ready.add_metric([namespace, pod, uid, status], 1.0 if status == ready else 0.0)
        yield from (labels, condition, unschedulable, capacity, allocatable, taint, pod_info, pod_ready)


def kube_state_registry(snapshot: Callable[[], Sequence[NodeState]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KubeStateCollector(snapshot))
    return registry
