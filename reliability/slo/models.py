"""Pydantic models of the three SLO file formats (the single source of truth for each format).

Formats are told apart by `version` (Sloth, native) or `apiVersion` (OpenSLO); each model rejects
unknown fields so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

import datetime
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from reliability.slo.durations import parse_duration
from reliability.slo.model import WINDOW_PLACEHOLDER, WINDOW_RE

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _needs_window(query: str) -> str:
    """Sloth accepts `{{.window}}` with spaces inside the braces; the canonical form is kept."""
    if not WINDOW_RE.search(query):
        raise ValueError(f"query must contain the {WINDOW_PLACEHOLDER} placeholder")
    return WINDOW_RE.sub(WINDOW_PLACEHOLDER, query)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def go_string(value: Any) -> Any:
    """A YAML scalar where Sloth expects a string, as Sloth (sigs.k8s.io/yaml) turns it into one:
    `true` -> "true", `2` -> "2", `0.2` -> "0.2" (Go's shortest float32 %g), null -> "".
    Lists and mappings are left for pydantic to refuse."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float32(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _go_float32(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 32): shortest digits that round-trip as float32; exponent
    form when the decimal exponent is below -4 or at least 6 (Go's rule for shortest %g)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    import numpy as np

    with np.errstate(over="ignore"):  # beyond float32: +Inf, as Go's conversion gives
        as32 = np.float32(value)
    if np.isinf(as32):
        return "+Inf" if value > 0 else "-Inf"
    digits = np.format_float_scientific(as32, unique=True, trim="-")
    mantissa, exp_text = digits.split("e")
    exp = int(exp_text)
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-").replace(".", "")
    if exp < -4 or exp >= 6:
        head, tail = mantissa[0], mantissa[1:]
        return f"{sign}{head}{'.' + tail if tail else ''}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{mantissa}"
    if len(mantissa) <= exp + 1:
        return f"{sign}{mantissa}{'0' * (exp + 1 - len(mantissa))}"
    return f"{sign}{mantissa[: exp + 1]}.{mantissa[exp + 1 :]}"


GoStr = Annotated[str, BeforeValidator(go_string)]
Labels = dict[GoStr, GoStr]


def _finite(**kw: Any) -> Any:
    return Field(allow_inf_nan=False, **kw)


Duration = Annotated[str, Field(description="Prometheus duration, e.g. 30s, 5m, 1h, 1h30m, 28d, 4w.")]
Objective = Annotated[float, _finite(gt=0, lt=100, description="Target in percent, e.g. 99.9.")]


# ---- Sloth prometheus/v1 ------------------------------------------------------------------


class SlothEvents(Strict):
    error_query: str
    total_query: str

    _check = field_validator("error_query", "total_query")(_needs_window)


class SlothRaw(Strict):
    error_ratio_query: str

    _check = field_validator("error_ratio_query")(_needs_window)


class SlothPlugin(Strict):
    id: str
    options: dict[GoStr, GoStr] = {}


class SlothSLI(Strict):
    events: SlothEvents | None = None
    raw: SlothRaw | None = None
    plugin: SlothPlugin | None = None

    @model_validator(mode="after")
    def _one(self) -> SlothSLI:
        if self.plugin is not None:
            raise ValueError("SLI plugins are not supported; use events or raw")
        if (self.events is None) == (self.raw is None):
            raise ValueError("exactly one of sli.events or sli.raw is required")
        return self


class SlothAlert(Strict):
    disable: bool = False
    labels: Labels = {}
    annotations: Labels = {}


class SlothAlerting(Strict):
    name: str | None = None
    labels: Labels = {}
    annotations: Labels = {}
    page_alert: SlothAlert = SlothAlert()
    ticket_alert: SlothAlert = SlothAlert()


# Sloth's default SLO plugin chain (validate, SLI rules, metadata rules, alert rules) is what this
# compiler generates; plugins that only validate or log change nothing in the output. Chains made
# of these are accepted, any other plugin (or configuration of a rule plugin) is refused.
SLOTH_RULE_PLUGINS = frozenset(
    {"sloth.dev/core/sli_rules/v1", "sloth.dev/core/metadata_rules/v1", "sloth.dev/core/alert_rules/v1"}
)
SLOTH_NEUTRAL_PLUGINS = frozenset(
    {
        "sloth.dev/core/validate/v1",
        "sloth.dev/core/noop/v1",
        "sloth.dev/core/debug/v1",
        "sloth.dev/contrib/validate_victoria_metrics/v1",
    }
)


class SlothSLOPlugin(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str
    config: Any = None
    priority: int = 0


class SlothSLOPlugins(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    override_previous: bool = Field(False, alias="overridePrevious")
    chain: list[SlothSLOPlugin] = []


def plugin_chain_problem(
    group: SlothSLOPlugins | None, slo: SlothSLOPlugins | None, group_field: str, slo_field: str
) -> tuple[str, str] | None:
    """(field, message) when the effective chain would not produce exactly Sloth's default rules."""
    if group is None and slo is None:
        return None
    override = bool(group and group.override_previous) or bool(slo and slo.override_previous)
    chain: list[tuple[str, SlothSLOPlugin]] = []
    if group is not None and not (slo is not None and slo.override_previous):
        chain += [(f"{group_field}.chain[{j}]", p) for j, p in enumerate(group.chain)]
    if slo is not None:
        chain += [(f"{slo_field}.chain[{j}]", p) for j, p in enumerate(slo.chain)]
    for where, p in chain:
        if p.id not in SLOTH_RULE_PLUGINS | SLOTH_NEUTRAL_PLUGINS:
            return where, f"SLO plugins are not supported ({p.id!r}); only Sloth's default chain is"
        if p.id in SLOTH_RULE_PLUGINS and p.config not in (None, {}, ""):
            return where, f"SLO plugins are not supported (configuration of {p.id!r})"
    missing = SLOTH_RULE_PLUGINS - {p.id for _, p in chain}
    if override and missing:
        field = slo_field if slo is not None and slo.override_previous else group_field
        return field, (
            "SLO plugins are not supported (overriding Sloth's default chain without "
            f"{', '.join(sorted(missing))})"
        )
    return None


class SlothSLO(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    objective: Objective
    description: str = ""
    labels: Labels = {}
    plugins: SlothSLOPlugins | None = None
    sli: SlothSLI
    alerting: SlothAlerting = SlothAlerting()


class SlothSpec(Strict):
    version: Literal["prometheus/v1"]
    service: str = Field(pattern=NAME_PATTERN)
    labels: Labels = {}
    slo_plugins: SlothSLOPlugins | None = None
    slos: list[SlothSLO] = Field(min_length=1)


# ---- Sloth on Kubernetes: sloth.slok.dev/v1 PrometheusServiceLevel --------------------------
# (pkg/kubernetes/api/sloth/v1/types.go: the same spec with camelCase keys)


class K8sEvents(Strict):
    errorQuery: str
    totalQuery: str

    _check = field_validator("errorQuery", "totalQuery")(_needs_window)


class K8sRaw(Strict):
    errorRatioQuery: str

    _check = field_validator("errorRatioQuery")(_needs_window)


class K8sSLI(Strict):
    events: K8sEvents | None = None
    raw: K8sRaw | None = None
    plugin: SlothPlugin | None = None

    @model_validator(mode="after")
    def _one(self) -> K8sSLI:
        if self.plugin is not None:
            raise ValueError("SLI plugins are not supported; use events or raw")
        if (self.events is None) == (self.raw is None):
            raise ValueError("exactly one of sli.events or sli.raw is required")
        return self


class K8sAlert(Strict):
    disable: bool = False
    labels: Labels = {}
    annotations: Labels = {}


class K8sAlerting(Strict):
    name: str | None = None
    labels: Labels = {}
    annotations: Labels = {}
    pageAlert: K8sAlert = K8sAlert()
    ticketAlert: K8sAlert = K8sAlert()


class K8sSLO(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    objective: Objective
    description: str = ""
    labels: Labels = {}
    plugins: SlothSLOPlugins | None = None
    sli: K8sSLI
    alerting: K8sAlerting = K8sAlerting()


class K8sServiceLevelSpec(Strict):
    service: str = Field(pattern=NAME_PATTERN)
    labels: Labels = {}
    sloPlugins: SlothSLOPlugins | None = None
    slos: list[K8sSLO] = Field(min_length=1)


class K8sObjectMeta(BaseModel):
    # Kubernetes adds its own fields (uid, resourceVersion, managedFields...) to objects read back
    # from a cluster; only these matter here.
    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    namespace: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class SlothK8sSpec(Strict):
    apiVersion: Literal["sloth.slok.dev/v1"]
    kind: Literal["PrometheusServiceLevel"]
    metadata: K8sObjectMeta
    spec: K8sServiceLevelSpec
    status: dict[str, Any] | None = None


# ---- native reliability/v1 ----------------------------------------------------------------


class LatencySLI(Strict):
    """Errors are requests slower than `threshold_seconds`, read from a histogram."""

    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", description="Histogram base name.")
    threshold_seconds: float = _finite(gt=0, description="Must be one of the histogram's bucket bounds.")
    selector: str = Field("", description='Label matchers without braces, e.g. service="api".')
    bucket_le: str | None = Field(
        None, description="The `le` label value as exported (default: Python client style, 0.25 / 1.0)."
    )
    buckets: list[Annotated[float, _finite(gt=0)]] | None = Field(
        None,
        min_length=1,
        description="The histogram's bucket bounds, so `slo validate` can warn when the threshold is not "
        "one of them (known without this for vLLM's histograms: reliability/slo/buckets.py).",
    )


class NativeSLI(Strict):
    events: SlothEvents | None = None
    raw: SlothRaw | None = None
    latency: LatencySLI | None = None

    @model_validator(mode="after")
    def _one(self) -> NativeSLI:
        if sum(x is not None for x in (self.events, self.raw, self.latency)) != 1:
            raise ValueError("exactly one of sli.events, sli.raw or sli.latency is required")
        return self


class AlertWindowSpec(Strict):
    severity: Literal["page", "ticket"]
    long: Duration
    short: Duration
    budget_share: float | None = _finite(
        default=None, gt=0, le=1, description="Share of the period's budget."
    )
    factor: float | None = _finite(default=None, gt=0, le=1e9, description="Explicit burn-rate factor.")

    _d = field_validator("long", "short")(_duration)

    @model_validator(mode="after")
    def _one(self) -> AlertWindowSpec:
        if (self.budget_share is None) == (self.factor is None):
            raise ValueError("exactly one of budget_share or factor is required")
        if parse_duration(self.short) >= parse_duration(self.long):
            raise ValueError("short window must be shorter than long window")
        return self


class PolicyStepSpec(Strict):
    name: str
    window: Duration
    burn_rate_threshold: float = _finite(gt=0, le=1e9)
    action: str

    _d = field_validator("window")(_duration)


ClientSLI = Literal["availability", "latency", "ttft", "itl", "tpot", "quality", "goodput"]
LATENCY_CLIENT_SLIS = frozenset({"latency", "ttft", "itl", "tpot"})


class NativeSLO(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    objective: Objective
    description: str = ""
    labels: Labels = {}
    sli: NativeSLI
    client_sli: ClientSLI | None = Field(
        None,
        description="The load generator's client-side measurement that corresponds to this SLI (game days "
        "judge recovery per second from it): latency kinds need sli.latency, the others sli.events.",
    )
    period: Duration | None = Field(None, description="Overrides the service's period.")
    alert_windows: list[AlertWindowSpec] | None = Field(
        None, description="Custom alert windows (default: 1h/5m, 6h/30m page; 1d/2h, 3d/6h ticket)."
    )
    min_request_rate: float | None = _finite(
        default=None, ge=0, le=1e12, description="Events/s (over the long window) below which no alert fires."
    )
    runbook: str | None = Field(None, pattern=NAME_PATTERN, description="Runbook id -> runbook_url.")
    error_budget_policy: list[PolicyStepSpec] = []
    alerting: SlothAlerting = SlothAlerting()

    _d = field_validator("period")(lambda v: v if v is None else _duration(v))

    @model_validator(mode="after")
    def _client_sli_fits(self) -> NativeSLO:
        if self.client_sli is None:
            return self
        if self.client_sli in LATENCY_CLIENT_SLIS and self.sli.latency is None:
            raise ValueError(f"client_sli {self.client_sli!r} is a latency measurement: it needs sli.latency")
        # Goodput has no server-side metric of its own: a per-request latency histogram (e.g. vLLM's
        # time per output token) or request counts may stand for it on Prometheus.
        if (
            self.client_sli not in LATENCY_CLIENT_SLIS
            and self.client_sli != "goodput"
            and self.sli.events is None
        ):
            raise ValueError(f"client_sli {self.client_sli!r} counts requests: it needs sli.events")
        return self


class NativeSpec(Strict):
    version: Literal["reliability/v1"]
    service: str = Field(pattern=NAME_PATTERN)
    labels: Labels = {}
    period: Duration = "30d"
    min_window: Duration = Field(
        "1s", description="Scrape interval: every alert window must be at least twice this."
    )
    slos: list[NativeSLO] = Field(min_length=1)

    _d = field_validator("period", "min_window")(_duration)


# ---- OpenSLO ------------------------------------------------------------------------------


class OpenSLOMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    displayName: str | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None


class OpenSLOQuery(Strict):
    source: str | None = None
    queryType: str | None = None
    query: str

    _check = field_validator("query")(_needs_window)


class OpenSLORatioV1Alpha(Strict):
    good: OpenSLOQuery | None = None
    bad: OpenSLOQuery | None = None
    total: OpenSLOQuery
    counter: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> OpenSLORatioV1Alpha:
        if (self.good is None) == (self.bad is None):
            raise ValueError("exactly one of good or bad is required")
        return self


class OpenSLOObjectiveV1Alpha(Strict):
    displayName: str | None = None
    target: float = _finite(gt=0, lt=1)
    ratioMetrics: OpenSLORatioV1Alpha
    op: str | None = None
    value: float | None = _finite(default=None)


class OpenSLOTimeWindowV1Alpha(Strict):
    count: int = Field(gt=0)
    unit: Literal["Second", "Minute", "Hour", "Day", "Week"]
    isRolling: bool | None = None
    calendar: dict[str, Any] | None = None


class OpenSLOSpecV1Alpha(Strict):
    service: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    budgetingMethod: Literal["Occurrences"] = "Occurrences"
    objectives: list[OpenSLOObjectiveV1Alpha] = Field(min_length=1)
    timeWindows: list[OpenSLOTimeWindowV1Alpha] = Field(min_length=1, max_length=1)
    indicator: dict[str, Any] | None = None


class OpenSLOV1Alpha(Strict):
    apiVersion: Literal["openslo/v1alpha"]
    kind: Literal["SLO"]
    metadata: OpenSLOMetadata
    spec: OpenSLOSpecV1Alpha


class OpenSLOMetricSource(Strict):
    type: str | None = None
    metricSourceRef: str | None = None
    spec: dict[str, Any]

    def query(self) -> str:
        q = self.spec.get("query")
        if not isinstance(q, str):
            raise ValueError("metricSource.spec.query (a PromQL string) is required")
        return _needs_window(q)


class OpenSLOMetric(Strict):
    metricSource: OpenSLOMetricSource


class OpenSLORatioV1(Strict):
    counter: bool | None = None
    good: OpenSLOMetric | None = None
    bad: OpenSLOMetric | None = None
    total: OpenSLOMetric

    @model_validator(mode="after")
    def _one(self) -> OpenSLORatioV1:
        if (self.good is None) == (self.bad is None):
            raise ValueError("exactly one of good or bad is required")
        return self


class OpenSLOIndicatorSpec(Strict):
    ratioMetric: OpenSLORatioV1 | None = None
    thresholdMetric: OpenSLOMetric | None = None

    @model_validator(mode="after")
    def _one(self) -> OpenSLOIndicatorSpec:
        if (self.ratioMetric is None) == (self.thresholdMetric is None):
            raise ValueError("exactly one of ratioMetric or thresholdMetric is required")
        if self.thresholdMetric is not None:
            # A threshold SLI counts the metric's samples that break the objective's op/value; that
            # is not an error-ratio query Sloth-style rules can be built from, and reading the query
            # as a ratio (ignoring op/value) would compile a different SLO than the one written.
            raise ValueError(
                "thresholdMetric SLIs are not supported (the objective's op/value cannot be compiled "
                "to error-ratio rules); use ratioMetric with good or bad and total queries"
            )
        return self


class OpenSLOIndicator(Strict):
    metadata: OpenSLOMetadata | None = None
    spec: OpenSLOIndicatorSpec


class OpenSLOTimeWindowV1(Strict):
    duration: Duration
    isRolling: bool = True
    calendar: dict[str, Any] | None = None

    _d = field_validator("duration")(_duration)


class OpenSLOObjectiveV1(Strict):
    displayName: str | None = None
    target: float = _finite(gt=0, lt=1)
    op: str | None = None
    value: float | None = _finite(default=None)


class OpenSLOSpecV1(Strict):
    service: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    indicator: OpenSLOIndicator
    timeWindow: list[OpenSLOTimeWindowV1] = Field(min_length=1, max_length=1)
    budgetingMethod: Literal["Occurrences"] = "Occurrences"
    objectives: list[OpenSLOObjectiveV1] = Field(min_length=1)
    # Accepted (OpenSLO's own examples carry an empty `alertPolicies:`) but not compiled: as in
    # Sloth, OpenSLO SLOs get no alerts.
    alertPolicies: list[Any] | None = None


class OpenSLOV1(Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: OpenSLOMetadata
    spec: OpenSLOSpecV1


def slo_json_schema() -> dict[str, Any]:
    """One schema accepting any of the formats (editors pick the branch by version/apiVersion)."""
    from pydantic import TypeAdapter

    union = Annotated[
        SlothSpec | SlothK8sSpec | NativeSpec | OpenSLOV1Alpha | OpenSLOV1,
        Field(
            description="An SLO spec file: Sloth prometheus/v1 or sloth.slok.dev/v1 "
            "PrometheusServiceLevel, reliability/v1 or OpenSLO."
        ),
    ]
    schema = TypeAdapter(union).json_schema()
    schema["title"] = "SLO spec"
    return schema
