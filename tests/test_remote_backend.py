"""The remote backend against a real OpenAI-compatible server (llama_cpp.server) on 127.0.0.1."""
from __future__ import annotations

import logging

import pytest

from common.task import TaskHandle
from engine.remote_backend import RemoteBackend, RemoteError
from engine.types import ChatMessage, GenerationParams
from tests.conftest import free_port

SECRET = "sk-test-Sup3rSecretKey-0123456789"


@pytest.fixture
def remote(llama_server):
    backend = RemoteBackend(llama_server + "/v1", api_key=SECRET, n_ctx=1024)
    backend.load()
    yield backend
    backend.unload()


def test_lists_models_and_streams_a_reply(remote, caplog):
    caplog.set_level(logging.DEBUG)
    assert remote.model == "smollm2" and remote.list_models() == ["smollm2"]
    pieces = list(remote.stream_chat([ChatMessage("user", "Name three colours.")],
                                     GenerationParams(max_tokens=48, temperature=0)))
    assert len(pieces) >= 5
    assert remote.last_stats.stop_reason in ("eog", "length") and remote.last_stats.ttft_s is not None
    assert SECRET not in repr(remote) and SECRET not in str(vars(remote).get("name"))
    assert SECRET not in caplog.text


def test_cancel_stops_the_stream_and_the_server_stays_usable(remote):
    handle = TaskHandle()
    seen = []
    for piece in remote.stream_chat([ChatMessage("user", "Write a long story about a ship.")],
                                    GenerationParams(max_tokens=300, temperature=0), handle):
        seen.append(piece)
        if len(seen) == 2:
            handle.cancel()
    assert len(seen) == 2 and remote.last_stats.stop_reason == "cancelled"
    assert "".join(remote.stream_chat([ChatMessage("user", "Hi")], GenerationParams(max_tokens=8)))


def test_server_down_is_a_clear_error():
    backend = RemoteBackend(f"http://127.0.0.1:{free_port()}", api_key=SECRET)
    with pytest.raises(RemoteError, match="Cannot reach the server at http://127.0.0.1:.*Is the server running") as err:
        backend.load()
    assert SECRET not in str(err.value)


def test_tls_verification_is_always_on():
    import ssl

    backend = RemoteBackend(f"https://127.0.0.1:{free_port()}", api_key=SECRET)
    with pytest.raises(RemoteError):
        backend.load()
    ssl_context = backend._client._transport._pool._ssl_context
    assert ssl_context.verify_mode == ssl.CERT_REQUIRED and ssl_context.check_hostname
    backend.unload()
    assert SECRET not in repr(backend)
