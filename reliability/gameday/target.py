"""The system under test for a game day: a lab the run starts, one already running, or a Kubernetes
cluster. Each is a context manager producing the same `TargetInfo`: the state file the fault
functions work from (and the module implementing them), the Prometheus URL and its auth headers,
the service endpoint load goes to, where the ground-truth events are written, and the golden answers.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from reliability.errors import HarnessError, InputError
from reliability.scenario import LabTarget as LabTargetSpec
from reliability.scenario import Scenario, resolve

LAB_FAULTS = "reliability.lab.faults"
K8S_FAULTS = "reliability.k8s.faults"


@dataclass(frozen=True)
class TargetInfo:
    state_file: Path
    prometheus_url: str
    endpoint: str
    events_path: Path
    started_by_us: bool
    golden_path: Path | None = None  # known prompts and answers (quality judged by the load generator)
    kind: str = "lab"
    faults_module: str = LAB_FAULTS  # the fault functions over `state_file` (chaos actions, recover)
    # Read from the environment when the target starts; never written to a file.
    prometheus_headers: dict[str, str] = field(default_factory=dict, repr=False)
    signals: str | None = None  # signals profile (name or file); None: the default


class LabTarget(AbstractContextManager["LabTarget"]):
    def __init__(self, scenario: Scenario, scenario_path: Path, workdir: Path) -> None:
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.workdir = workdir
        self._lab: Any = None
        self.info: TargetInfo | None = None

    def slo_paths(self) -> list[Path]:
        return [resolve(self.scenario_path, s) for s in self.scenario.slos]

    def __enter__(self) -> LabTarget:
        spec = self.scenario.target
        assert isinstance(spec, LabTargetSpec)
        if spec.state_file:
            self.info = self._attach(resolve(self.scenario_path, spec.state_file))
            return self
        try:
            from reliability.lab import Lab, load_lab_config
        except ImportError as exc:
            raise HarnessError(f"the lab is not available in this installation: {exc}") from exc

        config_path = resolve(self.scenario_path, spec.config) if spec.config else None
        config = load_lab_config(config_path)
        self._lab = Lab(config, self.workdir, isolation=spec.isolation, slo_files=self.slo_paths())
        try:
            self._lab.start()
        except BaseException:
            self._lab.stop()
            raise
        self.info = TargetInfo(
            state_file=Path(self._lab.state_file),
            prometheus_url=str(self._lab.prometheus_url),
            endpoint=str(self._lab.endpoint),
            events_path=Path(self._lab.events_path),
            started_by_us=True,
            golden_path=self._lab.golden_path,
        )
        return self

    def _attach(self, state_file: Path) -> TargetInfo:
        from reliability.lab.state import read_state

        state = read_state(state_file)
        if state is None:
            raise InputError(
                f"{self.scenario_path}: target.state_file", f"no readable lab state at {state_file}"
            )
        if state.phase != "ready" or not state.prometheus_url or not state.endpoint:
            raise HarnessError(f"the lab of {state_file} is {state.phase}, not ready: is it up?")
        return TargetInfo(
            state_file=state_file,
            prometheus_url=state.prometheus_url,
            endpoint=state.endpoint,
            events_path=Path(state.events_path) if state.events_path else state_file.parent / "events.jsonl",
            started_by_us=False,
            golden_path=Path(state.golden_path) if state.golden_path else None,
        )

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        lab, self._lab = self._lab, None
        if lab is not None:
            lab.stop()


class KubernetesTarget(AbstractContextManager["KubernetesTarget"]):
    """A cluster the run does not own: on entry, the state file `k8s-target.json` is written into
    `workdir` (the fault journal and ledger go beside it), the cluster's identity is checked (a wrong
    cluster is refused before anything is sent) and a `ClusterWatch` starts writing the nodes' and
    pods' transitions to `workdir/events.jsonl`; on exit the watch stops. Nothing is torn down: the
    run's faults are undone by the orchestrator from the ledger before this exits."""

    def __init__(self, scenario: Scenario, scenario_path: Path, workdir: Path) -> None:
        self.scenario = scenario
        self.scenario_path = Path(scenario_path)
        self.workdir = Path(workdir)
        self.info: TargetInfo | None = None
        self._watch: Any = None

    def __enter__(self) -> KubernetesTarget:
        from reliability.k8s.client import connect
        from reliability.k8s.target import KubernetesTarget as Spec
        from reliability.k8s.target import resolve_target, write_state
        from reliability.k8s.watch import ClusterWatch

        spec = self.scenario.target
        assert isinstance(spec, Spec)
        resolved = resolve_target(spec, self.scenario_path)
        headers = resolved.prometheus.headers()
        state_file = write_state(resolved, self.workdir, scenario_path=self.scenario_path)
        cluster = connect(state_file)  # Refused (exit 2) unless it is the expected cluster
        events = self.workdir / "events.jsonl"
        self._watch = ClusterWatch(state_file, events, cluster=cluster)
        try:
            self._watch.start()
        except TimeoutError as exc:
            raise HarnessError(f"the cluster watch of {cluster.server} did not start: {exc}") from exc
        self.info = TargetInfo(
            state_file=state_file,
            prometheus_url=resolved.prometheus.url,
            endpoint=resolved.endpoint,
            events_path=events,
            started_by_us=False,
            golden_path=Path(resolved.golden) if resolved.golden else None,
            kind="kubernetes",
            faults_module=K8S_FAULTS,
            prometheus_headers=headers,
            signals=resolved.signals,
        )
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()


def open_target(scenario: Scenario, scenario_path: Path, workdir: Path) -> LabTarget | KubernetesTarget:
    """The target of the scenario's `target.kind`, not yet entered."""
    if isinstance(scenario.target, LabTargetSpec):
        return LabTarget(scenario, scenario_path, workdir)
    return KubernetesTarget(scenario, scenario_path, workdir)


def check_target_spec(scenario: Scenario, scenario_path: Path) -> None:
    """Offline checks of a Kubernetes target (nothing is read but files of the repository): the
    experiment drives the Kubernetes fault functions, every one of its faults has a Kubernetes
    mapping, and the signals profile loads."""
    from reliability.k8s.experiment import fault_calls
    from reliability.k8s.target import KubernetesTarget as Spec
    from reliability.k8s.target import resolve_target
    from reliability.signals import load_profile

    spec = scenario.target
    if not isinstance(spec, Spec):
        return
    module = scenario.experiment.configuration.get("faults_module", K8S_FAULTS)
    if module != K8S_FAULTS:
        raise InputError(
            f"{scenario_path}: experiment.configuration.faults_module",
            f"a Kubernetes target's faults are {K8S_FAULTS}, not {module}",
        )
    fault_calls(resolve(scenario_path, scenario.experiment.file), scenario.experiment.configuration)
    load_profile(resolve_target(spec, scenario_path).signals)


def preflight(scenario: Scenario, scenario_path: Path) -> None:
    """What the target needs from this machine, checked before a run directory exists: a Kubernetes
    target's kubeconfig and context (never a fallback), the Prometheus auth variables it names, and
    the cluster's identity (one read of the kube-system namespace; a wrong cluster is refused)."""
    from reliability.k8s.client import connect_state
    from reliability.k8s.target import KubernetesTarget as Spec
    from reliability.k8s.target import TargetState, kubeconfig_server, new_run_id, resolve_target

    spec = scenario.target
    if not isinstance(spec, Spec):
        return
    where = f"{scenario_path}: target"
    resolved = resolve_target(spec, scenario_path)
    server = kubeconfig_server(Path(resolved.kubeconfig), resolved.context, where)
    try:
        resolved.prometheus.headers()
    except InputError as exc:
        raise InputError(f"{scenario_path}: target.prometheus", exc.message) from exc
    state = TargetState(
        run_id=new_run_id(),
        target=resolved,
        server=server,
        endpoint=resolved.endpoint,
        prometheus_url=resolved.prometheus.url,
        dry_run=True,
    )
    connect_state(state, Path(scenario_path), where)
