"""The RPO canary against a small replicated-store stand-in (primary + lagging secondary) on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reliability.analysis import rpo
from reliability.load import CanaryWriter
from reliability.report.rundir import read_canary

LAG_S = 0.4


class Store:
    """Writes are acknowledged by the primary and reach the secondary LAG_S later; `fail_over()`
    promotes the secondary, losing what had not replicated, after a short unavailability."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.primary: dict[int, float] = {}
        self.down_until = 0.0
        self.lost: list[int] = []
        self.fault_ts = 0.0
        self.fault_returned_ts = 0.0

    def fail_over(self) -> None:
        with self.lock:
            now = time.time()
            self.down_until = now + 0.3
            self.fault_ts = now
            self.lost = sorted(s for s, t in self.primary.items() if t > now - LAG_S)
            self.primary = {s: t for s, t in self.primary.items() if t <= now - LAG_S}
        self.fault_returned_ts = time.time() + 0.05  # the caller's view: the call returned after this


@pytest.fixture
def store() -> Iterator[tuple[Store, str]]:
    state = Store()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, code: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                if time.time() < state.down_until:
                    return self._json(503, {"error": "failing over"})
                state.primary[int(doc["seq"])] = time.time()
            return self._json(200, {"ok": True})

        def do_GET(self) -> None:
            with state.lock:
                self._json(200, {"seqs": sorted(state.primary)})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_rpo_matches_the_unreplicated_span(tmp_path: Path, store: tuple[Store, str]) -> None:
    state, url = store
    out = tmp_path / "canary_writes.jsonl"
    with CanaryWriter(out, store_url=url, interval_s=0.02) as writer:
        time.sleep(1.0)
        state.fail_over()
        time.sleep(0.8)
    assert writer.acked > 0
    frame = read_canary(out)
    assert frame is not None
    # A write stored just before the failover can be acknowledged (its answer read) just after it:
    # like the game day, count acknowledgements until the failover call returned.
    result = rpo(frame, state.fault_ts, landed_ts=state.fault_returned_ts)
    assert result is not None
    assert result.lost_writes == len(state.lost) > 0
    assert result.rpo_seconds == pytest.approx(LAG_S, abs=0.1)
    # Writes during the failover were refused, not acknowledged: they are not counted as lost.
    refused = [
        r
        for r in map(json.loads, out.read_text().splitlines())
        if r.get("kind") == "write" and not r["acked"]
    ]
    assert refused and all(r["status"] == 503 for r in refused)


def test_no_store_means_no_canary_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"regions": []}))
    with CanaryWriter(tmp_path / "canary_writes.jsonl", state_file=state_file):
        pass
    assert not (tmp_path / "canary_writes.jsonl").exists()


def test_store_url_from_state_file_must_be_loopback(tmp_path: Path) -> None:
    from reliability.errors import InputError

    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"store": {"url": "http://192.0.2.1:9000"}}))
    with pytest.raises(InputError):
        CanaryWriter(tmp_path / "c.jsonl", state_file=state_file)
