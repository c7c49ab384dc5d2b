"""The main window's side of the trash: open it, and follow what it changed."""
from __future__ import annotations


class TrashActions:
    """Mixed into MainWindow (uses its store, session, sidebar, _trash, _dialogs)."""

    def open_trash(self):
        from app.sidebar.trash_dialog import TrashDialog

        if self._trash is None:
            self._trash = TrashDialog(self.store, self)
            self._trash.conversations_restored.connect(self._on_trash_conversations_restored)
            self._trash.conversations_purged.connect(self._on_trash_conversations_purged)
            self._dialogs.append(self._trash)
        self._trash.present()
        return self._trash

    def _on_trash_conversations_restored(self, ids: list) -> None:
        self._follow_trash(ids)
        self.session.open(ids[-1])

    def _on_trash_conversations_purged(self, ids: list) -> None:
        self.memory.forget(ids)          # their saved KV caches go with them
        self._follow_trash(ids)

    def _follow_trash(self, ids: list) -> None:
        if self.session.last_deleted in ids:      # "Undo delete" has nothing left to undo
            self.session.last_deleted = None
            self.sidebar.hide_undo()
        self._refresh_conversations()
