"""The window's side of saved conversation caches (engine.snapshots).

When a conversation is shown (or the model finishes loading with one shown), the
engine worker is asked to bring its saved KV cache back; the status bar then says
how ("Restored 7,912 tokens in 0.4 s"). Conversations deleted for good lose their
saved caches, and at start those of conversations that no longer exist go too.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from engine import snapshots


class ConversationMemory(QObject):
    open_requested = Signal(str, list, object)
    """A conversation (id as text, its messages, the next reply's GenerationParams) is
    shown: restore its cache."""
    forget_requested = Signal(list)
    """Conversations were deleted for good (ids): delete their caches."""
    clear_requested = Signal()
    """The user cleared every saved cache."""
    budget_changed = Signal(int)
    """The disk budget for saved caches changed (MB)."""
    restored = Signal(str)
    """A conversation's cache came back; the text says how, for the status bar."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        worker = window.worker
        self.open_requested.connect(worker.open_conversation)
        self.forget_requested.connect(worker.forget_conversations)
        self.clear_requested.connect(worker.clear_snapshots)
        self.budget_changed.connect(worker.set_snapshot_budget)
        worker.cache_restored.connect(self._on_worker_cache_restored)
        worker.model_loaded.connect(self._on_worker_model_loaded)
        window.session.conversation_changed.connect(self._on_session_conversation_changed)
        self._sweep()

    def _sweep(self) -> None:
        """Saved caches of conversations gone for good (deleted elsewhere, e.g. by the CLI) go."""
        store = self.window.store
        if store.read_only:
            return
        try:
            ids = [c.id for c in store.list(include_archived=True)] + [c.id for c in store.list(trash=True)]
            snapshots.keep_conversations([str(i) for i in ids])
        except Exception:     # a damaged database: its caches stay until it can be read
            pass

    def _on_session_conversation_changed(self, conv_id: int) -> None:
        self.reopen()

    def _on_worker_model_loaded(self, _info) -> None:
        self.reopen()

    def reopen(self) -> None:
        """Tell the engine which conversation is shown, with its messages."""
        session = self.window.session
        if session.conversation_id is None or not self.window.model_ready:
            return
        try:
            messages = session.engine_messages()
        except Exception:
            return
        self.open_requested.emit(str(session.conversation_id), messages, session.params)

    def _on_worker_cache_restored(self, info) -> None:
        text = info.text()
        self.window.statusBar().showMessage(text, 8000)
        self.restored.emit(text)

    def forget(self, conv_ids: list) -> None:
        self.forget_requested.emit([str(i) for i in conv_ids])

    def clear(self) -> None:
        self.clear_requested.emit()

    @staticmethod
    def disk_usage() -> int:
        return snapshots.disk_usage()
