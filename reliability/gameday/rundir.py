"""The run directory layout (docs/architecture.md, "Game-day run directory")."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path


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

    @property
    def timeline(self) -> Path:
        return self.root / "timeline.jsonl"

    @property
    def journal(self) -> Path:
        return self.root / "journal.json"

    @property
    def load_stats(self) -> Path:
        return self.root / "load_stats.jsonl"

    @property
    def canary_writes(self) -> Path:
        return self.root / "canary_writes.jsonl"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def series(self) -> Path:
        return self.root / "series"

    @property
    def lab_dir(self) -> Path:
        return self.root / "lab"

    @property
    def postmortem(self) -> Path:
        return self.root / "postmortem.md"
