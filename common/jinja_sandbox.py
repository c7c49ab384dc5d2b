"""The one renderer for Jinja templates that come from outside (a GGUF's or a checkpoint's chat template).

A chat template is untrusted code from a downloaded file. It runs in jinja2's
``ImmutableSandboxedEnvironment`` (no Python internals, no mutation of the inputs),
and on top of that within bounds that hold *before* anything big is allocated and
at every step, not only between template lines:

- time: a deadline and a step count, checked in every hook the template goes
  through: each call, attribute or item lookup, operator, ``~`` join, filter,
  printed value, and each iteration of every ``for`` loop (the loop's iterable is
  wrapped when the template is compiled). Every single step is itself bounded in
  size (below), so no step can run for long between two checks;
- memory: the size of each value a step would make is estimated from its inputs
  and refused when it is too big (string and list ``*``, ``+``, ``~``, ``**`` and
  ``*`` on integers, ``%`` and ``str.format`` widths, ``center``/``ljust``/
  ``rjust``/``zfill``/``expandtabs``, ``join``, ``replace``, ``indent``,
  ``wordwrap``, ``tojson(indent=...)``, ``lipsum``, ``range``); the sizes of all
  values made in one render also count against a total, so a loop cannot pile up
  many values that are each within bounds;
- depth: calls (macros, ``caller``, recursive loops) nest at most a few dozen deep.

A template that breaks a bound is refused with ``TemplateRefused`` and a reason.
Limits grow with the size of the input (a long conversation is allowed a long prompt).
"""
from __future__ import annotations

import json
import string
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

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


# --- the environment -----------------------------------------------------------------------
_FORMAT_NUMBERS = None


def _numbers_in(spec: str) -> list[int]:
    import re

    global _FORMAT_NUMBERS
    if _FORMAT_NUMBERS is None:
        _FORMAT_NUMBERS = re.compile(r"\d+")
    return [int(m) for m in _FORMAT_NUMBERS.findall(spec[:200])] if spec else []


def _percent_specs(fmt: str) -> list[str]:
    import re

    return re.findall(r"%(?:\([^)]*\))?([#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?)[hlL]?[a-zA-Z%]", fmt)


def _make_environment(limits: TemplateLimits):
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.runtime import LoopContext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import generate_lorem_ipsum

    local = threading.local()

    def budget() -> _Budget:
        return getattr(local, "budget", None) or _NO_BUDGET

    class BoundedCodeGenerator(CodeGenerator):
        def visit_Concat(self, node, frame):  # ``a ~ b``: joined by the environment, after a size check
            self.write("environment.bounded_str_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        code_generator_class = BoundedCodeGenerator
        intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])
        intercepted_unops = frozenset(["-", "+"])

        # lookups and calls ------------------------------------------------------
        def getattr(self, obj, attribute):
            budget().step()
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):
            budget().step()
            return super().getitem(obj, argument)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's signature)
            b = budget()
            b.step()
            if isinstance(__obj, LoopContext) and args:    # loop(children) in a recursive loop
                args = (bounded_iter(args[0]),) + args[1:]
            args = _check_method_call(b, __obj, args, kwargs)
            b.depth += 1
            try:
                if b.depth > b.limits.max_call_depth:
                    raise TemplateRefused("the chat template recurses too deeply "
                                          f"(more than {b.limits.max_call_depth} nested calls)")
                result = super().call(__context, __obj, *args, **kwargs)
            finally:
                b.depth -= 1
            if isinstance(result, (str, bytes, list, tuple)):
                b.make(_container_bytes(result), "makes a value")
            return result

        def wrap_str_format(self, value):
            wrapper = super().wrap_str_format(value)
            if wrapper is None:
                return None
            fmt = value.__self__
            is_map = value.__name__ == "format_map"

            def checked(*args, **kwargs):
                b = budget()
                size = _str_bytes(fmt)
                for _text, field, spec, _conv in string.Formatter().parse(fmt):
                    if spec and "{" in spec:
                        raise TemplateRefused("the chat template uses a nested format width")
                    for n in _numbers_in(spec or ""):
                        b.width(n, "format width")
                        size += n
                values = list(args) + list(kwargs.values())
                if is_map and args and isinstance(args[0], dict):
                    values = list(args[0].values())
                size += sum(printed_bytes(v, b.value_bytes, b) for v in values[:1000])
                b.make(size, "formats a string")
                return wrapper(*args, **kwargs)

            return checked

        # operators ------------------------------------------------------------
        def call_binop(self, context, operator, left, right):
            b = budget()
            _check_binop(b, operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call_unop(self, context, operator, arg):
            budget().step()
            return super().call_unop(context, operator, arg)

        def bounded_str_join(self, parts):
            b = budget()
            b.make(sum(printed_bytes(p, b.value_bytes, b) for p in parts), "joins a string")
            return "".join(map(str, parts))

        # output ----------------------------------------------------------------
        def bounded_concat(self, parts):
            """Join a block's output (macro, ``set`` block, ``filter`` block, caller)."""
            b = budget()
            if not isinstance(parts, list):
                parts = list(parts)
            b.make(sum(_str_bytes(p) if isinstance(p, str) else printed_bytes(p, b.value_bytes, b)
                       for p in parts), "builds a block of text")
            return "".join(parts)

        def _parse(self, source, name, filename):
            tree = super()._parse(source, name, filename)
            for loop in tree.find_all(nodes.For):
                loop.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [loop.iter],
                                       [], None, None)
            return tree

    def bounded_iter(iterable):
        b = budget()
        b.step()
        if isinstance(iterable, (str, bytes)):
            b.make(8 * len(iterable), "iterates over a string")
        for item in iterable:
            b.step()
            yield item

    def finalize(value):
        b = budget()
        if not isinstance(value, str):
            b.make(printed_bytes(value, b.value_bytes, b), "prints a value")
        else:
            b.step()
        return value

    env = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
                             finalize=finalize)
    env.concat = env.bounded_concat
    env.bounded_iter = bounded_iter

    def bounded_range(*args):
        b = budget()
        r = range(*args)
        if len(r) > b.limits.max_range:
            raise TemplateRefused(f"the chat template asks for a range of {len(r):,} numbers "
                                  f"(the limit is {b.limits.max_range:,})")
        b.step()
        return r

    def bounded_lipsum(n=5, html=True, min=20, max=100):  # noqa: A002 (jinja's names)
        b = budget()
        for v, what in ((n, "lipsum paragraph count"), (min, "lipsum length"), (max, "lipsum length")):
            if not isinstance(v, int) or v > 1000:
                raise TemplateRefused(f"the chat template asks for a {what} of {v!r} (the limit is 1,000)")
        b.make(n * max * 12, "makes placeholder text")
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    def raise_exception(message):
        raise TemplateRefused(f"the chat template refused the conversation: {str(message)[:500]}")

    def strftime_now(fmt):
        from datetime import datetime

        fmt = str(fmt)
        budget().make(16 * len(fmt), "formats a date")
        return datetime.now().strftime(fmt)

    env.globals.update(range=bounded_range, lipsum=bounded_lipsum,
                       raise_exception=raise_exception, strftime_now=strftime_now)
    env.filters["tojson"] = _tojson
    for name, fn in list(env.filters.items()):
        env.filters[name] = _bounded_filter(name, fn, budget)
    return env, local


def _check_binop(b: _Budget, operator: str, left, right) -> None:
    b.step()
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if left.bit_length() * right > b.limits.max_int_bits:
                raise TemplateRefused(f"the chat template computes an oversized power "
                                      f"(about {left.bit_length() * right:,} bits)")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > b.limits.max_int_bits:
                raise TemplateRefused("the chat template computes an oversized number")
            return
        seq, n = (left, right) if isinstance(right, int) else (right, left)
        size = _container_bytes(seq)
        if size is not None and isinstance(n, int):
            b.make(size * max(n, 0), "repeats a value")
    elif operator == "+":
        a, c = _container_bytes(left), _container_bytes(right)
        if a is not None and c is not None:
            b.make(a + c, "concatenates a value")
    elif operator == "%" and isinstance(left, str):
        _check_percent(b, left, right)


def _check_percent(b: _Budget, fmt: str, args) -> None:
    size = _str_bytes(fmt)
    for spec in _percent_specs(fmt):
        if "*" in spec:
            raise TemplateRefused("the chat template uses a computed width in a % format")
        for n in _numbers_in(spec):
            b.width(n, "format width")
            size += n
    size += printed_bytes(args, b.value_bytes, b)
    b.make(size, "formats a string")


# str and bytes methods whose result can be much bigger than their inputs
def _check_method_call(b: _Budget, obj, args: tuple, kwargs: dict) -> tuple:
    """Refuse a method call whose result would be too big; returns the arguments to call with."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, bool):
        return args
    if isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int):
            b.make(length, "makes bytes")
        return args
    if not isinstance(owner, (str, bytes)):
        return args
    size = _str_bytes(owner)
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else 0
        b.width(width, "padding width")
        b.make(max(size, width if isinstance(width, int) else 0) * (1 if owner.isascii() else 4),
               "pads a string")
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        b.width(tab, "tab size")
        if isinstance(tab, int):
            b.make(size + owner.count("\t" if isinstance(owner, str) else b"\t") * max(tab, 0),
                   "expands tabs")
    elif name == "join" and args:
        items = _materialize(b, args[0])
        args = (items,) + tuple(args[1:])
        if isinstance(items, (str, bytes)):
            count, inner = len(items), _str_bytes(items)
        else:
            count = len(items)
            inner = sum(_str_bytes(i) if isinstance(i, (str, bytes)) else 0 for i in items)
        b.make(inner + size * max(count - 1, 0), "joins a string")
    elif name == "replace":
        old = args[0] if args else None
        new = args[1] if len(args) > 1 else None
        if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)):
            count = (len(owner) + 1) if not old else owner.count(old)
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                count = min(count, args[2])
            b.make(size + count * _str_bytes(new), "replaces text")
    elif name == "translate":
        table = args[0] if args else None
        if isinstance(table, dict):
            longest = max((_str_bytes(v) for v in table.values() if isinstance(v, (str, bytes))), default=1)
            b.make(size * max(longest, 1), "translates text")
    elif name in ("split", "rsplit", "splitlines"):
        b.make(size + 64 * _pieces(owner, name, args, kwargs), "splits text")
    elif name in ("encode", "decode"):
        b.make(4 * size, "encodes text")
    return args


def _pieces(text, name: str, args: tuple, kwargs: dict) -> int:
    """At most how many pieces ``text.split``/``rsplit``/``splitlines`` makes."""
    if name == "splitlines":
        breaks = ("\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
        if isinstance(text, bytes):
            return text.count(b"\n") + text.count(b"\r") + 1
        return sum(text.count(c) for c in breaks) + 1
    sep = args[0] if args else kwargs.get("sep")
    limit = args[1] if len(args) > 1 else kwargs.get("maxsplit", -1)
    pieces = len(text) // 2 + 1 if not sep else text.count(sep) + 1
    if isinstance(limit, int) and limit >= 0:
        pieces = min(pieces, limit + 1)
    return pieces


def _materialize(b: _Budget, items):
    """A list of an iterator's items (counted), or the container itself."""
    if isinstance(items, (str, bytes, list, tuple)):
        return items
    out = []
    for item in items:
        b.step()
        out.append(item)
        if 8 * len(out) > b.value_bytes:
            raise TemplateRefused(f"the chat template makes a sequence of more than "
                                  f"{b.value_bytes // 8:,} items")
    b.make(8 * len(out), "collects items")
    return out


# --- filters ----------------------------------------------------------------------------
def _tojson(value, indent=None):
    return json.dumps(value, indent=indent, ensure_ascii=False)


def _bounded_filter(name: str, fn: Callable, budget: Callable[[], _Budget]) -> Callable:
    pass_arg = getattr(fn, "jinja_pass_arg", None)
    skip = 1 if pass_arg is not None else 0
    checker = _FILTER_CHECKS.get(name)

    def bounded(*args, **kwargs):
        b = budget()
        b.step()
        if len(args) <= skip:
            return fn(*args, **kwargs)
        value = args[skip]
        if not isinstance(value, (str, bytes, int, float, list, tuple, dict, set, frozenset)) \
                and value is not None and hasattr(value, "__next__"):
            value = _materialize(b, value)   # a generator from |map, |select ...: count its items
            args = args[:skip] + (value,) + args[skip + 1:]
        rest = args[skip + 1:]
        if isinstance(value, (str, bytes)):
            if name in _LISTING_FILTERS:
                b.make(8 * len(value) if value.isascii() else 88 * len(value), f"lists a string in |{name}")
            cap = _PYTHON_HEAVY_FILTERS.get(name)
            if cap is not None and len(value) > cap:
                raise TemplateRefused(f"the chat template passes {len(value):,} characters to |{name} "
                                      f"(the limit is {cap:,})")
        elif name in _PRINTING_FILTERS and not isinstance(value, (int, float)) and value is not None:
            # these filters print their value (str() of a list): bound that first
            b.make(printed_bytes(value, b.value_bytes, b), f"passes a big value to |{name}")
        if name in _SORTING_FILTERS and hasattr(value, "__len__"):
            n = len(value)
            b.step(max(1, n * max(1, n.bit_length()) // 8))
        if checker is not None:
            checker(b, value, rest, kwargs)
        result = fn(*args, **kwargs)
        if isinstance(result, (str, list, tuple)) and result is not value:
            b.make(_container_bytes(result), f"makes a value in |{name}")
        return result

    bounded.__name__ = getattr(fn, "__name__", name)
    if pass_arg is not None:
        bounded.jinja_pass_arg = pass_arg
    return bounded


def _arg(rest, kwargs, index, key, default):
    if len(rest) > index:
        return rest[index]
    return kwargs.get(key, default)


def _value_bytes(b: _Budget, value) -> int:
    return _str_bytes(value) if isinstance(value, str) else printed_bytes(value, b.value_bytes, b)


def _check_center(b, value, rest, kwargs):
    width = _arg(rest, kwargs, 0, "width", 80)
    b.width(width, "padding width")
    b.make(max(_value_bytes(b, value), width if isinstance(width, int) else 0) * 4, "pads a string")


def _check_format(b, value, rest, kwargs):
    _check_percent(b, str(value) if isinstance(value, str) else "", tuple(rest) or kwargs)


def _check_indent(b, value, rest, kwargs):
    width = _arg(rest, kwargs, 0, "width", 4)
    prefix = width if isinstance(width, str) else None
    if prefix is None:
        b.width(width, "indent")
    per_line = _str_bytes(prefix) if prefix is not None else (width if isinstance(width, int) else 4)
    text = value if isinstance(value, str) else ""
    b.make(_value_bytes(b, value) + (text.count("\n") + 1) * max(per_line, 0), "indents text")


def _check_wordwrap(b, value, rest, kwargs):
    width = _arg(rest, kwargs, 0, "width", 79)
    wrapstring = _arg(rest, kwargs, 2, "wrapstring", None) or "\n"
    if isinstance(width, int) and width < 1:
        raise TemplateRefused("the chat template wraps text to a width below 1")
    lines = len(value) if isinstance(value, str) else 1
    b.make(_value_bytes(b, value) + lines * _str_bytes(str(wrapstring)), "wraps text")
    b.step(max(1, lines // 64))


def _check_replace(b, value, rest, kwargs):
    old = str(_arg(rest, kwargs, 0, "old", ""))
    new = str(_arg(rest, kwargs, 1, "new", ""))
    text = value if isinstance(value, str) else str(value)
    count = (len(text) + 1) if not old else text.count(old)
    limit = _arg(rest, kwargs, 2, "count", None)
    if isinstance(limit, int) and limit >= 0:
        count = min(count, limit)
    b.make(_str_bytes(text) + count * _str_bytes(new), "replaces text")


def _check_join(b, value, rest, kwargs):
    sep = str(_arg(rest, kwargs, 0, "d", ""))
    if isinstance(value, str):
        items = len(value)
        inner = _str_bytes(value) * 4
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        items = len(value)
        inner = printed_bytes(value, b.value_bytes, b)
    else:
        return  # an iterator: each item was bounded when it was made; the separator is checked below
    b.make(inner + _str_bytes(sep) * max(items - 1, 0), "joins a string")


def _check_tojson(b, value, rest, kwargs):
    indent = _arg(rest, kwargs, 0, "indent", None)
    if indent is not None:
        if not isinstance(indent, int) or isinstance(indent, bool) or not 0 <= indent <= b.limits.max_json_indent:
            raise TemplateRefused(f"the chat template asks for a JSON indent of {indent!r} "
                                  f"(allowed: 0 to {b.limits.max_json_indent})")
    size = printed_bytes(value, b.value_bytes, b)
    b.make(size * (2 + (indent or 0)), "writes JSON")


def _check_batch(b, value, rest, kwargs):
    count = _arg(rest, kwargs, 0, "slices", _arg(rest, kwargs, 0, "linecount", 1))
    if isinstance(count, int) and count > b.limits.max_range:
        raise TemplateRefused(f"the chat template asks for {count:,} groups "
                              f"(the limit is {b.limits.max_range:,})")
    if isinstance(count, int):
        b.make(8 * max(count, 0), "groups items")


def _check_sum(b, value, rest, kwargs):
    start = _arg(rest, kwargs, 1, "start", 0)
    if isinstance(start, (list, tuple, str)):
        # sum() of lists copies the running total at each step: refuse what would grow big
        total = _container_bytes(start) or 0
        if isinstance(value, (list, tuple)):
            for item in value:
                total += _container_bytes(item) or 0
                b.make(total, "sums lists")


def _check_pprint(b, value, rest, kwargs):
    # pprint indents each nested item by its depth (up to 200 levels)
    b.make(_value_bytes(b, value) * 200, "pretty-prints a value")


def _check_urlize(b, value, rest, kwargs):
    b.make(_value_bytes(b, value) * 8, "links text")
    b.step(max(1, len(value) // 64) if isinstance(value, str) else 1)


def _check_truncate(b, value, rest, kwargs):
    end = _arg(rest, kwargs, 2, "end", "...")
    b.make(_value_bytes(b, value) + _str_bytes(str(end)), "truncates text")


def _check_urlencode(b, value, rest, kwargs):
    b.make(12 * _value_bytes(b, value), "percent-encodes text")


# filters that turn a string into a list of its characters
_LISTING_FILTERS = frozenset(["list", "sort", "unique", "batch", "slice", "groupby", "random",
                              "min", "max", "sum", "dictsort", "items", "reverse", "map",
                              "select", "reject", "selectattr", "rejectattr"])
# filters that turn their value into text
_PRINTING_FILTERS = frozenset(["capitalize", "center", "format", "indent", "replace", "title",
                               "trim", "truncate", "upper", "lower", "wordcount", "wordwrap",
                               "urlize", "striptags", "string", "escape", "e", "forceescape",
                               "xmlattr", "join", "pprint", "tojson", "urlencode", "safe"])
# filters that sort: about n log n steps
_SORTING_FILTERS = frozenset(["sort", "unique", "groupby", "dictsort", "min", "max"])
# filters written in Python whose time grows faster than their input: a cap on the input
_PYTHON_HEAVY_FILTERS = {"wordwrap": 100_000, "urlize": 200_000, "striptags": 1_000_000,
                         "pprint": 100_000}

_FILTER_CHECKS = {
    "urlencode": _check_urlencode,
    "center": _check_center, "format": _check_format, "indent": _check_indent,
    "wordwrap": _check_wordwrap, "replace": _check_replace, "join": _check_join,
    "tojson": _check_tojson, "batch": _check_batch, "slice": _check_batch, "sum": _check_sum,
    "pprint": _check_pprint, "urlize": _check_urlize, "truncate": _check_truncate,
}


# --- the renderer -------------------------------------------------------------------------
class SandboxedTemplate:
    """A compiled untrusted template; ``render(**variables)`` returns text or raises ``TemplateRefused``."""

    def __init__(self, source: str, limits: TemplateLimits = DEFAULT_LIMITS):
        if not isinstance(source, str):
            raise TemplateRefused("the chat template is not text")
        if len(source) > limits.max_source_chars:
            raise TemplateRefused(f"the chat template is {len(source):,} characters long "
                                  f"(the limit is {limits.max_source_chars:,})")
        self.source = source
        self.limits = limits
        self._env, self._local = _make_environment(limits)
        with self._budget(0):
            try:
                self._template = self._env.from_string(source)
            except TemplateRefused:
                raise
            except RecursionError:
                raise TemplateRefused("the chat template nests too deeply to read") from None
            except MemoryError:
                raise TemplateRefused("the chat template is too big to read") from None
            except Exception as exc:  # jinja's TemplateSyntaxError and friends
                raise TemplateRefused(f"the chat template does not parse: {_short(exc)}") from None

    def _budget(self, input_bytes: int):
        template = self

        class _Scope:
            def __enter__(self):
                template._local.budget = _Budget(template.limits, input_bytes)
                return template._local.budget

            def __exit__(self, *exc):
                template._local.budget = None
                return False

        return _Scope()

    def render(self, **variables) -> str:
        from jinja2.exceptions import SecurityError, TemplateError

        input_bytes = printed_bytes(variables, 1 << 40)
        with self._budget(input_bytes) as b:
            parts, size = [], 0
            try:
                for chunk in self._template.generate(**variables):
                    size += _str_bytes(chunk)
                    if size > b.value_bytes:
                        raise TemplateRefused(f"the chat template writes more than {_mb(b.value_bytes)}")
                    b.step()
                    parts.append(chunk)
            except TemplateRefused:
                raise
            except SecurityError as exc:
                raise TemplateRefused(f"the chat template tried an unsafe operation: {_short(exc)}") from None
            except RecursionError:
                raise TemplateRefused("the chat template recurses too deeply") from None
            except MemoryError:
                raise TemplateRefused("the chat template ran out of memory") from None
            except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError,
                    AttributeError) as exc:
                raise TemplateRefused(f"the chat template failed: {type(exc).__name__}: {_short(exc)}") from None
            except Exception as exc:
                raise TemplateRefused(f"the chat template failed: {type(exc).__name__}: {_short(exc)}") from None
            return "".join(parts)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"


def render_template(source: str, **variables) -> str:
    """Compile and render an untrusted template once, within the default bounds."""
    return SandboxedTemplate(source).render(**variables)
