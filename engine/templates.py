"""Chat templates: the GGUF's own Jinja template, rendered in a sandbox.

A chat template comes from a downloaded file, so it is untrusted code. It runs in
jinja2's ImmutableSandboxedEnvironment (no access to Python internals such as
``__class__`` or ``__globals__``, no mutation of the messages) with three extra
bounds so that a hostile template cannot hang or exhaust the app: a cap on loop
iterations through ``range``, a cap on the size of ``*`` results, and a cap on
the rendered text, plus a deadline checked on every line the compiled template
executes (a trace function limited to template frames, so plain loops over long
strings cannot spin forever either).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Sequence

from engine.backend import EngineError
from engine.types import ChatMessage

MAX_OUTPUT_CHARS = 4_000_000
MAX_ITERATIONS = 200_000
MAX_SECONDS = 2.0

# Used when a GGUF carries no template of its own.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


class TemplateError(EngineError):
    """The chat template failed, was refused, or ran past its bounds."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0

    def spend(self, n: int = 1) -> None:
        self.iterations += n
        if self.iterations > MAX_ITERATIONS:
            raise TemplateError("the chat template loops too long")
        if time.monotonic() > self.deadline:
            raise TemplateError("the chat template takes too long to render")


def _make_environment():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedEnvironment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])
        budget: Optional[_Budget] = None

        def call_binop(self, context, operator, left, right):
            if operator == "**":
                if isinstance(right, int) and abs(right) > 64:
                    raise TemplateError("the chat template computes an oversized power")
                return left ** right
            result_len = 0
            if isinstance(left, (str, list, tuple)) and isinstance(right, int):
                result_len = len(left) * right
            elif isinstance(right, (str, list, tuple)) and isinstance(left, int):
                result_len = len(right) * left
            if result_len > MAX_OUTPUT_CHARS:
                raise TemplateError("the chat template builds an oversized value")
            return left * right

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's signature)
            if __self.budget is not None:
                __self.budget.spend()
            return super().call(__context, __obj, *args, **kwargs)

    env = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)

    def bounded_range(*args):
        for i, value in enumerate(range(*args)):
            if env.budget is not None and i % 64 == 0:
                env.budget.spend(64)
            yield value

    def raise_exception(message):
        raise TemplateError(f"the chat template refused the conversation: {message}")

    def strftime_now(fmt):
        return datetime.now().strftime(str(fmt))

    env.globals.update(range=bounded_range, raise_exception=raise_exception,
                       strftime_now=strftime_now)
    env.filters["tojson"] = _tojson
    return env


def _deadline_tracer(budget: _Budget):
    """A trace function that only follows frames of compiled templates."""
    lines = 0

    def on_line(frame, event, arg):
        nonlocal lines
        lines += 1
        if lines % 512 == 0 and time.monotonic() > budget.deadline:
            raise TemplateError("the chat template takes too long to render")
        return on_line

    def on_call(frame, event, arg):
        if frame.f_code.co_filename == "<template>":
            return on_line
        return None

    return on_call


def _tojson(value, indent=None, ensure_ascii=False, sort_keys=False, separators=None):
    import json

    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys,
                      separators=separators)


class ChatTemplate:
    """Renders a conversation into the model's prompt text."""

    def __init__(self, source: Optional[str], *, bos_token: str = "", eos_token: str = ""):
        self.is_builtin = not source
        self.source = source or LLAMA3_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        self._env = _make_environment()
        try:
            self._template = self._env.from_string(self.source)
        except TemplateError:
            raise
        except Exception as exc:  # jinja's TemplateSyntaxError and friends
            raise TemplateError(f"the chat template does not parse: {exc}") from exc

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True,
               **extra) -> str:
        from jinja2.exceptions import SecurityError

        variables = dict(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=self.bos_token, eos_token=self.eos_token,
            add_generation_prompt=add_generation_prompt, tools=None,
        )
        variables.update(extra)
        budget = self._env.budget = _Budget(deadline=time.monotonic() + MAX_SECONDS)
        parts, size = [], 0
        previous_trace = sys.gettrace()
        sys.settrace(_deadline_tracer(budget))
        try:
            for chunk in self._template.generate(**variables):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateError("the chat template produces oversized output")
                self._env.budget.spend(0)
                parts.append(chunk)
        except TemplateError:
            raise
        except SecurityError as exc:
            raise TemplateError(f"the chat template tried an unsafe operation: {exc}") from exc
        except RecursionError as exc:
            raise TemplateError("the chat template recurses too deeply") from exc
        except Exception as exc:
            raise TemplateError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.settrace(previous_trace)
            self._env.budget = None
        return "".join(parts)
