"""What the keyboard shortcuts do (mixed into MainWindow; the keys are in app.shortcuts)."""
from __future__ import annotations


class ShortcutActions:
    def stop_or_cancel(self) -> None:
        if self.generating:
            self.worker.stop()
        elif self._editing_id is not None:
            self._editing_id = None
            self.edit_banner.hide()
            self.composer.clear()

    def focus_search(self) -> None:
        self.sidebar.search.setFocus()
        self.sidebar.search.selectAll()

    def focus_composer(self) -> None:
        self.composer.setFocus()

    def _last(self, role: str):
        if self.session.conversation_id is None:
            return None
        return next((m for m in reversed(self.store.active_path(self.session.conversation_id))
                     if m.role == role), None)

    def regenerate_last(self) -> None:
        reply = self._last("assistant")
        if reply is not None:
            self._on_chat_regenerate_requested(str(reply.id))

    def copy_last_reply(self) -> None:
        reply = self._last("assistant")
        if reply is not None:
            self.chat_view.run_link(f"copy-msg:{reply.id}")

    def edit_last_message(self) -> None:
        msg = self._last("user")
        if msg is not None:
            self._on_chat_edit_requested(str(msg.id))

    def previous_chat(self) -> None:
        self._step_chat(-1)

    def next_chat(self) -> None:
        self._step_chat(1)

    def _step_chat(self, delta: int) -> None:
        lst = self.sidebar.list
        if lst.count():
            lst.setCurrentRow(max(0, min(lst.count() - 1, lst.currentRow() + delta)))

