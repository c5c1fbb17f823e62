"""From normalised SLOs to a Prometheus rule-file dict (pure; no I/O)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from reliability.slo.alerts import alert_rules
from reliability.slo.model import SLO, ServiceSLOs
from reliability.slo.recording import meta_rules, sli_rules

RUNBOOK_BASE_ENV = "RELIABILITY_RUNBOOK_BASE_URL"
DEFAULT_RUNBOOK_BASE = "runbooks/"


def slo_groups(slo: SLO, runbook_base_url: str) -> list[dict[str, Any]]:
    groups = [
        {"name": f"sloth-slo-sli-recordings-{slo.id}", "rules": sli_rules(slo)},
        {"name": f"sloth-slo-meta-recordings-{slo.id}", "rules": meta_rules(slo)},
    ]
    alerts = alert_rules(slo, runbook_base_url)
    if alerts:
        groups.append({"name": f"sloth-slo-alerts-{slo.id}", "rules": alerts})
    return groups


def all_slos(services: Iterable[ServiceSLOs]) -> list[SLO]:
    return [slo for svc in services for slo in svc.slos]


def compile_rules(services: Iterable[ServiceSLOs], runbook_base_url: str | None = None) -> dict[str, Any]:
    """A Prometheus rule file (`{"groups": [...]}`) for every SLO, in input order."""
    base = runbook_base_url or os.environ.get(RUNBOOK_BASE_ENV) or DEFAULT_RUNBOOK_BASE
    return {"groups": [g for slo in all_slos(services) for g in slo_groups(slo, base)]}


def prometheus_operator(
    services: list[ServiceSLOs],
    runbook_base_url: str | None = None,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One monitoring.coreos.com/v1 PrometheusRule per service (per PrometheusServiceLevel for
    Sloth's Kubernetes form, named and placed like it, as Sloth does).

    `namespace` and `labels` go on every object's metadata: kube-prometheus-stack's Prometheus only
    loads PrometheusRules matching its ruleSelector (by default its `release` label).
    """
    by_object: dict[tuple[str, str | None], list[ServiceSLOs]] = {}
    object_meta: dict[tuple[str, str | None], tuple[dict[str, str], dict[str, str]]] = {}
    for svc in services:
        if svc.k8s is not None:
            key = (svc.k8s.name, svc.k8s.namespace)
            object_meta[key] = (svc.k8s.labels, svc.k8s.annotations)
        else:
            key = (svc.service, None)
        by_object.setdefault(key, []).append(svc)
    out = []
    for (name, own_namespace), group in by_object.items():
        own_labels, annotations = object_meta.get((name, own_namespace), ({}, {}))
        metadata: dict[str, Any] = {"name": name}
        if namespace or own_namespace:
            metadata["namespace"] = namespace or own_namespace
        metadata["labels"] = {**own_labels, "app.kubernetes.io/managed-by": "reliability", **(labels or {})}
        if annotations:
            metadata["annotations"] = dict(annotations)
        out.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "PrometheusRule",
                "metadata": metadata,
                "spec": compile_rules(group, runbook_base_url),
            }
        )
    return out
