"""The main window's side of the sidebar: open, find, rename, pin, archive, system prompt."""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QInputDialog

from app.threads import BackgroundOp
from chat.store import ChatStore


class SidebarActions:
    """Mixed into MainWindow (uses its store, session, sidebar, settings, _count_timer)."""

    def _on_sidebar_conversation_selected(self, conv_id: int) -> None:
        self.session.open(conv_id)

    def _on_sidebar_hit_selected(self, conv_id: int, message_id: int) -> None:
        self.store.switch_to(message_id)
        self.session.open(conv_id)

    def _on_sidebar_rename_requested(self, conv_id: int, title: str) -> None:
        self.store.rename(conv_id, title)
        QTimer.singleShot(0, self._refresh_conversations)

    def _on_sidebar_pin_requested(self, conv_id: int, pinned: bool) -> None:
        self.store.set_pinned(conv_id, pinned)
        self._refresh_conversations()

    def _on_sidebar_archive_requested(self, conv_id: int, archived: bool) -> None:
        self.store.set_archived(conv_id, archived)
        self._refresh_conversations()

    def _on_sidebar_system_prompt_requested(self, conv_id: int) -> None:
        current = self.store.get(conv_id).system_prompt or self.settings.system_prompt
        text, ok = QInputDialog.getMultiLineText(
            self, "System prompt", "System prompt for this chat (empty: use the default):", current)
        if ok:
            self.store.set_system_prompt(conv_id, text.strip() or None)
            self._count_timer.start()

    def _on_sidebar_search_changed(self, text: str) -> None:
        if not text.strip():
            self._refresh_conversations()
            return
        path = self.store.path
        (BackgroundOp(lambda _h: _search(path, text), "chat-search")
         .on_success(self._on_search_done(text)).start())

    def _on_search_done(self, query: str):
        def show(hits) -> None:
            if self.sidebar.search.text() == query:
                self.sidebar.set_search_results(hits)
        return show


def _search(db_path, text: str):
    """Search on a worker thread with its own read-only connection."""
    store = ChatStore.open(db_path, read_only=True)
    try:
        return store.search(text)
    finally:
        store.close()
