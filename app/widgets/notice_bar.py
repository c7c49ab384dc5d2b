"""A bar across the top of the window for what the user must know at start.

For example: the chats are open read-only, a damaged database was kept aside, some
settings were not valid and use their defaults. Each notice is a line of text; the
bar stays until closed (a read-only notice cannot be closed: it stays true).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolBar, QToolButton, QVBoxLayout, QWidget


class NoticeBar(QToolBar):
    dismissed = Signal()
    """The user closed the bar."""

    def __init__(self, notices: list[str], *, closable: bool = True, parent=None):
        super().__init__("Notices", parent)
        self.setObjectName("NoticeBar")
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)
        body = QWidget()
        body.setObjectName("NoticeBody")
        row = QHBoxLayout(body)
        row.setContentsMargins(12, 6, 8, 6)
        texts = QVBoxLayout()
        texts.setSpacing(2)
        self.labels = []
        for text in notices:
            label = QLabel(text)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            label.setAccessibleName("Notice")
            texts.addWidget(label)
            self.labels.append(label)
        row.addLayout(texts, 1)
        if closable:
            close = QToolButton()
            close.setText("✕")
            close.setAccessibleName("Close the notice")
            close.clicked.connect(self._on_close_clicked)
            row.addWidget(close, 0, Qt.AlignTop)
        body.setStyleSheet("#NoticeBody { background: #fef3c7; border-bottom: 1px solid #f59e0b; }"
                           "#NoticeBody QLabel, #NoticeBody QToolButton { color: #78350f; "
                           "background: transparent; border: none; }")
        self.addWidget(body)

    def text(self) -> str:
        return "\n".join(label.text() for label in self.labels)

    def _on_close_clicked(self) -> None:
        self.hide()
        self.dismissed.emit()
