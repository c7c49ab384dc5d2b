"""Malformed and hostile requests get a 4xx with a message, never a 500; the server stays
up; concurrent replies are batched; a client that leaves frees its slot; the CLI refuses
unsafe or impossible set-ups in one sentence."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from tests.server_helpers import ROOT


def chat(**over) -> dict:
    body = {"model": "SmolLM2-135M-Instruct.Q4_1", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2}
    body.update(over)
    return body


BIG = b'{"messages": "' + b"x" * (5 << 20) + b'"}'

# (name, method, path, kwargs for httpx, expected status)
MALFORMED = [
    ("not JSON", "POST", "/v1/chat/completions", {"content": b"{not json"}, 400),
    ("empty body", "POST", "/v1/chat/completions", {"content": b""}, 400),
    ("JSON array body", "POST", "/v1/chat/completions", {"json": [1, 2]}, 400),
    ("invalid UTF-8", "POST", "/v1/chat/completions", {"content": b'{"a": "\xff\xfe"}'}, 400),
    ("body over 4 MiB", "POST", "/v1/chat/completions", {"content": BIG}, 413),
    ("messages is a string", "POST", "/v1/chat/completions", {"json": chat(messages="hi")}, 400),
    ("no messages", "POST", "/v1/chat/completions", {"json": chat(messages=[])}, 400),
    ("unknown role", "POST", "/v1/chat/completions", {"json": chat(messages=[{"role": "wizard", "content": "x"}])}, 400),
    ("content is a number", "POST", "/v1/chat/completions", {"json": chat(messages=[{"role": "user", "content": 5}])}, 400),
    ("image part", "POST", "/v1/chat/completions",
     {"json": chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])}, 400),
    ("temperature is a string", "POST", "/v1/chat/completions", {"json": chat(temperature="hot")}, 400),
    ("temperature too large", "POST", "/v1/chat/completions", {"json": chat(temperature=1e308)}, 400),
    ("max_tokens is true", "POST", "/v1/chat/completions", {"json": chat(max_tokens=True)}, 400),
    ("max_tokens over the window", "POST", "/v1/chat/completions", {"json": chat(max_tokens=10**9)}, 400),
    ("max_tokens zero", "POST", "/v1/chat/completions", {"json": chat(max_tokens=0)}, 400),
    ("presence_penalty out of range", "POST", "/v1/chat/completions", {"json": chat(presence_penalty=5)}, 400),
    ("n = 3", "POST", "/v1/chat/completions", {"json": chat(n=3)}, 400),
    ("stop is a number", "POST", "/v1/chat/completions", {"json": chat(stop=7)}, 400),
    ("stream is a string", "POST", "/v1/chat/completions", {"json": chat(stream="yes")}, 400),
    ("unknown model", "POST", "/v1/chat/completions", {"json": chat(model="gpt-4o")}, 404),
    ("unknown response_format", "POST", "/v1/chat/completions", {"json": chat(response_format={"type": "xml"})}, 400),
    ("schema with a remote $ref", "POST", "/v1/chat/completions",
     {"json": chat(response_format={"type": "json_schema", "json_schema": {
         "name": "x", "schema": {"$ref": "https://example.com/schema.json"}}})}, 400),
    ("schema of an unknown type", "POST", "/v1/chat/completions",
     {"json": chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "wat"}}})}, 400),
    ("tools is an object", "POST", "/v1/chat/completions", {"json": chat(tools={"a": 1})}, 400),
    ("tool_choice names no tool", "POST", "/v1/chat/completions",
     {"json": chat(tools=[{"type": "function", "function": {"name": "f"}}],
                   tool_choice={"type": "function", "function": {"name": "g"}})}, 400),
    ("completions prompt is a number", "POST", "/v1/completions", {"json": {"prompt": 3}}, 400),
    ("wrong method", "GET", "/v1/chat/completions", {}, 405),
    ("unknown path", "GET", "/v1/engines", {}, 404),
    ("web page origin", "POST", "/v1/chat/completions",
     {"json": chat(), "headers": {"Origin": "https://evil.example"}}, 403),
    ("ollama: not JSON", "POST", "/api/chat", {"content": b"]]"}, 400),
    ("ollama: no model", "POST", "/api/chat", {"json": {"messages": []}}, 400),
    ("ollama: unknown model", "POST", "/api/generate", {"json": {"model": "llama3", "prompt": "x"}}, 404),
    ("ollama: options not an object", "POST", "/api/chat",
     {"json": {"model": "SmolLM2-135M-Instruct.Q4_1", "messages": [], "options": 3}}, 400),
    ("ollama: num_predict a string", "POST", "/api/generate",
     {"json": {"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": "x", "options": {"num_predict": "3"}}}, 400),
    ("ollama: images", "POST", "/api/generate",
     {"json": {"model": "SmolLM2-135M-Instruct.Q4_1", "prompt": "x", "images": ["aGk="]}}, 400),
    ("ollama: bad format", "POST", "/api/chat",
     {"json": {"model": "SmolLM2-135M-Instruct.Q4_1", "messages": [{"role": "user", "content": "x"}], "format": 5}}, 400),
]


@pytest.mark.parametrize("name,method,path,kwargs,status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_gets_a_4xx_with_a_message(served, name, method, path, kwargs, status):
    r = httpx.request(method, served.url + path, timeout=60, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    message = body["error"] if path.startswith("/api/") else body["error"]["message"]
    assert isinstance(message, str) and len(message) > 10 and "Traceback" not in r.text
    if not path.startswith("/api/"):
        assert set(body["error"]) == {"message", "type", "param", "code"}


def test_server_still_answers_after_the_malformed_ones(served):
    r = httpx.post(served.url + "/v1/chat/completions", json=chat(max_tokens=2, temperature=0), timeout=120)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    assert served.proc.poll() is None


def test_two_clients_stream_at_once(served):
    before = served.status()
    arrivals: dict[int, list[float]] = {0: [], 1: []}
    barrier = threading.Barrier(2)
    errors = []

    def stream(i: int):
        try:
            with openai.OpenAI(base_url=served.url + "/v1", api_key="x", max_retries=0, timeout=120) as c:
                barrier.wait()
                for chunk in c.completions.create(model=served.model, prompt=f"{i}, 1, 2, 3, 4,", max_tokens=24,
                                                  temperature=0, stream=True):
                    if chunk.choices and chunk.choices[0].text:
                        arrivals[i].append(time.monotonic())
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, b = arrivals[0], arrivals[1]
    assert len(a) > 5 and len(b) > 5
    assert a[0] < b[-1] and b[0] < a[-1]                  # the streams overlapped
    after = served.status()
    # ... because the server decoded both sequences in the same batches.
    assert after["multi_sequence_decodes"] - before["multi_sequence_decodes"] >= 5
    assert after["max_sequences_in_batch"] >= 2


def test_client_leaving_mid_stream_frees_its_slot(served):
    before = served.status()
    body = {"model": served.model, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 400, "temperature": 0, "stream": True}
    with httpx.stream("POST", served.url + "/v1/completions", json=body, timeout=120) as r:
        got = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                got += 1
                if got == 3:
                    break
    deadline = time.monotonic() + 60
    status = served.status()
    while (status["active"] or status["cancelled"] == before["cancelled"]) and time.monotonic() < deadline:
        status = served.status()
    assert status["active"] == 0 and status["cancelled"] == before["cancelled"] + 1
    assert status["tokens"] - before["tokens"] < 100                 # far from the 400 asked for
    r = httpx.post(served.url + "/v1/completions", json=dict(body, stream=False, max_tokens=2), timeout=120)
    assert r.status_code == 200


def _serve_cli(*args: str, home) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, LLAMADESK_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_other_address_needs_a_key(smollm2_path, tmp_path):
    r = _serve_cli("--model", str(smollm2_path), "--host", "0.0.0.0", "--port", "0", home=tmp_path)
    assert r.returncode == 1 and "--api-key" in r.stderr and "Traceback" not in r.stderr


def test_port_in_use_and_unknown_model_are_one_sentence(smollm2_path, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = _serve_cli("--model", str(smollm2_path), "--port", str(port), home=tmp_path)
    assert r.returncode == 1 and f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr
    r = _serve_cli("--model", "no-such-model", "--port", "0", home=tmp_path)
    assert r.returncode == 1 and "no-such-model" in r.stderr and "Traceback" not in r.stderr
