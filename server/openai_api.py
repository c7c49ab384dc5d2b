"""OpenAI's dialect: /v1/models, /v1/chat/completions, /v1/completions.

Replies are streamed as server-sent events ending with ``data: [DONE]``, or sent
whole. A conversation longer than the window is fitted like in the window (oldest
whole turns left out): the reply says so in the ``X-LlamaDesk-Dropped-Messages``
header and in ``usage.dropped_messages``. ``"truncation": "disabled"`` (the name
OpenAI's Responses API uses) asks for OpenAI's ``context_length_exceeded`` error
instead.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Optional

from starlette.responses import JSONResponse, StreamingResponse

from engine.scheduler import GenerationRequest
from engine.types import GenerationParams
from server.bridge import Reply
from server.constraints import (parse_tool_calls, response_format_grammar, template_takes_tools,
                                tool_plan, with_tools_described)
from server.protocol import ApiError, bad, chat_messages, field, read_json, stop_list

DROPPED_HEADER = "X-LlamaDesk-Dropped-Messages"
FINISH = {"eog": "stop", "stop_string": "stop", "length": "length", "cancelled": "stop"}


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse({"error": {"message": err.message, "type": err.type, "param": err.param,
                                   "code": err.code}}, status_code=err.status, headers=err.headers)


def sampling(body: dict, state, *, max_tokens_default: Optional[int]) -> GenerationParams:
    """The request's sampling values over the user's settings (the one settings file)."""
    base = state.defaults()
    n_ctx = state.service.slot_ctx
    max_tokens = field(body, "max_completion_tokens", int, None, lo=1, hi=n_ctx)
    if max_tokens is None:
        max_tokens = field(body, "max_tokens", int, None, lo=1, hi=n_ctx)
    if max_tokens is None:
        max_tokens = max_tokens_default or n_ctx
    n = field(body, "n", int, 1)
    if n != 1:
        raise bad("'n' must be 1: this server writes one reply per request.", param="n")
    base.max_tokens = max_tokens
    base.temperature = field(body, "temperature", float, base.temperature, lo=0, hi=2)
    base.top_p = field(body, "top_p", float, base.top_p, lo=0, hi=1)
    base.seed = field(body, "seed", int, None)
    base.stop = stop_list(body.get("stop"))
    base.frequency_penalty = field(body, "frequency_penalty", float, 0.0, lo=-2, hi=2)
    base.presence_penalty = field(body, "presence_penalty", float, 0.0, lo=-2, hi=2)
    return base


def check_model(body: dict, state, *, required: bool = False) -> str:
    model = field(body, "model", str, None)
    if model is None:
        if required:
            raise bad("'model' is required.", param="model")
        return state.model_id
    if not state.serves(model):
        raise ApiError(404, f"The model {model!r} is not loaded here; this server answers with "
                       f"{state.model_id!r}.", param="model", code="model_not_found")
    return state.model_id


async def list_models(request):
    state = request.app.state.api
    now = int(time.time())
    data = [{"id": mid, "object": "model", "created": now, "owned_by": "llamadesk"}
            for mid in state.library_ids()]
    return JSONResponse({"object": "list", "data": data})


async def chat_completions(request):
    state = request.app.state.api
    body = await read_json(request)
    model = check_model(body, state)
    params = sampling(body, state, max_tokens_default=None)
    stream = field(body, "stream", bool, False)
    opts = field(body, "stream_options", dict, {}) or {}
    include_usage = bool(opts.get("include_usage")) if stream else True
    strict = field(body, "truncation", str, "auto") == "disabled"
    grammar = response_format_grammar(body.get("response_format"))
    template_source = state.template_source
    takes_tools = template_takes_tools(template_source)
    plan = tool_plan(body.get("tools"), body.get("tool_choice"))
    messages = chat_messages(body.get("messages"), tools_in_template=takes_tools)
    tvars = {}
    if plan is not None and plan.tools and body.get("tool_choice") != "none":
        if takes_tools:
            tvars["tools"] = plan.tools
        else:
            messages = with_tools_described(messages, plan)
        if plan.grammar:
            grammar = plan.grammar
    req = GenerationRequest(params=params, on_event=None, messages=messages, grammar=grammar,
                            strict=strict, template_vars=tvars)
    reply = Reply(state.service, req, http_request=request, stream=stream)
    state.count_request()
    stats = await reply.begin()
    headers = {DROPPED_HEADER: str(len(stats.dropped))}
    rid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    parse_calls = plan is not None and plan.active

    def usage() -> dict:
        s = reply.stats
        return {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.gen_tokens,
                "total_tokens": s.prompt_tokens + s.gen_tokens, "dropped_messages": len(s.dropped)}

    if not stream:
        text = await reply.text()
        message = {"role": "assistant", "content": text}
        finish = FINISH.get(reply.stats.stop_reason, "stop")
        calls = parse_tool_calls(text, plan) if parse_calls else None
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": calls}
            finish = "tool_calls"
        return JSONResponse({"id": rid, "object": "chat.completion", "created": created, "model": model,
                             "choices": [{"index": 0, "message": message, "logprobs": None,
                                          "finish_reason": finish}],
                             "usage": usage(), "system_fingerprint": state.fingerprint},
                            headers=headers)

    def chunk(delta: dict, finish=None, **extra) -> str:
        data = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": state.fingerprint,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        data.update(extra)
        return "data: " + json.dumps(data, ensure_ascii=False) + "\n\n"

    async def events():
        yield chunk({"role": "assistant", "content": ""})
        held = []
        try:
            async for piece in reply.pieces():
                if parse_calls:       # a call is known only once the reply is whole
                    held.append(piece)
                else:
                    yield chunk({"content": piece})
        except ApiError as err:
            yield "data: " + json.dumps({"error": {"message": err.message, "type": err.type,
                                                   "param": err.param, "code": err.code}}) + "\n\n"
            yield "data: [DONE]\n\n"
            return
        finish = FINISH.get(reply.stats.stop_reason, "stop")
        if parse_calls:
            text = "".join(held)
            calls = parse_tool_calls(text, plan)
            if calls:
                yield chunk({"tool_calls": [dict(c, index=i) for i, c in enumerate(calls)]})
                finish = "tool_calls"
            elif text:
                yield chunk({"content": text})
        yield chunk({}, finish)
        if include_usage:
            data = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": usage()}
            yield "data: " + json.dumps(data) + "\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={**headers, "Cache-Control": "no-cache"})


async def completions(request):
    state = request.app.state.api
    body = await read_json(request)
    model = check_model(body, state)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("'prompt' must be a string (one prompt per request).", param="prompt")
    for unsupported in ("suffix", "logprobs", "best_of"):
        if body.get(unsupported) not in (None, 1) or (unsupported == "logprobs" and body.get(unsupported)):
            raise bad(f"'{unsupported}' is not supported by this server.", param=unsupported)
    params = sampling(body, state, max_tokens_default=16)   # OpenAI's default for completions
    stream = field(body, "stream", bool, False)
    echo = field(body, "echo", bool, False)
    opts = field(body, "stream_options", dict, {}) or {}
    include_usage = bool(opts.get("include_usage")) if stream else True
    req = GenerationRequest(params=params, on_event=None, prompt=prompt,
                            grammar=response_format_grammar(body.get("response_format")))
    reply = Reply(state.service, req, http_request=request, stream=stream)
    state.count_request()
    await reply.begin()
    rid = "cmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())

    def usage() -> dict:
        s = reply.stats
        return {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.gen_tokens,
                "total_tokens": s.prompt_tokens + s.gen_tokens}

    def choice(text: str, finish=None) -> dict:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    if not stream:
        text = await reply.text()
        return JSONResponse({"id": rid, "object": "text_completion", "created": created, "model": model,
                             "choices": [choice((prompt if echo else "") + text,
                                                FINISH.get(reply.stats.stop_reason, "stop"))],
                             "usage": usage()})

    async def events():
        def ev(data: dict) -> str:
            base = {"id": rid, "object": "text_completion", "created": created, "model": model}
            base.update(data)
            return "data: " + json.dumps(base, ensure_ascii=False) + "\n\n"

        if echo:
            yield ev({"choices": [choice(prompt)]})
        try:
            async for piece in reply.pieces():
                yield ev({"choices": [choice(piece)]})
        except ApiError as err:
            yield "data: " + json.dumps({"error": {"message": err.message, "type": err.type,
                                                   "param": err.param, "code": err.code}}) + "\n\n"
            yield "data: [DONE]\n\n"
            return
        yield ev({"choices": [choice("", FINISH.get(reply.stats.stop_reason, "stop"))]})
        if include_usage:
            yield ev({"choices": [], "usage": usage()})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
