"""Both backends are a whole engine.backend.Backend, opened by engine.open_backend alone,
and both say "the conversation does not fit" with one error type."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from common.inference_options import LoadOptions
from common.task import TaskHandle
from engine import open_backend
from engine.backend import Backend, ContextOverflowError, EngineError, MessageTooLongError
from engine.llama_backend import LlamaCppBackend
from engine.remote_backend import RemoteBackend
from engine.types import ChatMessage, GenerationParams, ReplyStats

ROOT = Path(__file__).resolve().parents[1]
ASK = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]
GREEDY = GenerationParams(max_tokens=4, temperature=0.0, seed=1)
TOO_LONG = [ChatMessage("user", "word " * 3000)]


@pytest.fixture(params=["local", "remote"])
def backend(request, smollm2_path):
    if request.param == "local":
        b = open_backend(smollm2_path, LoadOptions(n_ctx=512, gpu_layers=0, threads=1))
    else:
        b = open_backend(request.getfixturevalue("llama_server") + "/v1", LoadOptions(n_ctx=1024),
                         remote_model="smollm2")
    yield b
    b.unload()


def test_each_backend_offers_every_call_of_the_protocol(backend, tmp_path):
    assert isinstance(backend, Backend)
    assert isinstance(backend.plan_text, str) and backend.plan_text
    assert backend.count_tokens("Hello there, how are you?") > 0
    fit = backend.fit_history(ASK, GREEDY)
    assert fit.kept == (0, 1) and fit.dropped == ()
    text = "".join(backend.stream_chat(ASK, GREEDY, TaskHandle()))
    stats = backend.last_stats
    assert text and isinstance(stats, ReplyStats) and 1 <= stats.gen_tokens <= GREEDY.max_tokens
    assert backend.last_fit is not None
    assert backend.cache_exact is True               # nothing was shifted
    assert backend.rebuild_cache(TaskHandle(), chunk=16) is True
    backend.enable_snapshots(tmp_path / "snapshots", disk_budget=1 << 20)
    backend.conversation = "1"
    backend.save_snapshot()
    backend.restore_for(ASK)
    backend.reset_cache()
    again = "".join(backend.stream_chat(ASK, GREEDY))                 # from a cleared cache
    assert again == text if backend.local else again                   # greedy: the same reply
    if backend.local:
        assert backend.tokenize("Hello") and all(isinstance(t, int) for t in backend.tokenize("Hello"))
    else:
        with pytest.raises(EngineError):
            backend.tokenize("Hello")


def test_a_conversation_too_long_for_the_window_is_one_error_type(backend):
    with pytest.raises(ContextOverflowError) as caught:
        "".join(backend.stream_chat(TOO_LONG, GREEDY))
    assert "context" in str(caught.value) and "HTTP" not in str(caught.value)


@pytest.mark.parametrize("answer", [
    # OpenAI's code, as llama_cpp.server sends it for a request that is not streamed
    (400, {"error": {"message": "This model's maximum context length is 512 tokens. However, you "
                                "requested 3035 tokens.", "code": "context_length_exceeded"}}, None),
    # llama.cpp's llama-server, without a code
    (400, {"error": {"message": "the request exceeds the available context size, try increasing it"}}, None),
    # an error event in the middle of the stream
    (200, None, b'data: {"error": {"message": "x", "code": "context_length_exceeded"}}\n\n'),
])
def test_a_server_saying_the_window_is_full_gives_the_same_error_type(answer):
    import httpx

    status, body, stream = answer

    def reply(request):
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        if stream is not None:
            return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})
        return httpx.Response(status, json=body)

    b = RemoteBackend("http://127.0.0.1:9/v1", model="m")
    b._client = httpx.Client(base_url=b.base_url, transport=httpx.MockTransport(reply))
    with pytest.raises(ContextOverflowError) as caught:
        "".join(b.stream_chat(ASK, GREEDY))
    assert str(caught.value) == ContextOverflowError.DEFAULT
    assert not isinstance(caught.value, MessageTooLongError)


def test_open_backend_applies_the_load_options(smollm2_path):
    b = open_backend(smollm2_path, LoadOptions(n_ctx=768, gpu_layers=0, threads=1))
    try:
        assert type(b) is LlamaCppBackend and b.local
        assert (b.n_ctx, b.gpu_layers, b.n_threads) == (768, 0, 1)
    finally:
        b.unload()


def test_open_backend_on_a_server_address_talks_to_the_server(llama_server):
    b = open_backend(llama_server + "/v1", LoadOptions(n_ctx=1024), api_key="k", remote_model="smollm2")
    try:
        assert type(b) is RemoteBackend and not b.local and (b.name, b.n_ctx) == ("smollm2", 1024)
    finally:
        b.unload()


def test_a_damaged_gguf_is_refused_before_llama_cpp_reads_it(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2 ** 60).to_bytes(8, "little") + bytes(16))
    with pytest.raises(EngineError, match="bad.gguf was refused"):
        open_backend(bad, LoadOptions(n_ctx=256, threads=1))


def test_the_window_imports_nothing_from_llama_cpp_and_reads_no_error_text():
    for path in (ROOT / "app").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "llama_cpp" for n in names), f"{path} imports llama_cpp"
        assert "exceed context window" not in source and "inspect.signature" not in source, path
