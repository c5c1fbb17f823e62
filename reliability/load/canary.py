"""RPO canary: sequence-numbered writes to the lab's replicated store, acknowledgements on file.

A plain thread with `requests` (no Locust). Each write appends
`{"kind": "write", "seq", "ts", "mono", "acked", "status"}` to `canary_writes.jsonl` (`ts` = when
the answer came back); on stop, the surviving sequence numbers are read back from the store (the
promoted primary, after a failover) and appended as `{"kind": "survivors", "ts", "seqs"}`.

Store HTTP contract (the lab's store, reliability/lab/store.py; `store_url` overrides discovery):
- `POST {store_url}/write` JSON `{"key": "canary-<run>", "seq": N, "ts": T}` -> 2xx = acknowledged.
- `GET {store_url}/seqs?key=canary-<run>` -> `{"seqs": [N, ...]}` as the current primary holds them.
The URL comes from the lab state file: `store_url`, or `store.url`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from reliability.load.target import check_target

KEY_PREFIX = "canary"


def store_url_from_state(state_file: Path | str | None) -> str | None:
    if state_file is None:
        return None
    try:
        state = json.loads(Path(state_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = state.get("store_url") or (state.get("store") or {}).get("url")
    return str(url) if url else None


class CanaryWriter:
    """Context manager; does nothing (writes no file) when no store URL can be found."""

    def __init__(
        self,
        out_path: Path | str,
        state_file: Path | str | None = None,
        store_url: str | None = None,
        interval_s: float = 0.05,
        request_timeout_s: float = 1.0,
        readback_timeout_s: float = 15.0,
        max_writes: int = 1_000_000,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        url = store_url or store_url_from_state(state_file)
        self.store_url = check_target(url, allowed_hosts).rstrip("/") if url else None
        self.out_path = Path(out_path)
        self.interval_s = interval_s
        self.request_timeout_s = request_timeout_s
        self.readback_timeout_s = readback_timeout_s
        self.max_writes = max_writes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session = requests.Session()
        self.writes = 0
        # A key of its own per run: sequence numbers restart at 0, and the store outlives runs.
        self.key = f"{KEY_PREFIX}-{uuid.uuid4().hex[:12]}"
        self.acked = 0

    def _append(self, record: dict[str, Any]) -> None:
        fd = os.open(self.out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)

    def _loop(self) -> None:
        for seq in range(self.max_writes):
            if self._stop.is_set():
                return
            started = time.monotonic()
            status = 0
            try:
                resp = self._session.post(
                    f"{self.store_url}/write",
                    json={"key": self.key, "seq": seq, "ts": time.time()},
                    timeout=self.request_timeout_s,
                )
                status = resp.status_code
            except requests.RequestException:
                pass
            acked = 200 <= status < 300
            self.writes += 1
            self.acked += acked
            self._append(
                {
                    "kind": "write",
                    "seq": seq,
                    "ts": time.time(),
                    "mono": time.monotonic(),
                    "acked": acked,
                    "status": status,
                }
            )
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def read_back(self) -> list[int] | None:
        """Surviving sequence numbers; retried while the store fails over, None if it never answers."""
        deadline = time.monotonic() + self.readback_timeout_s
        while True:
            try:
                resp = self._session.get(
                    f"{self.store_url}/seqs", params={"key": self.key}, timeout=self.request_timeout_s
                )
                if resp.ok:
                    return sorted(int(s) for s in resp.json()["seqs"])
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)

    def start(self) -> CanaryWriter:
        if self.store_url is None:
            return self
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="rpo-canary", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=self.request_timeout_s + self.interval_s + 5)
        self._thread = None
        seqs = self.read_back()
        if seqs is not None:
            self._append({"kind": "survivors", "ts": time.time(), "seqs": seqs})
        self._session.close()

    def __enter__(self) -> CanaryWriter:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
