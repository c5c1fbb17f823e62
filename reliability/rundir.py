"""The run directory: one definition of its layout (`runs/<scenario>-<UTC time>/`) and of `run.json`,
for the game day that writes it, the reports that read it and `reliability recover`."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from reliability.files import write_json_atomic


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def create(cls, scenario_name: str, out: Path | None, scenario_file: Path) -> RunDir:
        if out is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            out = Path("runs") / f"{scenario_name}-{stamp}"
        root = Path(out).resolve()
        root.mkdir(parents=True, exist_ok=True)
        (root / "series").mkdir(exist_ok=True)
        shutil.copyfile(scenario_file, root / "scenario.yaml")
        return cls(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    scenario = property(lambda self: self.root / "scenario.yaml")
    timeline = property(lambda self: self.root / "timeline.jsonl")
    journal = property(lambda self: self.root / "journal.json")
    load_stats = property(lambda self: self.root / "load_stats.jsonl")
    canary_writes = property(lambda self: self.root / "canary_writes.jsonl")
    events = property(lambda self: self.root / "events.jsonl")
    series = property(lambda self: self.root / "series")
    slos = property(lambda self: self.root / "slos")  # copies: the budget is charged against these
    lab_dir = property(lambda self: self.root / "lab")
    ledger = property(lambda self: self.root / "fault-ledger.jsonl")
    result = property(lambda self: self.root / "result.json")
    postmortem = property(lambda self: self.root / "postmortem.md")
    report_html = property(lambda self: self.root / "report.html")
    junit = property(lambda self: self.root / "junit.xml")
    run_info = property(lambda self: self.root / "run.json")  # start, host, versions, interruption


class RunInfo(BaseModel):
    """`run.json`: written when the run starts and again when it ends, so a run that never ended
    (SIGKILL, a crash) is recognisable afterwards."""

    model_config = ConfigDict(extra="ignore")

    scenario: str
    started_ts: float
    ended_ts: float | None = None
    phase: str = "setup"
    host: str = ""
    pid: int | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    error: str | None = None
    interrupted: str | None = None


def read_run_info(path: Path) -> RunInfo | None:
    if not path.is_file():
        return None
    try:
        return RunInfo.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError):
        return None


def write_run_info(path: Path, info: RunInfo) -> None:
    write_json_atomic(path, info.model_dump(mode="json"))
