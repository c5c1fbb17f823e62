"""`result.json`: the single source of truth for a game day's outcome, typed from the analysis to
every report (post-mortem, HTML, JUnit, the CLI summary, `gate`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["passed", "failed", "error", "interrupted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveVerdict(_Strict):
    name: str
    target: float
    measured: float | None
    unit: str
    verdict: Literal["pass", "fail"]
    detail: str = ""
    evidence: str = Field("", description="Which series, window or events the measurement comes from.")


class PhaseSummary(_Strict):
    seconds: int = 0
    requests: int
    failures: int
    error_ratio: float | None
    failed_seconds: int = 0
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p95_ms: float | None = None
    itl_p99_ms: float | None = None
    judged: int = 0
    wrong: int = 0
    good: int | None = None
    output_tokens: int = 0
    max_latency_ms: float | None = None


class SliResult(_Strict):
    slo: str
    client_sli: str | None = Field(None, description="The load generator's measurement of this SLI.")
    objective: float = Field(description="Good share per second that counts as within objective.")
    threshold_ms: float | None = None
    source: Literal["client", "prometheus"]
    status: Literal["recovered", "no_impact", "unrecovered", "unmeasured", "baseline_violated"]
    rto_seconds: float | None = None
    impact_start_ts: float | None = None
    recovered_ts: float | None = None
    baseline_share: float | None = None
    detail: str = ""
    evidence: str = ""
    rto_prometheus_seconds: float | None = Field(
        None, description="The same recovery seen on Prometheus' SLI (an independent cross-check)."
    )
    prometheus_evidence: str = ""
    budget_spent: float | None = None
    bad_events: float | None = None
    total_events: float | None = None
    budget_evidence: str = ""
    period_s: float | None = None


class AlertEpisode(_Strict):
    alertname: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict)
    start_ts: float
    end_ts: float | None = Field(None, description="None while still firing at the end of the run.")
    expected: bool
    ttd_seconds: float | None = None
    late: bool = Field(False, description="Began only after the fault had been removed.")


class DetectionResult(_Strict):
    severity: str
    alertname: str
    ts: float
    ttd_seconds: float
    late: bool = False


class Finding(_Strict):
    """Something an SRE should look at that is not an objective: an unexpected or late page, an
    alert firing before the fault, failed writes, a baseline outside the objective."""

    kind: str
    message: str
    ts: float | None = None


class CapacityResult(_Strict):
    status: Literal["recovered", "no_impact", "unrecovered", "unmeasured"]
    baseline: int | None = None
    lowest: int | None = None
    rto_seconds: float | None = Field(None, description="From ground truth (node readiness events).")
    recovered_ts: float | None = None
    rto_prometheus_seconds: float | None = Field(None, description="Ready GPU nodes as Prometheus saw them.")
    evidence: str = ""


class RpoResult(_Strict):
    rpo_seconds: float | None = None
    lost_writes: int | None = None
    failed_writes: int = 0
    failed_span_s: float | None = None
    detail: str = ""


class StageTime(_Strict):
    """One stage of a GPU failure's handling (Xid reported, node condition, cordon, gateway
    ejection, SLO alert), seconds after injection."""

    stage: str
    ground_truth_s: float | None = None
    prometheus_s: float | None = None
    evidence: str = ""


class RunMeta(_Strict):
    """Where and with what the run ran (run.json, Prometheus' build info, the lab's state)."""

    host: str = ""
    versions: dict[str, str] = Field(
        default_factory=dict, description="harness, Chaos Toolkit, Locust, Prometheus, the model served."
    )
    experiment_title: str = ""
    journal_status: str | None = Field(None, description="Chaos Toolkit's own verdict (journal.json).")
    deviated: bool | None = None


class ProbeResult(_Strict):
    name: str
    status: str = ""
    tolerance_met: bool | None = None
    output: str = ""


class HypothesisCheck(_Strict):
    """The experiment's steady-state hypothesis, checked before or after the method."""

    when: Literal["before", "after", "during"]
    met: bool | None = None
    ts: float | None = None
    probes: list[ProbeResult] = Field(default_factory=list)


class ActivityRecord(_Strict):
    """One action or probe of the experiment's method or rollbacks, as Chaos Toolkit ran it."""

    phase: Literal["method", "rollback", "hypothesis", "experiment"]
    name: str
    type: str = ""
    status: str = ""
    start_ts: float | None = None
    duration_s: float | None = None
    output: str = ""
    error: str = ""


class GuardrailStatus(_Strict):
    name: str
    query: str = ""
    above: float | None = None
    for_seconds: float = 0.0
    tripped: bool = False
    ts: float | None = None
    value: float | None = None


class ClientError(_Strict):
    """A failure the load generator (the user's own locustfile included) saw, by request name."""

    request: str
    message: str
    count: int
    first_ts: float | None = None


class RunResult(_Strict):
    scenario: str
    status: Status = "error"
    passed: bool = False
    error: str | None = None
    interrupted: str | None = Field(None, description="Signal and phase, e.g. 'SIGTERM in baseline'.")
    objectives: list[ObjectiveVerdict] = Field(default_factory=list)
    slis: list[SliResult] = Field(default_factory=list)
    detection: list[DetectionResult] = Field(default_factory=list)
    alerts: list[AlertEpisode] = Field(default_factory=list)
    alerts_before_injection: list[AlertEpisode] = Field(default_factory=list)
    expected_alerts_silent: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    capacity: CapacityResult | None = None
    rpo: RpoResult | None = None
    stages: list[StageTime] = Field(default_factory=list)
    impact: dict[str, PhaseSummary] = Field(default_factory=dict)
    inject_ts: float | None = None
    fault_landed_ts: float | None = None
    fault_end_ts: float | None = None
    detect_ts: float | None = None
    recovered_ts: float | None = None
    started_ts: float | None = None
    ended_ts: float | None = None

    # Headline figures (the worst SLI; the page), kept flat for dashboards and `gate` summaries.
    ttd_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    capacity_rto_seconds: float | None = None
    budget_spent: float | None = Field(None, description="The largest share spent of any SLO's budget.")

    # What chaos tools' reports show: run metadata, the hypothesis before/after, each activity and
    # rollback, guardrails, and the client's own errors by request name.
    meta: RunMeta = Field(default_factory=RunMeta)
    hypothesis: list[HypothesisCheck] = Field(default_factory=list)
    activities: list[ActivityRecord] = Field(default_factory=list)
    guardrails: list[GuardrailStatus] = Field(default_factory=list)
    client_errors: list[ClientError] = Field(default_factory=list)

    @property
    def alerts_fired(self) -> list[str]:
        return sorted({a.alertname for a in self.alerts})


def result_json_schema() -> dict[str, object]:
    return RunResult.model_json_schema()
