"""The format-independent SLO model every input format is converted into."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

WINDOW_PLACEHOLDER = "{{.window}}"
# Sloth's TplSLIQueryWindowVarRegex: `{{.window}}` with any number of spaces inside the braces.
WINDOW_RE = re.compile(r"\{\{ *\.window *\}\}")


@dataclass(frozen=True)
class EventsSLI:
    error_query: str  # with {{.window}}
    total_query: str


@dataclass(frozen=True)
class RawSLI:
    error_ratio_query: str  # with {{.window}}


@dataclass(frozen=True)
class LatencySLI:
    """Histogram latency SLI; kept (besides its derived events queries) so tests can target it."""

    metric: str
    le: str
    selector: str
    threshold_seconds: Decimal | None = None
    buckets: tuple[Decimal, ...] | None = None  # the spec's `buckets:` hint, if given


@dataclass(frozen=True)
class AlertWindow:
    severity: str  # "page" | "ticket"
    long_s: int
    short_s: int
    factor: Decimal


@dataclass(frozen=True)
class AlertSpec:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    disable: bool = False


@dataclass(frozen=True)
class Alerting:
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    page: AlertSpec = field(default_factory=AlertSpec)
    ticket: AlertSpec = field(default_factory=AlertSpec)


@dataclass(frozen=True)
class PolicyStep:
    name: str
    window_s: int
    burn_rate_threshold: Decimal
    action: str


@dataclass(frozen=True)
class SLO:
    service: str
    name: str
    objective: Decimal  # percent, e.g. 99.9
    sli: EventsSLI | RawSLI
    period_s: int
    windows: tuple[AlertWindow, ...]
    source: Path
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    alerting: Alerting = field(default_factory=Alerting)
    min_request_rate: Decimal | None = None  # events/s below which no alert fires
    runbook: str | None = None
    policy: tuple[PolicyStep, ...] = ()
    mode: str = "cli-gen-prom"  # Sloth's sloth_mode label value
    spec: str = "prometheus/v1"  # Sloth's sloth_spec label value
    latency: LatencySLI | None = None
    # The load generator's client-side measurement matching this SLI (native `client_sli`);
    # game days read it, the compiled rules never do.
    client_sli: str | None = None

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / Decimal(100)

    @property
    def error_budget(self) -> Decimal:
        return Decimal(1) - self.objective_ratio

    @property
    def period_days(self) -> Decimal:
        return Decimal(self.period_s) / Decimal(86400)


@dataclass(frozen=True)
class K8sMeta:
    """Where a Kubernetes-form spec (sloth.slok.dev/v1) lives: its PrometheusRule goes next to it."""

    name: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSLOs:
    service: str
    source: Path
    slos: tuple[SLO, ...]
    k8s: K8sMeta | None = None
