"""A remote, OpenAI-compatible server (vLLM, llama.cpp's llama-server, Ollama, ...).

Streams ``/v1/chat/completions`` (server-sent events) and lists ``/v1/models``.
TLS certificates are always verified. The API key lives in one private attribute
and only ever travels in the Authorization header: it is not logged, not in
``repr`` and not in any error message.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Iterator, Optional, Sequence

from common.task import Cancelled, TaskHandle
from engine.backend import EngineError
from engine.context_window import fit_history, reply_reserve
from engine.types import ChatMessage, FitResult, GenerationParams, ReplyStats

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # the server's tokenizer is not ours to call; counts are estimates


class RemoteError(EngineError):
    """The server could not be reached or refused the request."""


class RemoteBackend:
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
        return [m.get("id", "") for m in data.get("data", [])]

    def _request_json(self, method: str, path: str, **kw) -> dict:
        import httpx

        try:
            r = self._require().request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        self._raise_for_status(r)
        return r.json()

    def _require(self):
        if self._client is None:
            raise EngineError("the remote backend is not connected; call load() first")
        return self._client

    def _unreachable(self, exc) -> RemoteError:
        import httpx

        if isinstance(exc, httpx.ConnectError):
            return RemoteError(f"Cannot reach the server at {self.base_url}: the connection was "
                               "refused or the host is unknown. Is the server running?")
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"The server at {self.base_url} did not answer in time.")
        return RemoteError(f"The connection to {self.base_url} failed: {type(exc).__name__}.")

    def _raise_for_status(self, r) -> None:
        if r.status_code < 400:
            return
        if r.status_code in (401, 403):
            raise RemoteError(f"The server at {self.base_url} refused the API key (HTTP {r.status_code}).")
        try:
            r.read()
            detail = r.json().get("error", {})
            detail = detail.get("message", "") if isinstance(detail, dict) else str(detail)
        except Exception:
            detail = ""
        raise RemoteError(f"The server at {self.base_url} answered HTTP {r.status_code}"
                          + (f": {detail[:300]}" if detail else "."))

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
        try:
            with client.stream("POST", "/v1/chat/completions", json=body) as r:
                self._raise_for_status(r)
                for line in r.iter_lines():
                    handle.check()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        stats.prompt_tokens = chunk["usage"].get("prompt_tokens", 0) or 0
                    for choice in chunk.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            if first is None:
                                first = time.perf_counter()
                                stats.ttft_s = first - start
                            stats.gen_tokens += 1
                            yield piece
                        reason = choice.get("finish_reason")
                        if reason:
                            stats.stop_reason = {"length": "length", "stop": "eog"}.get(reason, reason)
        except Cancelled:
            stats.stop_reason = "cancelled"
        except httpx.HTTPError as exc:
            stats.stop_reason = "error"
            raise self._unreachable(exc) from None
        finally:
            if first is not None and stats.gen_tokens > 1:
                stats.gen_tps = (stats.gen_tokens - 1) / max(1e-9, time.perf_counter() - first)
            stats.ctx_used = stats.prompt_tokens + stats.gen_tokens
