"""From the engine's thread to the event loop: one reply as awaitable events.

``Reply.begin()`` submits the request and waits for the fitted prompt (or the error
that refused it), so a handler can still answer with an error status; ``pieces()``
then yields the text as it comes. Leaving early (the client went away) cancels the
generation, which the scheduler sees before its next token.
"""
from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Optional

from engine.backend import EngineError
from engine.scheduler import ContextLengthExceeded, GenerationRequest, QueueFull
from engine.types import ReplyStats
from server.protocol import ApiError

log = logging.getLogger(__name__)

DISCONNECT_POLL_S = 0.25


class Reply:
    def __init__(self, service, request: GenerationRequest, *, http_request=None, stream: bool = False):
        self.service = service
        self.request = request
        self.http_request = http_request
        # A streamed body has Starlette watching for the client leaving; before it starts
        # (the prompt is read) and for a reply sent whole, this class watches itself.
        self._watch_body = not stream
        self.stats: Optional[ReplyStats] = None
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        request.on_event = self._on_event
        self.finished = False

    def _on_event(self, kind: str, value) -> None:   # the engine's thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:           # the loop closed: nobody listens any more
            self.request.handle.cancel()

    def cancel(self) -> None:
        self.request.handle.cancel()

    async def _next(self, watch: bool = True):
        if self.http_request is None or not watch:
            return await self._queue.get()
        while True:   # a non-streamed reply: notice a client that left while we wait
            try:
                return await asyncio.wait_for(self._queue.get(), DISCONNECT_POLL_S)
            except asyncio.TimeoutError:
                if await self.http_request.is_disconnected():
                    self.cancel()

    async def begin(self) -> ReplyStats:
        try:
            self.service.submit(self.request)
        except QueueFull as exc:
            raise ApiError(429, str(exc), type="server_error", code="queue_full") from None
        except EngineError as exc:     # e.g. the window has no model loaded right now
            raise ApiError(503, str(exc), type="server_error", code="model_not_loaded") from None
        try:
            kind, value = await self._next()
        except BaseException:
            self.cancel()
            raise
        if kind == "error":
            self.finished = True
            raise engine_error(value)
        self.stats = value
        return value

    async def pieces(self) -> AsyncIterator[str]:
        try:
            while True:
                kind, value = await self._next(self._watch_body)
                if kind == "text":
                    yield value
                elif kind == "done":
                    self.stats = value
                    self.finished = True
                    return
                elif kind == "error":
                    self.finished = True
                    raise engine_error(value)
        finally:
            if not self.finished:
                self.cancel()

    async def text(self) -> str:
        return "".join([p async for p in self.pieces()])


def engine_error(exc: BaseException) -> ApiError:
    """An engine failure as an API error: the user's sentence, never a traceback."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ContextLengthExceeded):
        return ApiError(400, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, QueueFull):
        return ApiError(429, str(exc), type="server_error", code="queue_full")
    if isinstance(exc, EngineError):
        return ApiError(500, str(exc), type="server_error")
    log.error("generation failed", exc_info=exc)
    return ApiError(500, "The model failed while generating this reply; the server keeps running.",
                    type="server_error")
