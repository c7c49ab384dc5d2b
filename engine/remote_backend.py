"""A remote, OpenAI-compatible server (vLLM, llama.cpp's llama-server, Ollama, ...).

Streams ``/v1/chat/completions`` (server-sent events) and lists ``/v1/models``.
TLS certificates are always verified. The API key lives in one private attribute
and only ever travels in the Authorization header: it is not logged, not in
``repr`` and not in any error message.

Whatever the server answers becomes one ``RemoteError`` sentence: an HTML page, JSON
that is malformed or of the wrong shape, a redirect (never followed: it could carry
the key elsewhere), a line longer than ``MAX_LINE_BYTES`` in the event stream, a body
longer than ``MAX_BODY_BYTES``, and a certificate that does not verify (said to be a
certificate problem, not a refused connection).
"""
from __future__ import annotations

import json
import logging
import ssl
import time
from typing import Iterator, Optional, Sequence

from common.task import Cancelled, TaskHandle
from engine.backend import ContextOverflowError, EngineError
from engine.context_window import fit_history, reply_reserve
from engine.types import ChatMessage, FitResult, GenerationParams, ReplyStats

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # the server's tokenizer is not ours to call; counts are estimates
MAX_LINE_BYTES = 1 << 20   # one server-sent event line; real ones are a few hundred bytes
MAX_BODY_BYTES = 8 << 20   # a /v1/models answer or an error body


class RemoteError(EngineError):
    """The server could not be reached or refused the request."""


class RemoteBackend:
    """The engine.backend.Backend calls against an OpenAI-compatible server.

    The server keeps its own cache: there is nothing to shift, rebuild or save here, so
    ``cache_exact`` is always True and the snapshot calls do nothing.
    """

    local = False

    def __init__(self, base_url: str, *, api_key: Optional[str] = None, model: Optional[str] = None,
                 n_ctx: int = 0, timeout_s: float = 60.0):
        base = base_url.rstrip("/")
        self.base_url = base[:-3] if base.endswith("/v1") else base
        self.__api_key = api_key or None
        self.model = model
        self.name = model or self.base_url
        self.n_ctx = n_ctx
        self.gpu_layers = 0
        self.plan_text = f"remote server at {self.base_url}"
        self.timeout_s = timeout_s
        self.last_stats: Optional[ReplyStats] = None
        self.last_fit: Optional[FitResult] = None
        self.conversation: Optional[str] = None
        self.snapshots = None
        self._client = None

    def __repr__(self) -> str:
        return f"RemoteBackend(base_url={self.base_url!r}, model={self.model!r}, api_key={'set' if self.__api_key else 'none'})"

    # --- lifecycle ----------------------------------------------------------
    def load(self, handle: Optional[TaskHandle] = None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.__api_key}"} if self.__api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, verify=True,
                                    timeout=httpx.Timeout(self.timeout_s, connect=10.0))
        models = self.list_models()
        if self.model is None:
            if not models:
                raise RemoteError(f"The server at {self.base_url} lists no models.")
            self.model = self.name = models[0]

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def list_models(self) -> list[str]:
        data = self._request_json("GET", "/v1/models")
        rows = data.get("data") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str)
                                                 for m in rows):
            raise RemoteError(f"The server at {self.base_url} answered /v1/models with an unexpected "
                              "shape (not a list of models with ids); is it an OpenAI-compatible server?")
        return [m["id"] for m in rows]

    def _request_json(self, method: str, path: str, **kw):
        import httpx

        try:
            with self._require().stream(method, path, **kw) as r:
                self._raise_for_status(r)
                self._refuse_html(r, path)
                body = self._read_bounded(r, MAX_BODY_BYTES, path)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise RemoteError(f"The server at {self.base_url} answered {path} with something that is not "
                              "valid JSON; is it an OpenAI-compatible server?") from None

    def _read_bounded(self, r, limit: int, path: str) -> bytes:
        body = bytearray()
        for chunk in r.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise RemoteError(f"The server at {self.base_url} sent more than {limit >> 20} MiB for "
                                  f"{path}; stopped reading it.")
        return bytes(body)

    def _refuse_html(self, r, path: str) -> None:
        if "html" in r.headers.get("content-type", "").lower():
            raise RemoteError(f"The server at {self.base_url} answered {path} with a web page (HTML), not "
                              "the OpenAI-compatible API; check the address (it usually ends in /v1).")

    def _require(self):
        if self._client is None:
            raise EngineError("the remote backend is not connected; call load() first")
        return self._client

    def _unreachable(self, exc) -> RemoteError:
        import httpx

        tls = _tls_error(exc)
        if tls is not None:
            if isinstance(tls, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(tls):
                why = getattr(tls, "verify_message", None) or "it could not be verified"
                return RemoteError(f"The server at {self.base_url} has a certificate that cannot be trusted "
                                   f"({why}): this is a certificate problem, not a network one; give the "
                                   "server a certificate from a trusted authority or add its CA to this "
                                   "computer's trusted certificates.")
            return RemoteError(f"The secure (TLS) connection to {self.base_url} failed "
                               f"({getattr(tls, 'reason', None) or type(tls).__name__}): is the server "
                               "really speaking https on that port?")
        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"Cannot reach the server at {self.base_url}: the connection was "
                               "refused or the host is unknown. Is the server running?")
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"The server at {self.base_url} did not answer in time.")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.DecodingError)):
            return RemoteError(f"The server at {self.base_url} broke the HTTP protocol "
                               f"({type(exc).__name__}); is it an OpenAI-compatible server?")
        return RemoteError(f"The connection to {self.base_url} failed: {type(exc).__name__}.")

    def _raise_for_status(self, r) -> None:
        if r.status_code < 300:
            return
        if 300 <= r.status_code < 400:
            where = r.headers.get("location", "")[:200] or "another address"
            raise RemoteError(f"The server at {self.base_url} redirected to {where}; LlamaDesk does not "
                              "follow redirects (they could carry the API key elsewhere), so use that "
                              "address if you trust it.")
        if r.status_code in (401, 403):
            raise RemoteError(f"The server at {self.base_url} refused the API key (HTTP {r.status_code}).")
        try:
            body = self._read_bounded(r, 64 << 10, "an error")
            detail = json.loads(body).get("error", {})
            code = str(detail.get("code") or "") if isinstance(detail, dict) else ""
            detail = detail.get("message", "") if isinstance(detail, dict) else str(detail)
            detail = " ".join(str(detail).split())
        except Exception:  # noqa: BLE001 - the status alone is the message then
            detail = code = ""
        if code == "context_length_exceeded" or _says_context_exceeded(detail):
            raise ContextOverflowError()
        raise RemoteError(f"The server at {self.base_url} answered HTTP {r.status_code}"
                          + (f": {_sentence_end(detail[:300])}" if detail else "."))

    # --- the cache (the server's own) ------------------------------------------
    @property
    def cache_exact(self) -> bool:
        return True

    def reset_cache(self) -> None:
        pass

    def rebuild_cache(self, handle: Optional[TaskHandle] = None, chunk: int = 64) -> bool:
        return True

    def enable_snapshots(self, root=None, *, disk_budget: Optional[int] = None,
                         ram_budget: Optional[int] = None):
        return None

    def save_snapshot(self):
        return None

    def restore_for(self, messages: Sequence[ChatMessage]):
        return None

    # --- tokens and window --------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // CHARS_PER_TOKEN)

    def tokenize(self, text: str) -> list[int]:
        raise EngineError("a remote server does not expose its tokenizer")

    def fit_history(self, messages: Sequence[ChatMessage], params: GenerationParams) -> FitResult:
        n_ctx = self.n_ctx or 10 ** 9
        fit = fit_history(messages, n_ctx=n_ctx, reserve=reply_reserve(params.max_tokens, n_ctx),
                          count_prompt=lambda ms: sum(self.count_tokens(m.content) + 4 for m in ms))
        self.last_fit = fit
        return fit

    # --- generation ---------------------------------------------------------
    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams,
                    handle: Optional[TaskHandle] = None) -> Iterator[str]:
        import httpx

        client = self._require()
        handle = handle or TaskHandle()
        fit = self.fit_history(messages, params)
        body = {"model": self.model, "stream": True, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p,
                "messages": [{"role": m.role, "content": m.content} for m in fit.messages],
                "stream_options": {"include_usage": True}}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        stats = ReplyStats(n_ctx=self.n_ctx, dropped=fit.dropped)
        self.last_stats = stats
        start = time.perf_counter()
        first = None
        events = 0
        try:
            with client.stream("POST", "/v1/chat/completions", json=body) as r:
                self._raise_for_status(r)
                self._refuse_html(r, "/v1/chat/completions")
                for line in self._lines(r, handle):
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        events += 1
                        break
                    chunk = self._event(data)
                    events += 1
                    usage = chunk.get("usage")
                    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
                        stats.prompt_tokens = max(0, usage["prompt_tokens"])
                    for choice in chunk.get("choices") or []:
                        if not isinstance(choice, dict):
                            raise self._bad_event("a choice that is not an object")
                        delta = choice.get("delta") or {}
                        piece = delta.get("content") if isinstance(delta, dict) else None
                        if piece is not None and not isinstance(piece, str):
                            raise self._bad_event("content that is not text")
                        if piece:
                            if first is None:
                                first = time.perf_counter()
                                stats.ttft_s = first - start
                            stats.gen_tokens += 1
                            yield piece
                        reason = choice.get("finish_reason")
                        if isinstance(reason, str) and reason:
                            stats.stop_reason = {"length": "length", "stop": "eog"}.get(reason, reason)
                            if reason == "length":
                                stats.limited_by, stats.length_limit = "max_tokens", params.max_tokens
            if events == 0:
                raise RemoteError(f"The server at {self.base_url} ended the reply without sending any "
                                  "events; is it an OpenAI-compatible server?")
        except Cancelled:
            stats.stop_reason = "cancelled"
        except RemoteError:
            stats.stop_reason = "error"
            raise
        except httpx.HTTPError as exc:
            stats.stop_reason = "error"
            raise self._unreachable(exc) from None
        finally:
            if first is not None and stats.gen_tokens > 1:
                stats.gen_tps = (stats.gen_tokens - 1) / max(1e-9, time.perf_counter() - first)
            stats.ctx_used = stats.prompt_tokens + stats.gen_tokens

    def _bad_event(self, what: str) -> RemoteError:
        return RemoteError(f"The server at {self.base_url} sent a malformed event in its reply ({what}); "
                           "the reply was stopped.")

    def _event(self, data: str) -> dict:
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise self._bad_event("not valid JSON") from None
        if not isinstance(chunk, dict):
            raise self._bad_event("not a JSON object")
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else error
            message = " ".join(str(message).split())[:300]
            code = error.get("code") if isinstance(error, dict) else None
            if code == "context_length_exceeded" or _says_context_exceeded(message):
                raise ContextOverflowError()
            raise RemoteError(f"The server at {self.base_url} stopped the reply with an error: "
                              f"{_sentence_end(message)}")
        if not isinstance(chunk.get("choices") or [], list):
            raise self._bad_event("choices that are not a list")
        return chunk

    def _lines(self, r, handle: TaskHandle) -> Iterator[str]:
        """The stream's lines, each at most ``MAX_LINE_BYTES``: an endless line is refused
        once it passes the bound, without holding more than that in memory."""
        buf = bytearray()
        scanned = 0
        for chunk in r.iter_bytes():
            handle.check()
            buf += chunk
            while True:
                i = buf.find(b"\n", scanned)
                if i < 0:
                    scanned = len(buf)
                    break
                yield self._decode(bytes(buf[:i]))
                del buf[:i + 1]
                scanned = 0
            if len(buf) > MAX_LINE_BYTES:
                raise RemoteError(f"The server at {self.base_url} sent a line longer than "
                                  f"{MAX_LINE_BYTES >> 20} MiB in its reply; the reply was stopped.")
        if buf:
            yield self._decode(bytes(buf))

    def _decode(self, raw: bytes) -> str:
        if len(raw) > MAX_LINE_BYTES:
            raise RemoteError(f"The server at {self.base_url} sent a line longer than "
                              f"{MAX_LINE_BYTES >> 20} MiB in its reply; the reply was stopped.")
        try:
            return raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise self._bad_event("text that is not UTF-8") from None


# How servers say a prompt is longer than their window when they do not send OpenAI's
# code "context_length_exceeded": llama_cpp.server ("Requested tokens (N) exceed context
# window of M") and llama.cpp's llama-server ("... exceeds the available context size").
_CONTEXT_EXCEEDED = ("exceed context window", "exceeds the available context size",
                     "maximum context length")


def _says_context_exceeded(detail: str) -> bool:
    low = detail.lower()
    return any(words in low for words in _CONTEXT_EXCEEDED)


def _sentence_end(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def _tls_error(exc) -> Optional[ssl.SSLError]:
    """The ssl error behind an httpx error, if any (httpx wraps it one or two levels down)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return exc
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, ssl.SSLError):
                return arg
        exc = exc.__cause__ or exc.__context__
    return None
