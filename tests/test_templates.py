"""Chat templates: real Llama 3 / 3.1 templates render exactly; hostile ones are refused fast."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from common.jinja_sandbox import TemplateRefused
from engine.templates import ChatTemplate, TemplateError
from engine.types import ChatMessage
from tests.fixtures.tiny_llama import LLAMA3_CHAT_TEMPLATE

BOS = "<|begin_of_text|>"
LLAMA31 = (Path(__file__).parent / "fixtures" / "llama31_chat_template.jinja").read_text()
CONVO = [ChatMessage("system", "  Be brief. "), ChatMessage("user", "Hi there"),
         ChatMessage("assistant", "Hello!"), ChatMessage("user", "Name a colour.")]


def test_llama3_template_renders_the_documented_format():
    text = ChatTemplate(LLAMA3_CHAT_TEMPLATE, bos_token=BOS).render(CONVO)
    assert text == (
        BOS + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_builtin_format_matches_llama3_template_when_gguf_has_none():
    builtin = ChatTemplate(None, bos_token=BOS)
    assert builtin.is_builtin
    assert builtin.render(CONVO) == ChatTemplate(LLAMA3_CHAT_TEMPLATE, bos_token=BOS).render(CONVO)


def test_llama31_template_dates_system_and_generation_prompt():
    t = ChatTemplate(LLAMA31, bos_token=BOS)
    text = t.render(CONVO)
    assert text.startswith(BOS + "<|start_header_id|>system<|end_header_id|>\n\n"
                           "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                           "Be brief.<|eot_id|>")
    assert text.count(BOS) == 1
    assert text.endswith("Name a colour.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "Environment: ipython" not in text
    assert "Today Date: 01 Jan 2025" in t.render(CONVO, date_string="01 Jan 2025")
    no_system = t.render(CONVO[1:], add_generation_prompt=False)
    assert "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user" in no_system
    assert not no_system.endswith("assistant<|end_header_id|>\n\n")


def test_llama31_template_raise_exception_becomes_a_clear_error():
    t = ChatTemplate(LLAMA31, bos_token=BOS)
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "a", "arguments": {}}}] * 2}]
    with pytest.raises(TemplateRefused, match="only supports single tool-calls"):
        t._template.render(messages=msgs, bos_token=BOS, add_generation_prompt=True)


def test_strftime_now_helper():
    assert ChatTemplate("{{ strftime_now('%Y') }}").render([]) == time.strftime("%Y")


@pytest.mark.parametrize("source", [
    "{{ messages.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ raise_exception.__globals__['__builtins__'] }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{% import 'os' as os %}{{ os.system('id') }}",
    "{{ messages.append(1) }}",
])
def test_sandbox_refuses_access_to_python_internals(source):
    with pytest.raises(TemplateError):
        out = ChatTemplate(source).render(CONVO)
        # Jinja renders some unsafe lookups as undefined (empty) instead of raising:
        # either way nothing from Python's internals may come out.
        assert "class" not in out and "module" not in out
        raise TemplateError("rendered nothing unsafe")


@pytest.mark.parametrize("source", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 3000000 %}{% for c in s %}{% for d in s %}{% endfor %}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{% for i in range(99999) %}{{ 'y' * 999 }}{% endfor %}",
    "{{ 7 ** 999999999 }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
])
@pytest.mark.timeout(60)         # a hang fails here; bench/templates.py times the refusals
def test_hostile_templates_fail_fast_instead_of_hanging(source):
    with pytest.raises(TemplateError):
        ChatTemplate(source).render(CONVO)


def test_syntax_error_is_a_template_error():
    with pytest.raises(TemplateError, match="does not parse"):
        ChatTemplate("{% for %}")
