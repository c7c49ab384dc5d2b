"""Chat templates: the GGUF's own Jinja template, rendered by the one bounded sandbox.

A chat template comes from a downloaded file, so it is untrusted code. It is rendered
by ``common.jinja_sandbox`` (the project's one renderer for outside templates: the
converter's verification uses it too), which refuses a template that breaks a time,
step, size or depth bound before it allocates. A refused template makes the engine
fall back to the built-in Llama 3 format (see ``LlamaCppBackend._setup_template``).
"""
from __future__ import annotations

from typing import Optional, Sequence

from common.jinja_sandbox import SandboxedTemplate, TemplateRefused
from engine.backend import EngineError
from engine.types import ChatMessage

# Used when a GGUF carries no template of its own, or its template is refused.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


class TemplateError(EngineError):
    """The chat template failed, was refused, or ran past its bounds."""


class ChatTemplate:
    """Renders a conversation into the model's prompt text."""

    def __init__(self, source: Optional[str], *, bos_token: str = "", eos_token: str = ""):
        self.is_builtin = not source
        self.source = source or LLAMA3_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        try:
            self._template = SandboxedTemplate(self.source)
        except TemplateRefused as exc:
            raise TemplateError(str(exc)) from None

    def render(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True,
               **extra) -> str:
        variables = dict(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            bos_token=self.bos_token, eos_token=self.eos_token,
            add_generation_prompt=add_generation_prompt, tools=None,
        )
        variables.update(extra)
        try:
            return self._template.render(**variables)
        except TemplateRefused as exc:
            raise TemplateError(str(exc)) from None
