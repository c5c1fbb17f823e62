"""HAProxy's own log lines -> the lab's ground-truth gateway events (docs/twin.md section 2).

Pure: a `LogParser` is fed lines (HAProxy 2.6, `log stdout format raw`, `option log-health-checks`)
and returns events; it reads no clock and no file. It keeps one piece of state per server: with
`option log-health-checks`, HAProxy 2.6 writes the reason of a state change on the health-check line
just before the change ("Health check for server vllm/n1 failed, reason: Layer4 connection problem,
info: "Connection refused", check duration: 0ms, status: 0/2 DOWN." then "Server vllm/n1 is DOWN. 2
active and 0 backup servers left. ..."), so the parser remembers each server's last check result and
puts it on the event. Without that option HAProxy puts the reason on the state line itself; both
shapes are understood.

Events (`GatewayEvent.event`):
- `gateway_server_down`: a server stopped receiving traffic: failed health checks (`reason` e.g.
  "Layer7 wrong status, code: 503", "Layer4 connection problem", "Layer4 timeout"), passive
  ejection by `observe layer7` (`reason` "Health analyze", `info` "Detected 3 consecutive errors,
  last one was: Wrong http response"), the runtime API ("changed from CLI"), or maintenance
  ("maintenance").
- `gateway_server_up`: a server receives traffic again (`reason` "Layer7 check passed", or
  "leaving forced maintenance" for a server enabled through the runtime API).
- `gateway_backend_empty`: "backend X has no server available!" (every request to it now fails,
  or an active-passive backend's backups take over).
Drain (`set server ... state drain`) is an operator's choice, not a failure: it yields no event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

EventName = Literal["gateway_server_down", "gateway_server_up", "gateway_backend_empty"]

# "Health check for [backup ]server B/S succeeded|failed, reason: R[, code: C][, info: "I"]
#  [, check duration: Nms], status: x/y UP|DOWN."
_CHECK = re.compile(
    r"^Health check for (?:backup )?server (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"(?P<result>succeeded|failed|conditionally succeeded), (?P<detail>.*?)"
    r"(?:, status: (?P<status>\d+/\d+ (?:UP|DOWN)))?\.?$"
)
# "[Backup ]Server B/S is DOWN[, reason: ...][, changed from CLI]. 2 active and 0 backup servers left. ..."
_DOWN = re.compile(
    r"^(?:Backup )?Server (?P<backend>[^/\s]+)/(?P<server>\S+) is DOWN(?P<detail>.*?)\. "
    r"(?P<active>\d+) active and (?P<backup>\d+) backup servers? (?:left|online)"
)
_MAINT = re.compile(
    r"^(?:Backup )?Server (?P<backend>[^/\s]+)/(?P<server>\S+) "
    r"is going DOWN for maintenance(?P<detail>.*?)\. "
    r"(?P<active>\d+) active and (?P<backup>\d+) backup servers? (?:left|online)"
)
# "Server B/S is UP. 3 active ..." / "Server B/S is UP/READY (leaving forced maintenance)."
# but not "Server B/S is UP (leaving forced drain)": drain yields no events.
_UP = re.compile(
    r"^(?:Backup )?Server (?P<backend>[^/\s]+)/(?P<server>\S+) is UP(?:/READY)?(?P<detail>.*?)"
    r"(?:\. (?P<active>\d+) active and (?P<backup>\d+) backup servers? (?:left|online).*|\.)$"
)
_EMPTY = re.compile(r"^backend (?P<backend>\S+) has no server available!$")
_DURATION = re.compile(r"check duration: (\d+)ms")
_INFO = re.compile(r', info: "(?P<info>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class CheckResult:
    """What one health-check line says (`reason` without its `info` and duration)."""

    passed: bool
    reason: str
    info: str | None
    check_duration_ms: int | None


@dataclass(frozen=True)
class GatewayEvent:
    event: EventName
    gateway: str
    backend: str
    server: str | None = None
    reason: str | None = None
    info: str | None = None
    check_duration_ms: int | None = None
    active_servers: int | None = None  # usable servers of the backend after the change
    backup_servers: int | None = None
    line: str = field(default="", compare=False)

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for `reliability.lab.events.append_event(path, e.event, **e.fields())`."""
        out: dict[str, Any] = {"gateway": self.gateway, "backend": self.backend}
        for key in ("server", "reason", "info", "check_duration_ms", "active_servers", "backup_servers"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def parse_check_detail(detail: str) -> CheckResult:
    """'reason: Layer7 wrong status, code: 503, info: "Service Unavailable", check duration: 1ms'
    -> reason 'Layer7 wrong status, code: 503', info 'Service Unavailable', 1 ms."""
    text = detail.strip().lstrip(",").strip()
    duration = _DURATION.search(text)
    info = _INFO.search(text)
    reason = text
    if reason.startswith("reason: "):
        reason = reason[len("reason: ") :]
    reason = _INFO.sub("", reason)
    reason = _DURATION.sub("", reason)
    reason = reason.strip().strip(",").strip()
    return CheckResult(
        passed=False,
        reason=reason,
        info=info.group("info").replace('\\"', '"') if info else None,
        check_duration_ms=int(duration.group(1)) if duration else None,
    )


class LogParser:
    """Feed HAProxy's log lines in order; get the gateway events they mean. One per HAProxy process."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self._last_check: dict[tuple[str, str], CheckResult] = {}

    def feed(self, line: str) -> list[GatewayEvent]:
        line = line.rstrip("\r\n")
        if line.startswith("Health check for "):
            self._remember_check(line)
            return []
        if line.startswith(("Server ", "Backup Server ")):
            event = self._state_change(line)
            return [event] if event else []
        m = _EMPTY.match(line)
        if m:
            return [GatewayEvent("gateway_backend_empty", self.gateway, m["backend"], line=line)]
        return []

    def _remember_check(self, line: str) -> None:
        m = _CHECK.match(line)
        if not m:
            return
        result = parse_check_detail(m["detail"])
        self._last_check[(m["backend"], m["server"])] = CheckResult(
            passed=m["result"] != "failed",
            reason=result.reason,
            info=result.info,
            check_duration_ms=result.check_duration_ms,
        )

    def _state_change(self, line: str) -> GatewayEvent | None:
        matches = ((k, p.match(line)) for k, p in (("maint", _MAINT), ("down", _DOWN), ("up", _UP)))
        kind, m = next(((k, found) for k, found in matches if found), ("", None))
        if m is None:
            return None
        backend, server = m["backend"], m["server"]
        detail = (m["detail"] or "").strip()
        counts = {
            "active_servers": int(m["active"]) if m["active"] is not None else None,
            "backup_servers": int(m["backup"]) if m["backup"] is not None else None,
        }
        last = self._last_check.pop((backend, server), None)
        if kind == "maint":
            return GatewayEvent(
                "gateway_server_down", self.gateway, backend, server, "maintenance", line=line, **counts
            )
        if kind == "up":
            if "leaving forced drain" in detail:
                return None
            if "leaving forced maintenance" in detail:
                reason, info, duration = "leaving forced maintenance", None, None
            elif detail.startswith(", reason:"):
                parsed = parse_check_detail(detail)
                reason, info, duration = parsed.reason, parsed.info, parsed.check_duration_ms
            elif last is not None and last.passed:
                reason, info, duration = last.reason, last.info, last.check_duration_ms
            else:
                reason, info, duration = detail.lstrip(", ") or None, None, None
            return GatewayEvent(
                "gateway_server_up",
                self.gateway,
                backend,
                server,
                reason,
                info,
                duration,
                line=line,
                **counts,
            )
        if detail.startswith(", reason:"):
            parsed = parse_check_detail(detail)
            reason, info, duration = parsed.reason, parsed.info, parsed.check_duration_ms
        elif detail:
            reason, info, duration = detail.lstrip(", ").strip(), None, None  # "changed from CLI"
        elif last is not None and not last.passed:
            reason, info, duration = last.reason, last.info, last.check_duration_ms
        else:
            reason, info, duration = None, None, None
        return GatewayEvent(
            "gateway_server_down", self.gateway, backend, server, reason, info, duration, line=line, **counts
        )
