"""What both dialects share: API errors, bounded JSON bodies, typed fields, messages.

Every problem with a request becomes an ``ApiError`` (a status and one sentence);
each dialect writes it in its own shape. Nothing a client sends can reach the
engine unchecked: the body is size-bounded, every field is type-checked, and
numbers are range-checked.
"""
from __future__ import annotations

import json
import math
from typing import Any, Optional

from engine.types import ChatMessage

MAX_BODY_BYTES = 4 << 20          # 4 MiB: far more than any chat a window can hold
MAX_MESSAGES = 10_000
MAX_STOP = 4                      # OpenAI's own limit


class ApiError(Exception):
    """A request the server refuses: HTTP status, message, OpenAI's type/param/code."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}


def bad(message: str, param: Optional[str] = None, code: Optional[str] = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


async def read_json(request) -> dict:
    """The request's JSON object, refusing bodies over MAX_BODY_BYTES (413) and bad JSON (400)."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise bad("The Content-Length header is not a number.") from None
        if declared > MAX_BODY_BYTES:
            raise _too_large()
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY_BYTES:
            raise _too_large()
    if not data.strip():
        raise bad("The request body is empty; send a JSON object.")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    return body


def _too_large() -> ApiError:
    return ApiError(413, f"The request body is larger than {MAX_BODY_BYTES >> 20} MiB.",
                    code="request_too_large")


_KIND_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number",
               list: "an array", dict: "an object"}


def field(body: dict, name: str, kinds, default: Any = None, *, lo: Optional[float] = None,
          hi: Optional[float] = None, where: str = "") -> Any:
    """``body[name]`` checked against ``kinds`` (and bounds for numbers), or ``default`` when absent/null."""
    value = body.get(name)
    param = f"{where}{name}"
    if value is None:
        return default
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = False
    for kind in kinds:
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if ok:
            break
    if not ok:
        names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise bad(f"'{param}' must be {names}, not {_json_type(value)}.", param=param)
    if isinstance(value, float) and not math.isfinite(value):
        raise bad(f"'{param}' must be a finite number.", param=param)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo:
            raise bad(f"'{param}' must be at least {lo:g}; it is {value}.", param=param)
        if hi is not None and value > hi:
            raise bad(f"'{param}' must be at most {hi:g}; it is {value}.", param=param)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def stop_list(value: Any, param: str = "stop") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        if len(value) > MAX_STOP:
            raise bad(f"'{param}' may hold at most {MAX_STOP} strings.", param=param)
        return tuple(s for s in value if s)
    raise bad(f"'{param}' must be a string or an array of strings.", param=param)


def text_content(value: Any, param: str) -> str:
    """A message's content: a string, or a list of text parts joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        out = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                out.append(part)
                continue
            if not isinstance(part, dict):
                raise bad(f"'{param}[{i}]' must be an object with type 'text'.", param=param)
            kind = part.get("type")
            if kind not in ("text", "input_text"):
                raise bad(f"'{param}[{i}]' is of type {kind!r}; this server takes text parts only.",
                          param=param)
            text = part.get("text")
            if not isinstance(text, str):
                raise bad(f"'{param}[{i}].text' must be a string.", param=param)
            out.append(text)
        return "\n".join(out)
    raise bad(f"'{param}' must be a string or an array of text parts, not {_json_type(value)}.", param=param)


ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
         "tool": "tool", "function": "tool"}


def chat_messages(value: Any, *, tools_in_template: bool) -> list[ChatMessage]:
    """OpenAI/Ollama ``messages`` as the engine's ChatMessages (tool turns folded in as text
    when the model's template has no place for them)."""
    if not isinstance(value, list):
        raise bad("'messages' must be an array of message objects.", param="messages")
    if not value:
        raise bad("'messages' must hold at least one message.", param="messages")
    if len(value) > MAX_MESSAGES:
        raise bad(f"'messages' may hold at most {MAX_MESSAGES} messages.", param="messages")
    out: list[ChatMessage] = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(f"'{where}' must be an object with 'role' and 'content'.", param=where)
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad(f"'{where}.role' must be one of system, user, assistant, tool; it is {role!r}.",
                      param=f"{where}.role")
        text = text_content(m.get("content"), f"{where}.content")
        role = ROLES[role]
        calls = m.get("tool_calls")
        if role == "assistant" and calls:
            if not isinstance(calls, list):
                raise bad(f"'{where}.tool_calls' must be an array.", param=f"{where}.tool_calls")
            text = (text + "\n" if text else "") + "\n".join(_call_text(c) for c in calls)
        if role == "tool" and not tools_in_template:
            name = m.get("name") or m.get("tool_call_id") or "the tool"
            role, text = "user", f"Result of {name}: {text}"
        out.append(ChatMessage(role, text))
    return out


def _call_text(call: Any) -> str:
    fn = call.get("function", call) if isinstance(call, dict) else {}
    args = fn.get("arguments") if isinstance(fn, dict) else None
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            pass
    return json.dumps({"name": fn.get("name") if isinstance(fn, dict) else None, "arguments": args})
