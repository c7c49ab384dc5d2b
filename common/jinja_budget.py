"""Bounds for rendering untrusted Jinja templates: the limits, the refusal, size estimates
of values, and the per-render budget that counts steps, time and bytes (used by
``common.jinja_sandbox``)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from common.errors import UserError

MiB = 1024 * 1024


class TemplateRefused(UserError):
    """The template was refused: it does not parse, breaks a bound, or fails."""


@dataclass(frozen=True)
class TemplateLimits:
    seconds: float = 2.0                 # wall time of one render (and of compiling)
    max_steps: int = 2_000_000           # hook calls and loop iterations in one render
    value_bytes: int = 16 * MiB          # one value (string, list, printed container)
    total_bytes: int = 128 * MiB         # all values made in one render, added up
    input_factor: int = 4                # each limit grows by this many times the input's size
    max_range: int = 100_000             # items in one range()
    max_int_bits: int = 65_536           # an integer result (about 19,700 digits)
    max_width: int = 100_000             # a format width/precision, padding width, indent
    max_call_depth: int = 48             # nested macro/caller/loop() calls
    max_source_chars: int = 256 * 1024   # the template's own text
    max_json_indent: int = 32


DEFAULT_LIMITS = TemplateLimits()


# --- size estimates ------------------------------------------------------------------
def _str_bytes(s) -> int:
    """Bytes a str (or bytes) occupies at most: 1 per character if ASCII, else 4."""
    if isinstance(s, (bytes, bytearray)):
        return len(s)
    return len(s) if s.isascii() else 4 * len(s)


def printed_bytes(value: Any, cap: int, budget: "Optional[_Budget]" = None) -> int:
    """An upper bound of the bytes ``str(value)`` makes, or ``cap + 1`` once it passes ``cap``.

    Counts characters (a string inside a container is repr'd: up to 4 per ASCII
    character, ``\\x00``, and 10 per other one, ``\\U0001f600``), then 4 bytes per
    character if any non-ASCII text is inside, else 1. Walks containers, stopping as
    soon as the count passes ``cap``; a container seen twice (``[x] * 1000`` holds one
    ``x`` a thousand times) is measured once. So the cost of the estimate is bounded
    too, and the walk also watches the deadline.
    """
    state = {"visits": 0, "memo": {}, "wide": False}
    chars = _printed(value, True, cap, budget, state, 0)
    return min(chars * (4 if state["wide"] else 1), cap + 1)


_MAX_PRINT_DEPTH = 200
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _printed(item: Any, top: bool, cap: int, budget, state: dict, depth: int) -> int:
    """Characters of ``str(item)`` (``repr`` unless ``top``), at most a little over ``cap``."""
    if isinstance(item, str):
        if not item.isascii():
            state["wide"] = True
            return len(item) if top else 10 * len(item) + 2
        return len(item) if top else 4 * len(item) + 2
    if isinstance(item, (bytes, bytearray)):
        return 4 * len(item) + 14
    if isinstance(item, bool) or item is None:
        return 5
    if isinstance(item, int):
        return item.bit_length() // 3 + 2
    if isinstance(item, float):
        return 24
    memo = state["memo"]
    key = id(item)
    if key in memo:
        return memo[key]
    if depth > _MAX_PRINT_DEPTH:
        if budget is not None:
            raise TemplateRefused(f"the chat template nests values more than {_MAX_PRINT_DEPTH} deep")
        return cap + 1
    state["visits"] += 1
    if budget is not None and (state["visits"] & 1023) == 0:
        budget.check_time()
    if isinstance(item, dict):
        total = 2
        for k, v in item.items():
            total += 4 + _printed(k, False, cap, budget, state, depth + 1) \
                + _printed(v, False, cap, budget, state, depth + 1)
            if total > cap:
                break
    elif isinstance(item, (list, tuple, set, frozenset) + _VIEWS):
        # "frozenset({...})", "dict_items([...])": a name around the brackets
        total = 2 if isinstance(item, (list, tuple)) else 16
        for v in item:
            total += 2 + _printed(v, False, cap, budget, state, depth + 1)
            if total > cap:
                break
    else:
        attrs = _namespace_attrs(item)
        # Undefined, loop, cycler, macro ...: a short repr
        total = 256 if attrs is None else 12 + _printed(attrs, False, cap, budget, state, depth + 1)
    total = min(total, cap + 1)
    memo[key] = total
    return total


def _namespace_attrs(item) -> Optional[dict]:
    from jinja2.utils import Namespace

    if isinstance(item, Namespace):
        return object.__getattribute__(item, "_Namespace__attrs")
    return None


def _container_bytes(value: Any) -> Optional[int]:
    """Bytes of a sequence made by ``*`` or ``+``: characters for strings, 8 per item for lists."""
    if isinstance(value, (str, bytes)):
        return _str_bytes(value)
    if isinstance(value, (list, tuple)):
        return 8 * len(value)
    return None


# --- the per-render budget ---------------------------------------------------------------
class _Budget:
    def __init__(self, limits: TemplateLimits, input_bytes: int = 0):
        self.limits = limits
        extra = limits.input_factor * input_bytes
        self.value_bytes = limits.value_bytes + extra
        self.total_bytes = limits.total_bytes + 4 * extra
        self.deadline = time.monotonic() + limits.seconds
        self.steps = 0
        self.made = 0
        self.depth = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limits.max_steps:
            raise TemplateRefused("the chat template takes too many steps "
                                  f"(more than {self.limits.max_steps:,})")
        if (self.steps & 63) == 0 or n > 1:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRefused("the chat template takes too long to render "
                                  f"(more than {self.limits.seconds:g} s)")

    def make(self, nbytes: int, what: str) -> None:
        """Account for a value of ``nbytes`` about to be made; refuse it first if too big."""
        if nbytes > self.value_bytes:
            raise TemplateRefused(f"the chat template {what} of about {_mb(nbytes)} "
                                  f"(the limit is {_mb(self.value_bytes)})")
        self.made += nbytes
        if self.made > self.total_bytes:
            raise TemplateRefused(f"the chat template makes more than {_mb(self.total_bytes)} "
                                  "of values in one rendering")
        self.step()

    def width(self, n: Any, what: str) -> None:
        if isinstance(n, int) and abs(n) > self.limits.max_width:
            raise TemplateRefused(f"the chat template asks for a {what} of {n:,} "
                                  f"(the limit is {self.limits.max_width:,})")


def _mb(n: int) -> str:
    return f"{n / MiB:,.1f} MB" if n >= MiB else f"{n:,} bytes"


_NO_BUDGET = _Budget(DEFAULT_LIMITS)  # never used for accounting: replaced before any work
