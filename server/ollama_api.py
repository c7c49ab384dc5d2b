"""Ollama's dialect: /api/version, /api/tags, /api/show, /api/chat, /api/generate.

Streaming is newline-delimited JSON (one object per piece, the last with
``"done": true`` and the counts); ``"stream": false`` sends one object. Errors are
``{"error": "..."}`` with the status Ollama uses.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from starlette.responses import JSONResponse, StreamingResponse

from common.version import __version__
from engine.scheduler import GenerationRequest
from engine.types import ChatMessage, GenerationParams
from server.bridge import Reply
from server.constraints import (parse_tool_calls, schema_grammar, template_takes_tools, tool_plan,
                                with_tools_described)
from server.openai_api import DROPPED_HEADER
from server.protocol import ApiError, bad, chat_messages, field, read_json, stop_list

# The Ollama API version whose calls this server answers (clients compare against it).
OLLAMA_COMPAT_VERSION = "0.6.0"
DONE_REASON = {"eog": "stop", "stop_string": "stop", "length": "length", "cancelled": "stop"}


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _model(body: dict, state) -> str:
    name = field(body, "model", str, None)
    if name is None:
        name = field(body, "name", str, None)
    if not name:
        raise bad("model is required")
    if not state.serves(name):
        raise ApiError(404, f"model '{name}' not found: this server answers with '{state.model_id}'")
    return state.model_id


def _options(body: dict, state) -> GenerationParams:
    opts = field(body, "options", dict, {}) or {}
    p = state.defaults()
    n_ctx = state.service.slot_ctx
    w = "options."
    num_predict = field(opts, "num_predict", int, None, lo=-2, hi=n_ctx, where=w)
    p.max_tokens = n_ctx if num_predict is None or num_predict < 0 else max(1, num_predict)
    p.temperature = field(opts, "temperature", float, p.temperature, lo=0, hi=2, where=w)
    p.top_p = field(opts, "top_p", float, p.top_p, lo=0, hi=1, where=w)
    p.top_k = field(opts, "top_k", int, p.top_k, lo=0, hi=1000, where=w)
    p.min_p = field(opts, "min_p", float, p.min_p, lo=0, hi=1, where=w)
    p.repeat_penalty = field(opts, "repeat_penalty", float, p.repeat_penalty, lo=0, hi=10, where=w)
    p.repeat_last_n = field(opts, "repeat_last_n", int, p.repeat_last_n, lo=0, hi=n_ctx, where=w)
    p.frequency_penalty = field(opts, "frequency_penalty", float, 0.0, lo=-2, hi=2, where=w)
    p.presence_penalty = field(opts, "presence_penalty", float, 0.0, lo=-2, hi=2, where=w)
    p.seed = field(opts, "seed", int, None, where=w)
    p.stop = stop_list(opts.get("stop"), "options.stop")
    return p


def _format_grammar(body: dict):
    fmt = body.get("format")
    if fmt in (None, ""):
        return None
    if fmt == "json":
        from llama_cpp.llama_grammar import JSON_GBNF

        return JSON_GBNF
    if isinstance(fmt, dict):
        return schema_grammar(fmt, "format")
    raise bad("format must be \"json\" or a JSON schema object")


def _details(state) -> dict:
    info = state.gguf_info()
    return {"parent_model": "", "format": "gguf", "family": (info.architecture if info else "") or "",
            "families": [(info.architecture if info else "") or ""],
            "parameter_size": _params_label(info.parameters if info else 0),
            "quantization_level": (info.quant if info else "") or ""}


def _params_label(n: int) -> str:
    if not n:
        return ""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


async def version(request):
    return JSONResponse({"version": OLLAMA_COMPAT_VERSION, "llamadesk_version": __version__})


async def tags(request):
    state = request.app.state.api
    models = []
    for entry in state.library_entries():
        models.append({"name": entry["id"], "model": entry["id"], "modified_at": entry["modified_at"],
                       "size": entry["size"], "digest": entry["digest"],
                       "details": _details(state) if entry["loaded"] else
                       {"parent_model": "", "format": "gguf", "family": "", "families": [],
                        "parameter_size": "", "quantization_level": ""}})
    return JSONResponse({"models": models})


async def show(request):
    state = request.app.state.api
    body = await read_json(request)
    _model(body, state)
    info = state.gguf_info()
    arch = (info.architecture if info else None) or "llama"
    model_info = {"general.architecture": arch,
                  "general.parameter_count": info.parameters if info else 0,
                  f"{arch}.context_length": state.service.slot_ctx}
    p = state.defaults()
    parameters = "\n".join(f"{k} {v}" for k, v in (("temperature", p.temperature), ("top_p", p.top_p),
                                                    ("top_k", p.top_k), ("repeat_penalty", p.repeat_penalty)))
    return JSONResponse({"modelfile": f"FROM {state.service.model_path}\n", "parameters": parameters,
                         "template": state.template_source or "", "details": _details(state),
                         "model_info": model_info, "capabilities": ["completion"],
                         "modified_at": _now()})


def _final(model: str, reply: Reply, started: float, **extra) -> dict:
    s = reply.stats
    total = int((time.perf_counter() - started) * 1e9)
    gen_s = s.gen_tokens / s.gen_tps if s.gen_tps else 0.0
    prompt_s = (s.ttft_s or 0.0)
    out = {"model": model, "created_at": _now(), "done": True,
           "done_reason": DONE_REASON.get(s.stop_reason, "stop"), "total_duration": total,
           "load_duration": 0, "prompt_eval_count": s.prompt_tokens,
           "prompt_eval_duration": int(prompt_s * 1e9), "eval_count": s.gen_tokens,
           "eval_duration": int(gen_s * 1e9), "dropped_messages": len(s.dropped)}
    out.update(extra)
    return out


async def _respond(request, reply: Reply, model: str, stream: bool, wrap, last_extra: dict,
                   whole=None):
    """Send the reply; ``whole(text)``, when given, makes the fields from the complete text
    (a tool call is known only then), and a stream then carries it in one line."""
    started = time.perf_counter()
    stats = await reply.begin()
    headers = {DROPPED_HEADER: str(len(stats.dropped))}
    if not stream:
        text = await reply.text()
        fields = whole(text) if whole else wrap(text)
        return JSONResponse(_final(model, reply, started, **fields, **last_extra), headers=headers)

    async def lines():
        held = []
        try:
            async for piece in reply.pieces():
                if whole:
                    held.append(piece)
                    continue
                yield json.dumps({"model": model, "created_at": _now(), **wrap(piece), "done": False},
                                 ensure_ascii=False) + "\n"
        except ApiError as err:
            yield json.dumps({"error": err.message}) + "\n"
            return
        if whole:
            yield json.dumps({"model": model, "created_at": _now(), **whole("".join(held)), "done": False},
                             ensure_ascii=False) + "\n"
        yield json.dumps(_final(model, reply, started, **wrap(""), **last_extra)) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


async def chat(request):
    state = request.app.state.api
    body = await read_json(request)
    model = _model(body, state)
    stream = field(body, "stream", bool, True)
    params = _options(body, state)
    raw = body.get("messages")
    if raw is None or raw == []:    # Ollama's way to load a model: it is loaded already
        return JSONResponse({"model": model, "created_at": _now(), "done": True, "done_reason": "load",
                             "message": {"role": "assistant", "content": ""}})
    if isinstance(raw, list):
        for i, m in enumerate(raw):
            if isinstance(m, dict) and m.get("images"):
                raise bad(f"messages[{i}] has images; this server takes text only")
    plan = tool_plan(body.get("tools"), None)     # Ollama has no tool_choice: the model decides
    takes_tools = template_takes_tools(state.template_source)
    messages = chat_messages(raw, tools_in_template=takes_tools)
    tvars = {}
    if plan is not None and plan.tools:
        if takes_tools:
            tvars["tools"] = plan.tools
        else:
            messages = with_tools_described(messages, plan)
    req = GenerationRequest(params=params, on_event=None, messages=messages, grammar=_format_grammar(body),
                            template_vars=tvars)
    reply = Reply(state.service, req, http_request=request, stream=stream)
    state.count_request()

    def message(text: str) -> dict:
        return {"message": {"role": "assistant", "content": text}}

    def with_calls(text: str) -> dict:
        calls = parse_tool_calls(text, plan)
        if not calls:
            return message(text)
        return {"message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
            for c in calls]}}

    return await _respond(request, reply, model, stream, message, {},
                          whole=with_calls if plan is not None and plan.active else None)


async def generate(request):
    state = request.app.state.api
    body = await read_json(request)
    model = _model(body, state)
    stream = field(body, "stream", bool, True)
    prompt = field(body, "prompt", str, "")
    system = field(body, "system", str, None)
    raw = field(body, "raw", bool, False)
    if body.get("images"):
        raise bad("images are not supported; this server takes text only")
    if not prompt and not system:   # Ollama's way to load a model: it is loaded already
        return JSONResponse({"model": model, "created_at": _now(), "response": "", "done": True,
                             "done_reason": "load"})
    params = _options(body, state)
    grammar = _format_grammar(body)
    if raw:
        req = GenerationRequest(params=params, on_event=None, prompt=prompt, grammar=grammar)
    else:
        messages = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]
        req = GenerationRequest(params=params, on_event=None, messages=messages, grammar=grammar)
    reply = Reply(state.service, req, http_request=request, stream=stream)
    state.count_request()
    return await _respond(request, reply, model, stream, lambda text: {"response": text}, {})
