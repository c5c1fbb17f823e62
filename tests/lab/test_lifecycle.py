"""Starting and stopping the lab safely (issue 11, section 4), from the CLI as the README shows it:
one lab per directory, nothing left behind after `lab down` - also when the starter or the
supervisor was killed, and a failed network teardown is never reported as down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reliability.lab import Lab
from reliability.lab.state import read_state
from tests.lab.conftest import (
    ISOLATIONS,
    PREFERRED,
    REPO,
    leftovers,
    read_state_doc,
    small_config,
    wait_for,
)

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "reliability.cli"]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    """A lab directory that is always brought down at the end, whatever the test did."""
    d = tmp_path / "lab"
    try:
        yield d
    finally:
        if (d / "state.json").exists():
            cli("lab", "down", "--dir", str(d))


def small_config_file(tmp_path: Path) -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(small_config().model_dump(mode="json")))
    return path


def readme_lab_commands() -> list[str]:
    """The shell commands of the README's lab section that talk to a running lab (curl)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The embedded lab", 1)[1].split("\n## ", 1)[0]
    block = "\n".join(line[4:] for line in section.splitlines() if line.startswith("    "))
    block = block.replace("\\\n", " ")
    return [line.strip() for line in block.splitlines() if line.strip().startswith("curl ")]


def test_two_lab_ups_on_one_directory_one_starts_the_readme_works_and_down_leaves_nothing(
    tmp_path: Path, lab_dir: Path
) -> None:
    config = small_config_file(tmp_path)
    argv = [*CLI, "lab", "up", "--detach", "--isolation", PREFERRED, "--config", str(config)]
    argv += ["--dir", str(lab_dir)]
    procs = [
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], outs
    winner, loser = (outs[0], outs[1]) if codes[0] == 0 else (outs[1], outs[0])
    assert "endpoint:" in winner[0] and "prometheus:" in winner[0]
    assert loser[1].count("\n") == 1 and "already running" in loser[1], loser
    # The refused start touched nothing: one lab, the winner's, whole and alone.
    doc = read_state_doc(lab_dir)
    status = cli("lab", "status", "--json", "--dir", str(lab_dir))
    assert status.returncode == 0
    live = yaml.safe_load(status.stdout)
    assert live["phase"] == "ready" and live["lab_id"] == doc["lab_id"]
    assert all(c["pid"] for c in live["components"])
    supervisors = subprocess.run(
        ["pgrep", "-f", f"reliability.lab.supervisor {lab_dir}"], capture_output=True, text=True
    ).stdout.split()
    assert supervisors == [str(doc["supervisor"]["pid"])]
    if doc["fabric"]["mode"] == "netns":
        from reliability.lab.netns import list_namespaces

        mine = [ns for ns in list_namespaces() if ns.startswith(f"rl{doc['fabric']['lab_id']}")]
        assert mine == [f"rl{doc['fabric']['lab_id']}_solo"]
    # The README's examples against the running lab.
    port = doc["endpoint"].rsplit(":", 1)[1]
    commands = readme_lab_commands()
    assert commands, "no curl example in the README's lab section"
    for command in commands:
        out = subprocess.run(
            command.replace("PORT", port), shell=True, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0 and out.stdout, (command, out.stderr)
        assert "data: [DONE]" in out.stdout or '"outputs"' in out.stdout, (command, out.stdout[-500:])
    down = cli("lab", "down", "--dir", str(lab_dir))
    assert down.returncode == 0 and "lab down" in down.stdout
    assert leftovers(doc) == []
    assert read_state_doc(lab_dir)["phase"] == "down"
    again = cli("lab", "down", "--dir", str(lab_dir))  # idempotent
    assert again.returncode == 0


STARTER = """
import sys, time
from reliability.lab import Lab
from tests.lab.conftest import small_config
Lab(small_config(), sys.argv[1], isolation=sys.argv[2], slo_files=[]).start()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_lab_whose_starter_is_killed_tears_itself_down(lab_dir: Path, isolation: str) -> None:
    """Not detached: the supervisor sees it was orphaned (RELIABILITY_LAB_STOP_WHEN_ORPHANED) and
    stops everything, namespaces, bridge and routes included - no command needed."""
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(lab_dir), isolation],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert starter.stdout is not None
        assert starter.stdout.readline().strip() == "ready"
        doc = read_state_doc(lab_dir)
        assert doc["phase"] == "ready" and leftovers(doc) != []  # what is looked for exists
        starter.kill()
        starter.wait(10)
        wait_for(lambda: read_state_doc(lab_dir)["phase"] == "down", 60, what="the orphaned lab down")
        wait_for(lambda: leftovers(doc) == [], 10, what=f"nothing left: {leftovers(doc)}")
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(10)


def fake_ip(tmp_path: Path) -> dict[str, str]:
    """An environment whose `ip` fails, as when the tool breaks or the kernel refuses."""
    bin_dir = tmp_path / "broken-bin"
    bin_dir.mkdir()
    ip = bin_dir / "ip"
    ip.write_text("#!/bin/sh\necho 'ip: simulated failure' >&2\nexit 1\n")
    ip.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_lab_down_after_the_supervisor_was_killed_leaves_nothing(
    tmp_path: Path, lab_dir: Path, isolation: str
) -> None:
    """And a network teardown that fails leaves the lab `teardown_failed`, not `down`; a later
    `lab down` finishes it."""
    lab = Lab(small_config(), lab_dir, isolation=isolation, slo_files=[], keep_running=True)
    lab.start()
    doc = read_state_doc(lab_dir)
    os.kill(doc["supervisor"]["pid"], signal.SIGKILL)
    assert lab.proc is not None
    lab.proc.wait(10)
    if doc["fabric"]["mode"] == "netns":
        failed = cli("lab", "down", "--dir", str(lab_dir), env=fake_ip(tmp_path))
        assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
        assert "teardown" in failed.stderr
        after = read_state(lab_dir / "state.json")
        assert after is not None and after.phase == "teardown_failed" and after.error
        assert [x for x in leftovers(doc) if x.startswith("netns")]  # still there: not `down`
        assert not [x for x in leftovers(doc) if x.startswith("pid")]  # the processes are gone
    down = cli("lab", "down", "--dir", str(lab_dir))
    assert down.returncode == 0, down.stderr
    assert leftovers(doc) == []
    assert read_state_doc(lab_dir)["phase"] == "down"
