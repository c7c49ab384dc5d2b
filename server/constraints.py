"""Structured output: response formats and tool calls, as llama.cpp grammars and parsers.

``response_format`` ``json_object`` uses llama.cpp's JSON grammar; ``json_schema``
converts the schema with llama-cpp-python's converter (the one llama.cpp ships).
Tools are rendered by the model's own chat template when it takes ``tools``;
otherwise they are described in the system message. ``tool_choice`` "required" or
a named function is enforced by a grammar that admits only
``{"name": <a tool>, "arguments": <its parameters' schema>}``; with "auto" the
reply is parsed afterwards, and becomes ``tool_calls`` when it is such an object
(bare, in ``<tool_call>`` tags, or after Llama 3.1's ``<|python_tag|>``).
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from engine.types import ChatMessage
from server.protocol import bad

MAX_SCHEMA_DEPTH = 32


def schema_grammar(schema: Any, param: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not isinstance(schema, dict):
        raise bad(f"'{param}' must be a JSON Schema object.", param=param)
    _check_schema(schema, param, 0)
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter asserts on what it does not understand
        raise bad(f"'{param}' could not be turned into a grammar: {exc}", param=param) from None


def _check_schema(node: Any, param: str, depth: int) -> None:
    if depth > MAX_SCHEMA_DEPTH:
        raise bad(f"'{param}' is nested more than {MAX_SCHEMA_DEPTH} levels deep.", param=param)
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None and (not isinstance(ref, str) or not ref.startswith("#")):
            raise bad(f"'{param}' refers to {ref!r}: only references inside the schema (#/...) "
                      "are followed.", param=param)
        for v in node.values():
            _check_schema(v, param, depth + 1)
    elif isinstance(node, list):
        for v in node:
            _check_schema(v, param, depth + 1)


def response_format_grammar(fmt: Any) -> Optional[str]:
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise bad("'response_format' must be an object with a 'type'.", param="response_format")
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        from llama_cpp.llama_grammar import JSON_GBNF

        return JSON_GBNF
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise bad("'response_format.json_schema' must be an object with a 'schema'.",
                      param="response_format.json_schema")
        return schema_grammar(spec.get("schema") or {"type": "object"}, "response_format.json_schema.schema")
    raise bad(f"'response_format.type' must be text, json_object or json_schema; it is {kind!r}.",
              param="response_format.type")


@dataclass
class ToolPlan:
    tools: list                      # the request's tools (OpenAI shape)
    names: list
    grammar: Optional[str] = None    # set when a call is required
    active: bool = False             # parse the reply for a call


def tool_plan(tools: Any, choice: Any) -> Optional[ToolPlan]:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad("'tools' must be an array of function tools.", param="tools")
    names, schemas = [], {}
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(t, dict) or t.get("type", "function") != "function" or not isinstance(fn, dict):
            raise bad(f"'tools[{i}]' must be {{'type': 'function', 'function': {{...}}}}.", param=f"tools[{i}]")
        name = fn.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
            raise bad(f"'tools[{i}].function.name' must be 1-64 letters, digits, _ . or -.",
                      param=f"tools[{i}].function.name")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise bad(f"'tools[{i}].function.parameters' must be a JSON Schema object.",
                      param=f"tools[{i}].function.parameters")
        _check_schema(params, f"tools[{i}].function.parameters", 0)
        names.append(name)
        schemas[name] = params
    plan = ToolPlan(tools=tools, names=names)
    if not tools or choice == "none":
        return plan
    if choice in (None, "auto"):
        plan.active = True
        return plan
    if choice == "required":
        wanted = names
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        wanted = [choice["function"]["name"]]
        if wanted[0] not in schemas:
            raise bad(f"'tool_choice' names {wanted[0]!r}, which is not among the tools.", param="tool_choice")
    else:
        raise bad("'tool_choice' must be none, auto, required, or "
                  "{'type': 'function', 'function': {'name': ...}}.", param="tool_choice")
    call_schema = {"oneOf": [{"type": "object",
                              "properties": {"name": {"const": n}, "arguments": schemas[n]},
                              "required": ["name", "arguments"]} for n in wanted]}
    plan.grammar = schema_grammar(call_schema, "tools")
    plan.active = True
    return plan


def template_takes_tools(template_source: str) -> bool:
    return "tools" in (template_source or "")


def tools_system_text(plan: ToolPlan) -> str:
    listed = json.dumps([t["function"] for t in plan.tools], ensure_ascii=False)
    return ("You can call functions. To call one, reply with only a JSON object of the form "
            '{"name": <function name>, "arguments": <an object of its parameters>} and nothing else. '
            f"The functions:\n{listed}")


def with_tools_described(messages: list[ChatMessage], plan: ToolPlan) -> list[ChatMessage]:
    """The tools described in the system message (for templates with no place for them)."""
    text = tools_system_text(plan)
    if messages and messages[0].role == "system":
        return [ChatMessage("system", messages[0].content + "\n\n" + text)] + list(messages[1:])
    return [ChatMessage("system", text)] + list(messages)


_WRAPPERS = (re.compile(r"^\s*<tool_call>\s*(.*?)\s*(</tool_call>)?\s*$", re.S),
             re.compile(r"^\s*<\|python_tag\|>\s*(.*?)\s*$", re.S),
             re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S))


def parse_tool_calls(text: str, plan: ToolPlan) -> Optional[list[dict]]:
    """The reply as OpenAI ``tool_calls`` when it is a call of one of the tools, else None."""
    body = text.strip()
    for rx in _WRAPPERS:
        m = rx.match(body)
        if m:
            body = m.group(1)
            break
    if not body.startswith(("{", "[")):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    items = data if isinstance(data, list) else [data]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in plan.names:
            return None
        args = item.get("arguments", item.get("parameters", {}))
        calls.append({"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                      "function": {"name": item["name"],
                                   "arguments": args if isinstance(args, str) else json.dumps(args)}})
    return calls or None
