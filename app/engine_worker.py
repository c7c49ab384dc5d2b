"""The one owner of a loaded model: an object living on its own thread.

The GUI talks to it only through queued signals, except ``stop()``, which just
cancels the current task handle (thread-safe) so the generation loop ends within
one token even while the worker thread is busy.
"""
from __future__ import annotations

import threading
from typing import Optional

from PySide6.QtCore import QObject, Signal, Slot

from common.task import TaskHandle
from engine.llama_backend import LlamaCppBackend
from engine.types import ChatMessage, GenerationParams


class EngineWorker(QObject):
    model_loaded = Signal(str)
    """The model at the given path finished loading."""
    model_load_failed = Signal(str)
    """Loading failed; the argument is the message to show."""
    token_received = Signal(str)
    """One piece of the reply being generated arrived."""
    reply_finished = Signal(str)
    """The reply ended; the argument is why (eog, length, cancelled)."""
    reply_failed = Signal(str)
    """Generation failed; the argument is the message to show."""

    def __init__(self, n_ctx: int = 8192):
        super().__init__()
        self._n_ctx = n_ctx
        self._backend: Optional[LlamaCppBackend] = None
        self._handle_lock = threading.Lock()
        self._handle: Optional[TaskHandle] = None

    @Slot(str)
    def load_model(self, path: str) -> None:
        try:
            if self._backend is not None:
                self._backend.unload()
            backend = LlamaCppBackend(path, n_ctx=self._n_ctx)
            backend.load()
            self._backend = backend
        except Exception as exc:  # shown to the user, not raised into Qt
            self.model_load_failed.emit(f"Could not load {path}: {exc}")
            return
        self.model_loaded.emit(path)

    @Slot(list, object)
    def generate(self, messages: list, params: GenerationParams) -> None:
        if self._backend is None:
            self.reply_failed.emit("No model is loaded yet.")
            return
        handle = TaskHandle()
        with self._handle_lock:
            self._handle = handle
        try:
            msgs = [ChatMessage(m["role"], m["content"]) for m in messages]
            for piece in self._backend.stream_chat(msgs, params, handle):
                self.token_received.emit(piece)
            reason = self._backend.last_stats.stop_reason or "eog"
        except Exception as exc:
            self.reply_failed.emit(str(exc))
            return
        finally:
            with self._handle_lock:
                self._handle = None
        self.reply_finished.emit("cancelled" if handle.cancelled else reason)

    def stop(self) -> None:
        """Cancel the running generation; safe to call from any thread."""
        with self._handle_lock:
            if self._handle is not None:
                self._handle.cancel()

    @Slot()
    def shutdown(self) -> None:
        if self._backend is not None:
            self._backend.unload()
            self._backend = None
