"""The message box: Enter sends, Shift+Enter adds a line."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QPlainTextEdit


class Composer(QPlainTextEdit):
    submitted = Signal(str)
    """The user pressed Enter with non-empty text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("Message the model (Enter to send, Shift+Enter for a new line)")
        self.setAccessibleName("Message")
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event):
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and not (event.modifiers() & Qt.ShiftModifier):
            text = self.toPlainText().strip()
            if text:
                self.submitted.emit(text)
            event.accept()
            return
        super().keyPressEvent(event)
