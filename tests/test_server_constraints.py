"""Tool calls and response formats without a model: parsing the reply, building grammars,
and tools reaching a chat template that takes them."""
from __future__ import annotations

import json

import pytest

from engine.templates import ChatTemplate
from engine.types import ChatMessage
from server.constraints import (parse_tool_calls, response_format_grammar, template_takes_tools, tool_plan,
                                with_tools_described)
from server.protocol import ApiError

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.mark.parametrize("reply", [
    '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}',   # Llama 3.1's own shape
    '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n```',
])
def test_a_call_in_any_common_shape_becomes_tool_calls(reply):
    calls = parse_tool_calls(reply, tool_plan(TOOLS, "auto"))
    assert len(calls) == 1 and calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}


@pytest.mark.parametrize("reply", ["It is sunny in Oslo.", '{"name": "launch_rockets", "arguments": {}}',
                                   '{"name": "get_weather"', "[1, 2]"])
def test_text_and_unknown_functions_stay_text(reply):
    assert parse_tool_calls(reply, tool_plan(TOOLS, "auto")) is None


def test_required_and_named_choices_get_a_grammar_auto_and_none_do_not():
    assert tool_plan(TOOLS, "required").grammar and tool_plan(TOOLS, "required").active
    named = tool_plan(TOOLS, {"type": "function", "function": {"name": "get_weather"}})
    assert "get_weather" in named.grammar
    assert tool_plan(TOOLS, "auto").grammar is None and tool_plan(TOOLS, "auto").active
    assert not tool_plan(TOOLS, "none").active
    with pytest.raises(ApiError):
        tool_plan(TOOLS, "sometimes")


def test_response_formats():
    assert response_format_grammar(None) is None and response_format_grammar({"type": "text"}) is None
    assert "root" in response_format_grammar({"type": "json_object"})
    g = response_format_grammar({"type": "json_schema", "json_schema": {"schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}})
    assert '"\\"a\\""' in g
    with pytest.raises(ApiError) as info:
        response_format_grammar({"type": "json_schema", "json_schema": {"schema": {"$ref": "file:///etc/passwd"}}})
    assert info.value.status == 400


def test_tools_reach_a_template_that_takes_them_else_the_system_message():
    source = ("{% if tools %}TOOLS:{% for t in tools %}{{ t.function.name }};{% endfor %}{% endif %}"
              "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}")
    assert template_takes_tools(source)
    text = ChatTemplate(source).render([ChatMessage("user", "hi")], tools=TOOLS)
    assert text.startswith("TOOLS:get_weather;") and "[user]hi" in text
    assert not template_takes_tools(ChatTemplate(None).source)
    described = with_tools_described([ChatMessage("system", "Be brief."), ChatMessage("user", "hi")],
                                     tool_plan(TOOLS, "auto"))
    assert described[0].role == "system" and described[0].content.startswith("Be brief.")
    assert '"get_weather"' in described[0].content and described[1] == ChatMessage("user", "hi")
