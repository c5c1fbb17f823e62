"""Running a Chaos Toolkit experiment in a dedicated child process.

chaoslib installs signal handlers (SIGTERM -> InterruptExecution, SIGUSR1/2 -> SystemExit),
which only works in a process's main thread, so each experiment gets its own process:
`python -m reliability.chaos.runner SPEC.json`. We always pass the `always` rollback strategy
in `settings`: chaoslib ignores the experiment's own `runtime` key, and its default strategy
skips rollbacks after an interruption.

The child stays in the parent's process group on purpose: SIGKILL of the whole run kills it too
(then `reliability recover` cleans up), and a terminal's Ctrl-C reaches it directly.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reliability.errors import InputError
from reliability.files import load_json, load_yaml, write_json_atomic
from reliability.tools import signal_self_when_orphaned

ROLLBACK_SETTINGS: dict[str, Any] = {"runtime": {"rollbacks": {"strategy": "always"}}}
CONTROL_NAME = "reliability-timeline-guardrails"


@dataclass
class ExperimentRunSpec:
    experiment: str
    journal: str
    timeline: str
    log: str
    configuration: dict[str, Any] = field(default_factory=dict)
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    prometheus_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def load_experiment(path: Path) -> dict[str, Any]:
    """The experiment as data: YAML or JSON, every reading problem a located InputError (files.py:
    encodings, duplicate keys, alias bombs, nesting), and a mapping at the top."""
    path = Path(path)
    data = load_yaml(path) if path.suffix in (".yaml", ".yml") else load_json(path, "experiment")
    if not isinstance(data, dict):
        raise InputError(str(path), "a Chaos Toolkit experiment must be a mapping")
    return data


def validate_experiment(path: Path, overrides: dict[str, Any] | None = None) -> None:
    """chaoslib's own validation, plus: scenario overrides must name existing configuration keys
    (chaoslib silently ignores unknown ones)."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    experiment = load_experiment(path)
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as exc:
        raise InputError(str(path), f"invalid experiment: {exc}") from exc
    known = set((experiment.get("configuration") or {}).keys())
    for key in overrides or {}:
        if key not in known:
            raise InputError(f"{path}: configuration.{key}", "not a configuration key of the experiment")


def attach_controls(experiment: dict[str, Any], spec: ExperimentRunSpec) -> dict[str, Any]:
    ctrl = {
        "name": CONTROL_NAME,
        "provider": {
            "type": "python",
            "module": "reliability.chaos.controls",
            "arguments": {
                "timeline_path": spec.timeline,
                "guardrails": spec.guardrails,
                "prometheus_url": spec.prometheus_url,
            },
        },
    }
    others = [c for c in experiment.get("controls", []) if c.get("name") != CONTROL_NAME]
    return {**experiment, "controls": [*others, ctrl]}


def run_in_this_process(spec: ExperimentRunSpec) -> dict[str, Any]:
    """Run the experiment here (must be the main thread); writes and returns the journal."""
    from chaoslib.experiment import run_experiment

    experiment = attach_controls(load_experiment(Path(spec.experiment)), spec)
    journal = run_experiment(
        experiment,
        settings=ROLLBACK_SETTINGS,
        experiment_vars=(dict(spec.configuration), {}),
    )
    write_json_atomic(Path(spec.journal), journal)
    return journal


def exit_code(journal: dict[str, Any]) -> int:
    status = journal.get("status")
    if status in ("interrupted", "aborted"):
        return 3
    if status == "failed" or journal.get("deviated"):
        return 1
    return 0


class ExperimentProcess:
    """The parent's handle on the child: start, wait, interrupt (SIGTERM -> rollbacks)."""

    def __init__(self, spec: ExperimentRunSpec, spec_path: Path) -> None:
        self.spec = spec
        self.spec_path = spec_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExperimentProcess:
        write_json_atomic(self.spec_path, asdict(self.spec))
        env = {**os.environ, **self.spec.env}
        log = open(self.spec.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reliability.chaos.runner", str(self.spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # No PR_SET_PDEATHSIG here: the child watches for its parent's death itself and then
                # interrupts itself exactly once, so its rollback is never cut short (see main()).
            )
        finally:
            log.close()
        return self

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def interrupt(self, grace: float = 30.0) -> int | None:
        """SIGTERM (chaoslib plays the rollbacks), then SIGKILL after `grace` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return self.poll()
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return self.poll()
        code = self.wait(grace)
        if code is None:
            self.proc.kill()
            code = self.wait(5)
        return code

    def journal(self) -> dict[str, Any] | None:
        try:
            return json.loads(Path(self.spec.journal).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = ExperimentRunSpec(**json.loads(Path(args[0]).read_text(encoding="utf-8")))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout, force=True
    )
    # If the harness dies (even by SIGKILL) the experiment gets one SIGTERM and rolls back.
    signal_self_when_orphaned(signal.SIGTERM)
    # A Ctrl-C that reaches this process before chaoslib runs must still leave a journal.
    started = time.time()
    try:
        journal = run_in_this_process(spec)
    except KeyboardInterrupt:
        journal = {"status": "interrupted", "start": started, "deviated": False}
        write_json_atomic(Path(spec.journal), journal)
    sys.stdout.flush()
    return exit_code(journal)


if __name__ == "__main__":
    sys.exit(main())
