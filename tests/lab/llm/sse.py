"""A plain http.client reader of server-sent events, for the node tests."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stream:
    status: int
    headers: dict[str, str]
    events: list[bytes] = field(default_factory=list)
    complete: bool = True  # False when the connection broke before the body ended

    def data(self) -> list[Any]:
        """Each event's JSON (the final [DONE] as the string "[DONE]")."""
        out = []
        for ev in self.events:
            assert ev.startswith(b"data: "), ev
            payload = ev[len(b"data: ") :]
            out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
        return out

    def content(self) -> str:
        text = ""
        for d in self.data():
            if isinstance(d, dict) and d.get("choices"):
                choice = d["choices"][0]
                text += choice["delta"].get("content") or "" if "delta" in choice else choice["text"]
        return text


def stream(port: int, path: str, body: dict[str, Any], timeout: float = 30.0) -> Stream:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        out = Stream(resp.status, {k.lower(): v for k, v in resp.getheaders()})
        buf = b""
        try:
            while chunk := resp.read1(65536):
                buf += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    out.events.append(event)
        except (http.client.IncompleteRead, ConnectionError):
            out.complete = False
        assert not buf or not out.complete, buf
        return out
    finally:
        conn.close()
