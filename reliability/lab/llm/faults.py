"""The node's faults (docs/twin.md 1.4): one pydantic model for the admin API's body.

`{"mode": null}` clears. A new fault replaces the current one, except that a GPU that fell off the
bus (Xid 79) stays lost until the node is replaced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["xid", "gray", "slow_decode", "kv_cache_cut", "errors", "latency", "wrong", "bad_version"]

# What each injected Xid does (NVIDIA's Xid catalogue; dcgm-exporter reports the code in
# DCGM_FI_DEV_XID_ERRORS): 79 fell off the bus (node lost), 48 double-bit ECC and 95 uncontained ECC
# (the engine dies), 94 contained ECC (the requests in flight fail, the engine goes on), 63 a row
# remapping recorded, 64 row remapping failed (both leave serving alone but move the counters).
XID_CODES = (48, 63, 64, 79, 94, 95)


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode | None
    code: int | None = Field(None, description="xid: the Xid code.")
    hang: bool = Field(False, description="gray: requests hang instead of failing.")
    factor: float | None = Field(None, ge=1.0, le=1000.0, description="slow_decode: decode step multiplier.")
    fraction: float | None = Field(None, gt=0.0, le=1.0, description="kv_cache_cut: share of blocks left.")
    rate: float = Field(1.0, ge=0.0, le=1.0, description="errors, latency, wrong: share of requests hit.")
    latency_ms: float | None = Field(None, ge=0.0, le=600_000.0, description="latency: added delay.")
    version: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$", description="bad_version: served version."
    )

    @model_validator(mode="after")
    def _needs(self) -> Fault:
        required = {
            "xid": "code",
            "slow_decode": "factor",
            "kv_cache_cut": "fraction",
            "latency": "latency_ms",
        }
        need = required.get(self.mode or "")
        if need and getattr(self, need) is None:
            raise ValueError(f"mode {self.mode} needs {need}")
        if self.mode == "xid" and self.code not in XID_CODES:
            raise ValueError(f"code must be one of {', '.join(map(str, XID_CODES))}")
        return self
