"""Runs that never ended: a game day SIGKILLed (or crashed) leaves `run.json` without `ended_ts`.
`reliability recover` marks them, so their result.json says the run was killed and in which phase,
instead of a misleading verdict built from whatever data the run left."""

from __future__ import annotations

import os
import time
from pathlib import Path

from reliability.files import find_below
from reliability.rundir import read_run_info, write_run_info


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_killed_runs(path: Path) -> list[Path]:
    """Every run directory at or below `path` (two levels) whose run never ended and whose
    process is gone: record the kill in run.json and rebuild its reports. Returns those runs."""
    marked = []
    for info_path in find_below(Path(path), "run.json"):
        info = read_run_info(info_path)
        if info is None or info.ended_ts is not None or _alive(info.pid):
            continue
        info.ended_ts = time.time()
        info.interrupted = (
            f"killed (SIGKILL or crash) during {info.phase}; cleaned up by `reliability recover`"
        )
        write_run_info(info_path, info)
        run_dir = info_path.parent
        try:
            from reliability.report import build_reports

            build_reports(run_dir)
        except Exception as exc:  # the mark in run.json is what matters; reports are best effort
            from reliability.gameday.integrations import write_error_result

            write_error_result(
                run_dir, info.scenario, f"reports could not be rebuilt: {exc}", info.interrupted
            )
        marked.append(run_dir)
    return marked
