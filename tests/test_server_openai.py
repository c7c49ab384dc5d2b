"""`serve` with the official openai client: chat (streamed and not), structured output,
tools, completions, the window fitting, errors and the API key."""
from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.server_helpers import start_serve


@pytest.fixture()
def client(served):
    with openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are brief."}, {"role": "user", "content": text}]


def test_models_lists_the_loaded_model_first(client, served):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == served.model == "SmolLM2-135M-Instruct.Q4_1"


def test_chat_reply_with_usage(client, served):
    r = client.chat.completions.create(model=served.model, messages=ask("Say hello."), max_tokens=8,
                                       temperature=0)
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 8
    assert r.usage.prompt_tokens > 10
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streamed_reply_matches_the_whole_one_and_ends_with_usage(client, served):
    kwargs = dict(model=served.model, max_tokens=10, temperature=0,
                  messages=[{"role": "user", "content": [{"type": "text", "text": "Name a color."}]}])
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True},
                                                 max_completion_tokens=10,
                                                 **{k: v for k, v in kwargs.items() if k != "max_tokens"}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_stream_ends_with_done_on_the_wire(served):
    body = {"model": served.model, "messages": ask("Hi"), "max_tokens": 3, "stream": True}
    with httpx.stream("POST", served.url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    assert all(ln.startswith("data: ") for ln in lines)


def test_seed_and_stop(client, served):
    kwargs = dict(model=served.model, messages=ask("Write a short poem about rain."), max_tokens=12,
                  temperature=0.9, seed=1234)
    a = client.chat.completions.create(**kwargs).choices[0].message.content
    b = client.chat.completions.create(**kwargs).choices[0].message.content
    assert a == b
    first_word = a.split()[1] if len(a.split()) > 1 else a.split()[0]
    cut = client.chat.completions.create(stop=[first_word], **kwargs).choices[0].message.content
    assert first_word not in cut and a.startswith(cut)


def test_penalties_change_a_repetitive_reply(client, served):
    kwargs = dict(model=served.model, messages=[{"role": "user", "content": "List ten animals."}], max_tokens=24,
                  temperature=0)
    plain = client.chat.completions.create(**kwargs).choices[0].message.content
    penalized = client.chat.completions.create(frequency_penalty=2.0, presence_penalty=2.0,
                                               **kwargs).choices[0].message.content

    def repeats(text: str) -> int:
        words = text.split()
        return len(words) - len(set(words))

    assert repeats(penalized) < repeats(plain)


def test_json_schema_response_is_valid(client, served):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.chat.completions.create(
        model=served.model, messages=ask("Describe a person as JSON."), max_tokens=40, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    data = json.loads(r.choices[0].message.content)
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)


def test_json_object_response_is_json(client, served):
    r = client.chat.completions.create(model=served.model, messages=ask("Give me a JSON object about a cat."),
                                       max_tokens=60, temperature=0, response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:   # cut at max_tokens: still a JSON object's beginning
        assert r.choices[0].message.content.lstrip().startswith("{")


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                   "required": ["city"]}}}


def test_named_tool_choice_returns_a_tool_call(client, served):
    r = client.chat.completions.create(
        model=served.model, messages=ask("What is the weather in Paris?"), tools=[WEATHER], max_tokens=40,
        temperature=0, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city"}


def test_required_tool_choice_streams_a_tool_call(client, served):
    chunks = list(client.chat.completions.create(
        model=served.model, messages=ask("Weather in Rome?"), tools=[WEATHER], tool_choice="required",
        max_tokens=40, temperature=0, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    json.loads(calls[0].function.arguments)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_tool_results_in_history_are_accepted(client, served):
    msgs = ask("Weather in Oslo?") + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees, rain"}]
    r = client.chat.completions.create(model=served.model, messages=msgs, tools=[WEATHER], tool_choice="none",
                                       max_tokens=8, temperature=0)
    assert r.choices[0].message.content


def test_legacy_completions(client, served):
    r = client.completions.create(model=served.model, prompt="1, 2, 3, 4,", max_tokens=6, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    assert r.usage.completion_tokens <= 6
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=served.model, prompt="1, 2, 3, 4,", max_tokens=6, temperature=0, stream=True) if c.choices)
    assert streamed == r.choices[0].text


def _long_history(turns: int) -> list[dict]:
    msgs = [{"role": "system", "content": "You are brief."}]
    for i in range(turns):
        msgs += [{"role": "user", "content": f"Tell me fact number {i} about the ocean, please, in detail."},
                 {"role": "assistant", "content": "The ocean is deep and wide and full of life. " * 3}]
    return msgs + [{"role": "user", "content": "Thanks. One more?"}]


def test_long_conversation_is_fitted_and_says_so(client, served):
    raw = client.chat.completions.with_raw_response.create(model=served.model, messages=_long_history(12),
                                                           max_tokens=4, temperature=0)
    dropped = int(raw.headers["x-llamadesk-dropped-messages"])
    r = raw.parse()
    assert dropped > 0 and dropped % 2 == 0           # whole turns, oldest first
    assert r.usage.model_extra["dropped_messages"] == dropped
    assert r.usage.prompt_tokens + 4 <= 512


def test_strict_request_gets_context_length_exceeded(client, served):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=served.model, messages=_long_history(12), max_tokens=4,
                                       extra_body={"truncation": "disabled"})
    assert info.value.code == "context_length_exceeded"
    assert info.value.status_code == 400


def test_errors_in_openai_shape(client, served):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=ask("hi"))
    assert info.value.code == "model_not_found" and "gpt-4o" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=served.model, messages=ask("hi"), temperature="hot")
    assert info.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=served.model, messages=ask("hi"), max_tokens=10**9)


def test_api_key_is_required_when_set(smollm2_path, tmp_path):
    srv = start_serve(smollm2_path, tmp_path / "home", "--api-key", "s3cret", "--n-ctx", "256", "--parallel", "1")
    try:
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as info:
                bad.models.list()
            assert info.value.code == "invalid_api_key"
        assert httpx.get(srv.url + "/v1/models").status_code == 401
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="s3cret", max_retries=0) as good:
            assert [m.id for m in good.models.list()][0] == srv.model
    finally:
        assert srv.stop() == 0
