"""Our Chaos Toolkit control: the activity timeline and the guardrails.

Attach it in an experiment's `controls` block (the runner does so programmatically):

    controls:
      - name: reliability
        provider:
          type: python
          module: reliability.chaos.controls
          arguments: {timeline_path: run/timeline.jsonl, guardrails: [...], prometheus_url: ...}

Module state is per process: chaoslib runs one experiment per process in our runner.
A tripped guardrail sends SIGUSR1 to this process; chaoslib's handler turns it into
SystemExit(20) in the main thread, which ends the method and still plays the rollbacks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from reliability.chaos.guardrails import StopCondition
from reliability.chaos.jsonl import append_record, stamp

logger = logging.getLogger("chaostoolkit")


class _State:
    def __init__(self) -> None:
        self.timeline: Path | None = None
        self.conditions: list[StopCondition] = []
        self.prometheus_url: str | None = None
        self.poll_interval = 1.0
        self.max_checks = 100_000
        self.phase = "experiment"
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.tripped: dict[str, Any] | None = None
        self.configuration: dict[str, Any] = {}


_S = _State()


def record(event: str, **fields: Any) -> None:
    """Append to the timeline (a no-op when the control is not attached, e.g. plain `chaos run`).
    `fields` may carry their own `ts`/`mono` (when the event began rather than now)."""
    if _S.timeline is not None:
        append_record(_S.timeline, {**stamp(), "event": event, "phase": _S.phase, **fields})


def configure_control(
    timeline_path: str | None = None,
    guardrails: list[dict[str, Any]] | None = None,
    prometheus_url: str | None = None,
    poll_interval: float = 1.0,
    configuration: dict[str, Any] | None = None,
) -> None:
    _S.timeline = Path(timeline_path) if timeline_path else None
    _S.conditions = [
        StopCondition(
            name=str(g["name"]),
            query=str(g["query"]),
            above=float(g["above"]),
            for_seconds=float(g.get("for_seconds", g.get("for", 0.0))),
        )
        for g in guardrails or []
    ]
    _S.prometheus_url = prometheus_url
    _S.poll_interval = max(0.2, float(poll_interval))
    _S.stop.clear()
    _S.tripped = None
    _S.configuration = configuration or {}


def cleanup_control() -> None:
    _stop_guardrails()


def before_experiment_control(context: dict[str, Any], **kwargs: Any) -> None:
    record("experiment_start", title=context.get("title", ""))


def after_experiment_control(context: dict[str, Any], state: dict[str, Any] | None = None, **kw: Any) -> None:
    _stop_guardrails()
    _S.phase = "experiment"
    status = (state or {}).get("status", "") if isinstance(state, dict) else ""
    record("experiment_end", status=status, deviated=bool((state or {}).get("deviated", False)))


def before_method_control(context: dict[str, Any], **kwargs: Any) -> None:
    _S.phase = "method"
    record("method_start")
    _start_guardrails()


def after_method_control(context: dict[str, Any], **kwargs: Any) -> None:
    _stop_guardrails()
    record("method_end")


def before_rollback_control(context: dict[str, Any], **kwargs: Any) -> None:
    # Guardrails watch the fault, not the undo: a trip now would interrupt the rollback itself.
    _stop_guardrails()
    _S.phase = "rollback"
    record("rollback_start")


def after_rollback_control(context: dict[str, Any], **kwargs: Any) -> None:
    record("rollback_end")
    _S.phase = "experiment"


def before_hypothesis_control(context: dict[str, Any], **kwargs: Any) -> None:
    if _S.phase != "method":
        _S.phase = "hypothesis"


def after_hypothesis_control(context: dict[str, Any], state: Any = None, **kwargs: Any) -> None:
    met = state.get("steady_state_met") if isinstance(state, dict) else None
    probes = state.get("probes", []) if isinstance(state, dict) else []
    failed = [
        str((p.get("activity") or {}).get("name", "?"))
        for p in probes
        if isinstance(p, dict) and p.get("tolerance_met") is False
    ]
    record("hypothesis", met=met, failed_probes=failed)
    if _S.phase == "hypothesis":
        _S.phase = "experiment"


def before_activity_control(context: dict[str, Any], **kwargs: Any) -> None:
    record("activity_start", name=context.get("name", ""), type=context.get("type", ""))


def after_activity_control(context: dict[str, Any], state: Any = None, **kwargs: Any) -> None:
    run = state if isinstance(state, dict) else {}
    record(
        "activity_end",
        name=context.get("name", ""),
        type=context.get("type", ""),
        status=run.get("status", ""),
        output=_short(run.get("output")),
        **({"error": _last_line(run["exception"])} if run.get("exception") else {}),
    )


def _last_line(exception: Any) -> str:
    """chaoslib keeps a failed activity's traceback as a list of lines; its last one says what failed."""
    lines = [str(x) for x in exception] if isinstance(exception, list) else [str(exception)]
    text = "".join(lines).strip()
    return text.splitlines()[-1] if text else ""


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 500 else text[:500]


def _start_guardrails() -> None:
    if not _S.conditions or _S.thread is not None:
        return
    _S.stop.clear()
    _S.thread = threading.Thread(target=_watch, name="guardrails", daemon=True)
    _S.thread.start()


def _stop_guardrails() -> None:
    _S.stop.set()
    thread, _S.thread = _S.thread, None
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=5)


def _watch() -> None:
    from reliability.chaos.prom import connect, query_value, resolve_prometheus_url

    prom = connect(resolve_prometheus_url(_S.prometheus_url, _S.configuration))
    for _ in range(_S.max_checks):
        if _S.stop.wait(_S.poll_interval):
            return
        now = time.monotonic()
        for cond in _S.conditions:
            try:
                value = query_value(prom, cond.query)
            except Exception as exc:  # a flaky query must not kill the watcher
                logger.warning(f"guardrail {cond.name}: query failed: {exc}")
                value = None
            if cond.observe(now, value):
                _S.tripped = {"name": cond.name, "value": value, "above": cond.above}
                record(
                    "guardrail_tripped",
                    name=cond.name,
                    value=value,
                    above=cond.above,
                    for_seconds=cond.for_seconds,
                    breach_since_mono=cond.breach_since,
                )
                logger.error(f"guardrail {cond.name} tripped: {value} > {cond.above}; aborting")
                if not _S.stop.is_set():
                    os.kill(os.getpid(), signal.SIGUSR1)
                return
