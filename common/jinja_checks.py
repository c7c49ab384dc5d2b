"""Size checks made before a sandboxed template's operator, method call or filter runs:
each estimates the value about to be made and charges it to the render's budget
(used by ``common.jinja_sandbox``)."""
from __future__ import annotations

import json
from typing import Callable

from common.jinja_budget import TemplateRefused, _Budget, _container_bytes, _str_bytes, printed_bytes

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

