"""Headless Chromium over the DevTools protocol, for looking at report.html as a person's browser
renders it: console errors, what each plotly chart drew, where each link leads.

Debian's chromium (scripts/bootstrap.sh installs it), started with the flags that work on a
machine without network or sandbox; the protocol spoken over websocket-client.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1400,1000",
]
START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0

# Per plotly figure on the page: its subplots, the data points of the traces drawn on each, and
# how many trace groups plotly rendered into each subplot's SVG.
CHARTS_JS = """
(() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const subplots = Object.keys(gd._fullLayout._plots || {});
  const points = {};
  const titles = {};
  for (const sp of subplots) { points[sp] = 0; }
  for (const t of gd._fullData) {
    if (t.visible !== true) continue;
    const sp = (t.xaxis || 'x') + (t.yaxis || 'y');
    const xs = t.x || [];
    const ys = t.y || [];
    let n = 0;
    for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
      if (xs[i] !== null && xs[i] !== undefined && ys[i] !== null && ys[i] !== undefined) n++;
    }
    points[sp] = (points[sp] || 0) + n;
  }
  const drawn = {};
  for (const sp of subplots) {
    drawn[sp] = gd.querySelectorAll('.cartesianlayer .subplot.' + sp + ' .trace').length;
  }
  for (const sp of subplots) {
    const plot = gd._fullLayout._plots[sp];
    const top = plot.yaxis.domain[1];
    const a = (gd._fullLayout.annotations || []).find(
      a => a.yref === 'paper' && a.xref === 'paper' && Math.abs(a.y - top) < 0.02);
    titles[sp] = a ? a.text : sp;
  }
  return {id: gd.id, subplots, points, drawn, titles};
}))()
"""


class ChromiumPage:
    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("chromium") or "/usr/bin/chromium"
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.ws: websocket.WebSocket | None = None
        self.events: list[dict[str, Any]] = []
        self._next = 0

    def __enter__(self) -> ChromiumPage:
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"chromium did not start (exit {self.proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=COMMAND_TIMEOUT_S)
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        self._next += 1
        ident = self._next
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self.events.append(msg)
        raise TimeoutError(method)

    def wait_for(self, method: str, timeout: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        assert self.ws is not None
        seen = next((e for e in self.events if e.get("method") == method), None)
        deadline = time.monotonic() + timeout
        while seen is None and time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                seen = msg
        if seen is None:
            raise TimeoutError(method)
        return seen

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in got:
            raise RuntimeError(got["exceptionDetails"])
        return got["result"].get("value")

    def console_errors(self) -> list[str]:
        """Errors the page raised or logged: uncaught exceptions, console.error, failed loads."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(str(params.get("exceptionDetails", {}).get("exception", {}).get("description")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
                )
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(str(params["entry"].get("text")))
        return out

    def charts(self) -> list[dict[str, Any]]:
        return list(self.evaluate(CHARTS_JS) or [])

    def links(self) -> list[str]:
        return list(self.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)") or [])
