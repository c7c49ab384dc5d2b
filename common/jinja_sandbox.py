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

import string
import threading

from common.jinja_budget import (DEFAULT_LIMITS, MiB, TemplateLimits, TemplateRefused, _Budget,  # noqa: F401
                                 _container_bytes, _mb, _NO_BUDGET, _str_bytes, printed_bytes)
from common.jinja_checks import (_bounded_filter, _check_binop, _check_method_call, _numbers_in,
                                 _tojson)


# --- the environment -----------------------------------------------------------------------
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
