"""The one owner of a loaded model: an object living on its own thread.

The GUI talks to it only through queued signals, except ``stop()``, which just
cancels the current task handle (thread-safe) so the generation loop ends within
one token even while the worker thread is busy.

When a reply made the engine drop old turns by shifting the cache, the worker
re-reads the shifted part exactly while it is idle, one small chunk per event-loop
turn: a request queued meanwhile runs before the next chunk and abandons the rest.

Each conversation's KV cache is kept (engine.snapshots): saved right after a reply
has been reported finished (and again once the idle rebuild made it exact), and
brought back when a conversation is opened (``open_conversation``), so its next reply
evaluates only the new message.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from common.inference_options import DEFAULT_N_CTX, LoadOptions
from common.task import TaskHandle
from engine import open_backend
from models.gguf_names import quant_from_name
from engine.types import ChatMessage, GenerationParams

log = logging.getLogger(__name__)

@dataclass
class LoadRequest:
    path: str                   # a GGUF, or a remote server's base URL
    options: LoadOptions = field(default_factory=LoadOptions)
    api_key: str = ""           # remote servers only
    model: str = ""
    snapshot_budget_mb: Optional[int] = None   # disk for saved conversation caches (None: default)


@dataclass
class ModelInfo:
    """What the model picker shows about the loaded model."""

    name: str
    path: str
    n_ctx: int
    size_bytes: int = 0
    quant: str = ""
    gpu_plan: str = ""
    remote: bool = False


@dataclass
class ContextReport:
    """How much of the context window a conversation (plus the draft) takes."""

    used: int
    n_ctx: int
    dropped: int = 0          # how many of the oldest messages no longer fit
    extra: dict = field(default_factory=dict)


class EngineWorker(QObject):
    model_loaded = Signal(object)
    """The model finished loading; the argument is a ModelInfo."""
    model_load_failed = Signal(str)
    """Loading failed; the argument is the message to show."""
    load_progressed = Signal(object)
    """A common.task.Progress report while a model loads."""
    token_received = Signal(str)
    """One piece of the reply being generated arrived."""
    reply_finished = Signal(str, object)
    """The reply ended: why (eog, length, cancelled), and its engine.types.ReplyStats."""
    reply_failed = Signal(str, object)
    """Generation failed: the message to show, and the ReplyStats so far (or None)."""
    context_counted = Signal(object)
    """A ContextReport for the conversation and draft last asked about."""
    cache_refreshed = Signal()
    """The model's memory of the conversation is exact again after a shift."""
    cache_restored = Signal(object)
    """An opened conversation's saved cache came back (an engine.snapshots.Restored)."""

    IDLE_REBUILD_CHUNK = 32     # tokens re-read per event-loop turn while idle

    def __init__(self, n_ctx: int = DEFAULT_N_CTX):
        super().__init__()
        self._n_ctx = n_ctx
        self._backend = None
        self._handle_lock = threading.Lock()
        self._handle: Optional[TaskHandle] = None
        self.info: Optional[ModelInfo] = None
        self._idle_rebuild_pending = False
        self._params: Optional[GenerationParams] = None   # the last reply's (for what fits)

    @property
    def backend(self):
        return self._backend

    @Slot(object)
    def load_model(self, request) -> None:
        if isinstance(request, str):
            request = LoadRequest(request, LoadOptions(n_ctx=self._n_ctx))
        self._idle_rebuild_pending = False
        try:
            self._unload()
            handle = TaskHandle(on_progress=self.load_progressed.emit)
            with self._handle_lock:       # stop() (closing the window) cancels a load too
                self._handle = handle
            try:
                backend = open_backend(request.path, request.options, api_key=request.api_key,
                                       remote_model=request.model, handle=handle)
            finally:
                with self._handle_lock:
                    self._handle = None
            budget = request.snapshot_budget_mb
            backend.enable_snapshots(disk_budget=None if budget is None else budget << 20)
            self._backend = backend
            self.info = _describe(backend, request)
        except Exception as exc:  # shown to the user, not raised into Qt
            self.model_load_failed.emit(f"Could not load {Path(request.path).name}: {exc}")
            return
        self.model_loaded.emit(self.info)

    @Slot(list, object)
    def generate(self, messages: list, params: GenerationParams) -> None:
        if self._backend is None:
            self.reply_failed.emit("No model is loaded yet. Pick one in the model list above the chat.")
            return
        self._idle_rebuild_pending = False
        self._params = params
        handle = TaskHandle()
        with self._handle_lock:
            self._handle = handle
        try:
            msgs = _chat_messages(messages)
            first = True
            for piece in self._backend.stream_chat(msgs, params, handle):
                if first:          # a saved cache brought back for this reply (another branch ...)
                    first = False
                    restored = getattr(self._backend, "last_restore", None)
                    if restored is not None:
                        self.cache_restored.emit(restored)
                self.token_received.emit(piece)
            stats = self._backend.last_stats
            reason = (stats.stop_reason if stats else "") or "eog"
        except Exception as exc:      # an EngineError's text is written for the user
            self.reply_failed.emit(str(exc) or type(exc).__name__, self._backend.last_stats)
            return
        finally:
            with self._handle_lock:
                self._handle = None
        self.reply_finished.emit("cancelled" if handle.cancelled else reason, stats)
        self._save_snapshot()          # after the window shows the reply done: it waits for nothing
        self._schedule_idle_rebuild()

    def _save_snapshot(self) -> None:
        backend = self._backend
        if backend is None:
            return
        try:
            backend.save_snapshot()
        except Exception:              # a cache not kept costs a re-read later, nothing else
            log.exception("could not keep the conversation's cache")

    @Slot(str, list, object)
    def open_conversation(self, tag: str, messages: list, params=None) -> None:
        """``tag``'s conversation is shown: bring its saved cache back if one fits
        (``params``: the next reply's, for what fits the window)."""
        backend = self._backend
        if backend is None:
            return
        backend.conversation = tag or None
        if not messages:
            return
        self._idle_rebuild_pending = False
        try:
            info = backend.restore_for(_chat_messages(messages), params or self._params)
        except Exception:
            log.exception("could not restore the conversation's cache")
            return
        if info is not None:
            self.cache_restored.emit(info)
        self._schedule_idle_rebuild()

    @Slot(list)
    def forget_conversations(self, tags: list) -> None:
        """These conversations were deleted for good: so are their saved caches."""
        from engine import snapshots

        store = self._backend.snapshots if self._backend is not None else None
        (store.forget if store is not None else snapshots.forget_conversations)([str(t) for t in tags])

    @Slot()
    def clear_snapshots(self) -> None:
        from engine import snapshots

        store = self._backend.snapshots if self._backend is not None else None
        store.clear() if store is not None else snapshots.clear_all()

    @Slot(int)
    def set_snapshot_budget(self, megabytes: int) -> None:
        store = self._backend.snapshots if self._backend is not None else None
        if store is not None:
            store.disk_budget = megabytes << 20

    def _schedule_idle_rebuild(self) -> None:
        if self._backend is None or self._backend.cache_exact:
            return
        self._idle_rebuild_pending = True
        QTimer.singleShot(0, self._on_idle_rebuild_step)

    def _on_idle_rebuild_step(self) -> None:
        backend = self._backend
        if not self._idle_rebuild_pending or backend is None:
            return
        # One chunk, then back to the event loop: the chunk's progress report cancels the step.
        step = TaskHandle(on_progress=lambda _report: step.cancel())
        with self._handle_lock:
            self._handle = step
        try:
            exact = backend.rebuild_cache(step, chunk=self.IDLE_REBUILD_CHUNK)
        except Exception:           # the cache stays usable; the next request re-reads what it needs
            self._idle_rebuild_pending = False
            return
        finally:
            with self._handle_lock:
                self._handle = None
        if exact:
            self._idle_rebuild_pending = False
            self.cache_refreshed.emit()
            self._save_snapshot()
        else:
            QTimer.singleShot(0, self._on_idle_rebuild_step)

    @Slot(list, str, int)
    def count_context(self, messages: list, draft: str, reserve: int) -> None:
        """Measure the conversation plus the draft against the window (engine's fitter)."""
        backend = self._backend
        if backend is None:
            return
        msgs = list(messages) + ([ChatMessage("user", draft)] if draft.strip() else [])
        n_ctx = backend.n_ctx or self._n_ctx
        try:
            fit = backend.fit_history(msgs, GenerationParams(max_tokens=reserve))
        except Exception as exc:  # too long even alone: show it full, say why
            self.context_counted.emit(ContextReport(n_ctx, n_ctx, 0, {"error": str(exc)}))
            return
        dropped = [i for i in fit.dropped if i < len(messages)]
        self.context_counted.emit(ContextReport(fit.prompt_tokens, n_ctx, len(dropped)))

    def stop(self) -> None:
        """Cancel the running generation; safe to call from any thread."""
        with self._handle_lock:
            if self._handle is not None:
                self._handle.cancel()

    @Slot()
    def shutdown(self) -> None:
        self._idle_rebuild_pending = False
        self._unload()

    def _unload(self) -> None:
        if self._backend is not None:
            self._backend.unload()
            self._backend = None
            self.info = None


def _chat_messages(messages: list) -> list[ChatMessage]:
    return [m if isinstance(m, ChatMessage) else ChatMessage(m["role"], m["content"]) for m in messages]


def _describe(backend, request: LoadRequest) -> ModelInfo:
    n_ctx = backend.n_ctx or request.options.n_ctx
    if not backend.local:
        from urllib.parse import urlsplit

        return ModelInfo(name=backend.name, path=request.path, n_ctx=n_ctx, remote=True,
                         gpu_plan=f"runs on the remote server {urlsplit(request.path).netloc}")
    path = Path(request.path)
    size = path.stat().st_size if path.is_file() else 0
    return ModelInfo(name=backend.name, path=str(path), n_ctx=n_ctx, size_bytes=size,
                     quant=quant_from_name(path.name) or "", gpu_plan=backend.plan_text)
