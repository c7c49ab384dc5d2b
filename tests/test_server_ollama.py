"""`serve` with the official ollama client: list, show, chat and generate, streamed and not."""
from __future__ import annotations

import json

import httpx
import ollama
import pytest

SERVE_PARALLEL = 1   # the `served` fixture (conftest) with one slot


@pytest.fixture()
def client(served):
    return ollama.Client(host=served.url, timeout=120)


def test_version_list_and_show(client, served):
    assert httpx.get(served.url + "/api/version").json()["version"]
    models = client.list().models
    assert models[0].model == served.model and models[0].size > 0
    shown = client.show(served.model)
    assert shown.details.format == "gguf" and shown.details.family == "llama"
    assert "im_start" in shown.template
    assert shown.modelinfo["llama.context_length"] == 512


def test_chat_streamed_equals_whole(client, served):
    msgs = [{"role": "user", "content": "Name a fruit."}]
    opts = {"temperature": 0, "num_predict": 8}
    whole = client.chat(model=served.model, messages=msgs, options=opts, stream=False)
    assert whole.done and whole.message.role == "assistant" and whole.message.content
    assert 0 < whole.eval_count <= 8 and whole.prompt_eval_count > 0
    parts = list(client.chat(model=served.model, messages=msgs, options=opts, stream=True))
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert "".join(p.message.content for p in parts) == whole.message.content


def test_generate_and_json_format(client, served):
    r = client.generate(model=served.model, prompt="Say hi.", options={"temperature": 0, "num_predict": 6})
    assert r.done and r.response
    parts = list(client.generate(model=served.model + ":latest", prompt="Say hi.", stream=True,
                                 options={"temperature": 0, "num_predict": 6}))
    assert "".join(p.response for p in parts) == r.response
    j = client.chat(model=served.model, messages=[{"role": "user", "content": "A JSON object about a dog."}],
                    format={"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}},
                            "required": ["name"]}, options={"temperature": 0, "num_predict": 30})
    assert set(json.loads(j.message.content)) == {"name"}


def test_chat_with_tools(client, served):
    weather = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}, "required": ["city"]}}}
    msgs = [{"role": "user", "content": "What is the weather in Paris? Call the function."}]
    whole = client.chat(model=served.model, messages=msgs, tools=[weather], options={"temperature": 0, "num_predict": 40})
    parts = list(client.chat(model=served.model, messages=msgs, tools=[weather], stream=True,
                             options={"temperature": 0, "num_predict": 40}))
    streamed = [p.message for p in parts if p.message.content or p.message.tool_calls]
    assert len(streamed) == 1 and parts[-1].done      # a possible call is sent whole, in one line
    if whole.message.tool_calls:                       # the model chose to call
        call = whole.message.tool_calls[0].function
        assert call.name == "get_weather" and isinstance(call.arguments, dict)
        assert streamed[0].tool_calls[0].function.name == "get_weather"
    else:
        assert whole.message.content == streamed[0].content
    follow = client.chat(model=served.model, tools=[weather], options={"temperature": 0, "num_predict": 8},
                         messages=msgs + [{"role": "assistant", "content": "", "tool_calls": [
                             {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                             {"role": "tool", "content": "18 degrees, sunny"}])
    assert follow.done


def test_load_requests_answer_done(served):
    for path, body in (("/api/chat", {"model": served.model, "messages": []}),
                       ("/api/generate", {"model": served.model})):
        r = httpx.post(served.url + path, json=body, timeout=60)
        assert r.status_code == 200 and r.json()["done"] is True and r.json()["done_reason"] == "load"


def test_errors_in_ollama_shape(client, served):
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3:8b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404 and "llama3:8b" in info.value.error
    r = httpx.post(served.url + "/api/chat", content=b"{nope")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
