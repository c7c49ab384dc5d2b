"""The remote backend against hostile servers on 127.0.0.1: each answer becomes one clear
sentence (a RemoteError), memory stays bounded, and the API key goes nowhere else."""
from __future__ import annotations

import itertools
import json
import shutil
import subprocess

import pytest

from engine.remote_backend import MAX_LINE_BYTES, RemoteBackend, RemoteError
from engine.types import ChatMessage, GenerationParams
from tests.fixtures.hostile_server import HostileServer, reply, stream

SECRET = "sk-test-Sup3rSecretKey-0123456789"
MODELS = json.dumps({"object": "list", "data": [{"id": "m1", "object": "model"}]}).encode()


def models_ok(h):
    reply(h, 200, MODELS)


def sse(*events) -> list[bytes]:
    return [b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events]


def delta(text):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def one_sentence(err) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith((".", "?")), text
    assert SECRET not in text and "Traceback" not in text
    return text


def load_fails(routes) -> str:
    with HostileServer(routes) as server:
        backend = RemoteBackend(server.url + "/v1", api_key=SECRET)
        with pytest.raises(RemoteError) as err:
            backend.load()
        backend.unload()
    return one_sentence(err)


def reply_fails(chat_route) -> tuple[str, list]:
    got = []
    with HostileServer({"/v1/models": models_ok, "/v1/chat/completions": chat_route}) as server:
        backend = RemoteBackend(server.url, api_key=SECRET)
        backend.load()
        with pytest.raises(RemoteError) as err:
            for piece in backend.stream_chat([ChatMessage("user", "Hi")], GenerationParams(max_tokens=8)):
                got.append(piece)
        assert backend.last_stats.stop_reason == "error"
        backend.unload()
    return one_sentence(err), got


@pytest.mark.parametrize("route, words", [
    (lambda h: reply(h, 200, b"<!doctype html><html><body>Welcome to nginx</body></html>", "text/html"),
     "answered /v1/models with a web page (HTML), not the OpenAI-compatible API"),
    (lambda h: reply(h, 200, b'{"data": [{"id": "m1"'), "with something that is not valid JSON"),
    (lambda h: reply(h, 200, b"[" * 200_000), "with something that is not valid JSON"),
    (lambda h: reply(h, 200, b"[]"), "answered /v1/models with an unexpected shape"),
    (lambda h: reply(h, 200, b'{"data": "m1"}'), "unexpected shape"),
    (lambda h: reply(h, 200, b'{"data": [1, 2]}'), "unexpected shape"),
    (lambda h: reply(h, 200, b'{"data": [{"id": 7}]}'), "unexpected shape"),
    (lambda h: reply(h, 500, b"<html>Internal Server Error</html>", "text/html"), "answered HTTP 500."),
    (lambda h: reply(h, 503, json.dumps({"error": {"message": "loading\nmodel"}}).encode()),
     "answered HTTP 503: loading model."),
    (lambda h: stream(h, itertools.repeat(b"x" * 65536), "application/json"), "sent more than 8 MiB"),
])
def test_hostile_model_lists_give_one_sentence(route, words):
    assert words in load_fails({"/v1/models": route})


def test_a_redirect_is_not_followed_and_the_key_stays_home():
    with HostileServer({"/v1/models": models_ok}) as elsewhere:
        target = elsewhere.url + "/v1/models"
        text = load_fails({"/v1/models": lambda h: reply(h, 302, b"", headers={"Location": target})})
        assert elsewhere.requests == []
    assert f"redirected to {target}; LlamaDesk does not follow redirects" in text


@pytest.mark.parametrize("events, words", [
    (sse(delta("Hel"), b'{"choices": [{"delta": {"content": "lo"'), "malformed event in its reply (not valid JSON)"),
    (sse(delta("Hel"), [1, 2]), "(not a JSON object)"),
    (sse(delta("Hel"), {"choices": "lo"}), "(choices that are not a list)"),
    (sse(delta("Hel"), {"choices": ["lo"]}), "(a choice that is not an object)"),
    (sse(delta("Hel"), delta(5)), "(content that is not text)"),
    (sse(delta("Hel"), {"error": {"message": "the GPU\nfell over"}}), "stopped the reply with an error: the GPU fell over."),
    ([b": just a comment\n\n"], "ended the reply without sending any events"),
    ([b"data: \xff\xfe\n\n"], "(text that is not UTF-8)"),
])
def test_hostile_event_streams_give_one_sentence(events, words):
    text, got = reply_fails(lambda h: stream(h, events))
    assert words in text
    assert got in ([], ["Hel"])


def test_an_endless_line_is_cut_at_the_bound():
    """The server sends one line forever; the client stops after MAX_LINE_BYTES."""
    sent = []

    def endless(h):
        def chunks():
            yield b"data: "
            for _ in itertools.count():
                sent.append(65536)
                yield b"a" * 65536
        stream(h, chunks())

    text, got = reply_fails(endless)
    assert text.endswith("sent a line longer than 1 MiB in its reply; the reply was stopped.")
    assert got == [] and MAX_LINE_BYTES == 1 << 20


def test_an_html_page_for_the_reply_gives_one_sentence():
    text, _ = reply_fails(lambda h: reply(h, 200, b"<html>login</html>", "text/html; charset=utf-8"))
    assert "answered /v1/chat/completions with a web page (HTML)" in text


def test_a_well_behaved_stream_still_works():
    events = sse(delta("Hel"), delta("lo"), {"choices": [{"delta": {}, "finish_reason": "stop"}],
                                              "usage": {"prompt_tokens": 5}}) + [b"data: [DONE]\n\n"]
    with HostileServer({"/v1/models": models_ok, "/v1/chat/completions": lambda h: stream(h, events)}) as server:
        backend = RemoteBackend(server.url, api_key=SECRET)
        backend.load()
        assert backend.model == "m1"
        assert "".join(backend.stream_chat([ChatMessage("user", "Hi")], GenerationParams(max_tokens=8))) == "Hello"
        assert backend.last_stats.stop_reason == "eog" and backend.last_stats.prompt_tokens == 5
        backend.unload()
        assert server.requests[-1][2]["Authorization"] == f"Bearer {SECRET}"


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a self-signed certificate for the TLS test")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    return str(d / "cert.pem"), str(d / "key.pem")


def test_a_self_signed_certificate_is_called_a_certificate_problem(self_signed):
    with HostileServer({"/v1/models": models_ok}, tls=self_signed) as server:
        backend = RemoteBackend(server.url, api_key=SECRET)
        with pytest.raises(RemoteError) as err:
            backend.load()
        backend.unload()
        assert all("Authorization" not in r[2] for r in server.requests)   # nothing was sent
    text = one_sentence(err)
    assert "has a certificate that cannot be trusted (self-signed certificate)" in text
    assert "this is a certificate problem, not a network one" in text and "refused" not in text


def test_https_to_a_plain_http_server_says_tls_failed():
    with HostileServer({"/v1/models": models_ok}) as server:
        backend = RemoteBackend(server.url.replace("http://", "https://"), api_key=SECRET)
        with pytest.raises(RemoteError) as err:
            backend.load()
        backend.unload()
    text = one_sentence(err)
    assert "The secure (TLS) connection to https://127.0.0.1:" in text and "really speaking https" in text
