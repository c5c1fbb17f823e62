"""Where load may go: loopback, or a host the caller named explicitly."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from reliability.errors import InputError


def check_target(url: str, allowed_hosts: Iterable[str] = (), allow_any: bool = False) -> str:
    """The URL unchanged when load may be sent to it; InputError otherwise.

    Allowed: an http(s) URL whose host is in 127.0.0.0/8 (or `localhost`/`::1`) or is one of
    `allowed_hosts` (e.g. an address inside a network namespace the caller created).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("load.target_url", f"not an http(s) URL: {url!r}")
    host = parts.hostname
    if allow_any or host in set(allowed_hosts) or host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise InputError(
        "load.target_url", f"refusing to send load to {host}: not loopback and not an allowed host"
    )
