"""Pydantic models of the three SLO file formats (the single source of truth for each format).

Formats are told apart by `version` (Sloth, native) or `apiVersion` (OpenSLO); each model rejects
unknown fields so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reliability.slo.durations import parse_duration

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
WINDOW_PLACEHOLDER = "{{.window}}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _needs_window(query: str) -> str:
    if WINDOW_PLACEHOLDER not in query:
        raise ValueError(f"query must contain the {WINDOW_PLACEHOLDER} placeholder")
    return query


def _duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, Field(description="Prometheus duration, e.g. 30s, 5m, 1h, 28d.")]
Objective = Annotated[float, Field(gt=0, lt=100, description="Target in percent, e.g. 99.9.")]


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
    options: dict[str, Any] = {}


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
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class SlothAlerting(Strict):
    name: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    page_alert: SlothAlert = SlothAlert()
    ticket_alert: SlothAlert = SlothAlert()


class SlothSLO(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    objective: Objective
    description: str = ""
    labels: dict[str, str] = {}
    sli: SlothSLI
    alerting: SlothAlerting = SlothAlerting()


class SlothSpec(Strict):
    version: Literal["prometheus/v1"]
    service: str = Field(pattern=NAME_PATTERN)
    labels: dict[str, str] = {}
    slos: list[SlothSLO] = Field(min_length=1)


# ---- native reliability/v1 ----------------------------------------------------------------


class LatencySLI(Strict):
    """Errors are requests slower than `threshold_seconds`, read from a histogram."""

    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", description="Histogram base name.")
    threshold_seconds: float = Field(gt=0, description="Must be one of the histogram's bucket bounds.")
    selector: str = Field("", description='Label matchers without braces, e.g. service="api".')
    bucket_le: str | None = Field(
        None, description="The `le` label value as exported (default: Python client style, 0.25 / 1.0)."
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
    budget_share: float | None = Field(None, gt=0, le=1, description="Share of the period's budget.")
    factor: float | None = Field(None, gt=0, description="Explicit burn-rate factor.")

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
    burn_rate_threshold: float = Field(gt=0)
    action: str

    _d = field_validator("window")(_duration)


class NativeSLO(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    objective: Objective
    description: str = ""
    labels: dict[str, str] = {}
    sli: NativeSLI
    period: Duration | None = Field(None, description="Overrides the service's period.")
    alert_windows: list[AlertWindowSpec] | None = Field(
        None, description="Custom alert windows (default: 1h/5m, 6h/30m page; 1d/2h, 3d/6h ticket)."
    )
    min_request_rate: float | None = Field(
        None, ge=0, description="Events/s (over the long window) below which no alert fires."
    )
    runbook: str | None = Field(None, pattern=NAME_PATTERN, description="Runbook id -> runbook_url.")
    client_sli: Literal["availability", "latency", "ttft", "itl", "tpot", "quality", "goodput"] | None = (
        Field(None, description="The load generator's measurement of this SLI (game days judge RTO from it).")
    )
    error_budget_policy: list[PolicyStepSpec] = []
    alerting: SlothAlerting = SlothAlerting()

    _d = field_validator("period")(lambda v: v if v is None else _duration(v))


class NativeSpec(Strict):
    version: Literal["reliability/v1"]
    service: str = Field(pattern=NAME_PATTERN)
    labels: dict[str, str] = {}
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
    target: float = Field(gt=0, lt=1)
    ratioMetrics: OpenSLORatioV1Alpha
    op: str | None = None
    value: float | None = None


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
    target: float = Field(gt=0, lt=1)
    op: str | None = None
    value: float | None = None


class OpenSLOSpecV1(Strict):
    service: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    indicator: OpenSLOIndicator
    timeWindow: list[OpenSLOTimeWindowV1] = Field(min_length=1, max_length=1)
    budgetingMethod: Literal["Occurrences"] = "Occurrences"
    objectives: list[OpenSLOObjectiveV1] = Field(min_length=1)
    alertPolicies: list[Any] = []


class OpenSLOV1(Strict):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: OpenSLOMetadata
    spec: OpenSLOSpecV1


def slo_json_schema() -> dict[str, Any]:
    """One schema accepting any of the formats (editors pick the branch by version/apiVersion)."""
    from pydantic import TypeAdapter

    union = Annotated[
        SlothSpec | NativeSpec | OpenSLOV1Alpha | OpenSLOV1,
        Field(description="An SLO spec file: Sloth prometheus/v1, reliability/v1 or OpenSLO."),
    ]
    schema = TypeAdapter(union).json_schema()
    schema["title"] = "SLO spec"
    return schema
