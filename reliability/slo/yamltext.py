"""Rule files as YAML text, fast: byte-identical to PyYAML + libyaml's emitter with our settings.

`yaml.dump` spends most of 1,000 SLOs' compile time building representer nodes in Python. Rule
files are plain trees of dicts, lists and strings, so this emits them directly, choosing each
scalar's style with libyaml's own rules (yaml_emitter_analyze_scalar / select_scalar_style in
libyaml's emitter.c, applied to block context). Anything outside the cases handled here (floats,
control or astral characters, scalars longer than the emitter's line width, odd block-scalar
hints) raises `Unsupported` and the caller falls back to `yaml.dump`, so the output never
differs; tests/slo/test_yamltext.py compares both on the golden files and on generated data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml

_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"
# Well below the dumper's width (1 << 16): the emitter folds plain and quoted scalars past it.
_MAX_INLINE = 60_000
_INDENT = 2

# Characters libyaml prints as they are (IS_PRINTABLE) and that are not line breaks
# (NEL U+0085, LS U+2028 and PS U+2029 are breaks; U+FEFF and astral planes are not printable).
_SAFE = re.compile(r"[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*")
_SAFE_OR_NL = re.compile(r"[\n\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*")
_FIRST_ALWAYS = set("#,[]{}&*!|>'\"%@`")


class Unsupported(Exception):
    """Data this emitter does not render; use yaml.dump for it."""


def _block_plain_allowed(s: str) -> bool:
    """libyaml's block_plain_allowed for a one-line string of safe characters."""
    if s[0] == " " or s[-1] == " ":
        return False
    if s.startswith(("---", "...")):
        return False
    first = s[0]
    follows_blank = len(s) == 1 or s[1] == " "
    if first in _FIRST_ALWAYS:
        return False
    if first in "?:-" and follows_blank:
        return False
    # Inside: ': ' or a final ':' and ' #' are block indicators.
    return not (": " in s or s.endswith(":") or " #" in s)


@lru_cache(maxsize=65536)
def _inline(s: str) -> str:
    """A scalar on the key's line (plain or single-quoted), as libyaml would write it."""
    if len(s) > _MAX_INLINE or not _SAFE.fullmatch(s):
        raise Unsupported(s[:40])
    implicit = _RESOLVER.resolve(yaml.ScalarNode, s, (True, False)) == _STR
    if s and implicit and _block_plain_allowed(s):
        return s
    return "'" + s.replace("'", "''") + "'"


def _literal(s: str, indent: int) -> str:
    """A multi-line string in literal style (`|` / `|-`), content lines indented by `indent`."""
    if len(s) > _MAX_INLINE or not _SAFE_OR_NL.fullmatch(s):
        raise Unsupported(s[:40])
    if s[0] in " \n" or s.endswith((" ", "\n\n")) or " \n" in s:
        raise Unsupported(s[:40])  # indentation hint, keep chomping or a double-quoted fallback
    chomp = "" if s.endswith("\n") else "-"
    pad = " " * indent
    lines = s[:-1].split("\n") if chomp == "" else s.split("\n")
    return f"|{chomp}\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in lines)


_KEYS: dict[str, str] = {}


def _key(k: Any) -> str:
    text = _KEYS.get(k) if isinstance(k, str) else None
    if text is None:
        if not isinstance(k, str) or len(k) > 100 or "\n" in k:
            raise Unsupported(repr(k)[:40])
        text = _KEYS.setdefault(k, _inline(k))
    return text


def _scalar(v: Any) -> str | None:
    """Inline rendering of a non-string scalar, None if `v` is not one."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        raise Unsupported(repr(v))
    return None


def _value(v: Any, indent: int) -> str:
    """`v` as the value of a mapping key whose key sits at column `indent - 2` (text after 'key:')."""
    if isinstance(v, str):
        if "\n" in v:
            return " " + _literal(v, indent)
        return " " + _inline(v) + "\n"
    if isinstance(v, dict):
        if not v:
            return " {}\n"
        return "\n" + _mapping(v, indent)
    if isinstance(v, list):
        if not v:
            return " []\n"
        # Sequences inside mappings are written indentless, as PyYAML does.
        return "\n" + _sequence(v, indent - _INDENT)
    text = _scalar(v)
    if text is None:
        raise Unsupported(type(v).__name__)
    return " " + text + "\n"


def _mapping(d: dict[Any, Any], indent: int, first_inline: bool = False) -> str:
    pad = " " * indent
    inner = indent + _INDENT
    out = []
    for k, v in d.items():
        lead = "" if first_inline else pad
        first_inline = False
        # The common case inline: a one-line string value.
        if type(v) is str and "\n" not in v:
            out.append(f"{lead}{_key(k)}: {_inline(v)}\n")
        else:
            out.append(f"{lead}{_key(k)}:{_value(v, inner)}")
    return "".join(out)


def _sequence(items: list[Any], indent: int) -> str:
    pad = " " * indent
    out = []
    for item in items:
        if isinstance(item, dict) and item:
            out.append(f"{pad}- " + _mapping(item, indent + _INDENT, first_inline=True))
        elif isinstance(item, str) and "\n" not in item:
            out.append(f"{pad}- {_inline(item)}\n")
        else:
            text = None if isinstance(item, dict | list | str) else _scalar(item)
            if text is None:
                raise Unsupported(type(item).__name__)
            out.append(f"{pad}- {text}\n")
    return "".join(out)


def dump(data: dict[str, Any]) -> str:
    """A non-empty dict as a block-style YAML document; Unsupported when not sure to match yaml.dump."""
    if not isinstance(data, dict) or not data:
        raise Unsupported(type(data).__name__)
    return _mapping(data, 0)
