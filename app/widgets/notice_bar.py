"""A bar across the top of the window for what the user must know at start.

For example: the chats are open read-only, a damaged database was kept aside, some
settings were not valid and use their defaults. Each notice is a line of text; the
bar stays until closed (a read-only notice cannot be closed: it stays true).
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolBar, QToolButton, QVBoxLayout, QWidget


class _Body(QWidget):
    """The bar's content: as tall as its wrapped lines need at the bar's width (a toolbar
    does not ask its widgets for height-for-width, so a wrapped label would guess)."""

    def __init__(self, bar: "NoticeBar"):
        super().__init__()
        self._bar = bar

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        width = max(self._bar.width(), 400)
        margins = self.layout().contentsMargins()
        text_width = width - margins.left() - margins.right() - 40
        height = sum(label.heightForWidth(text_width) for label in self._bar.labels)
        height += 2 * max(0, len(self._bar.labels) - 1) + margins.top() + margins.bottom()
        return QSize(width, max(height, 24))

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self.sizeHint().height())


class NoticeBar(QToolBar):
    dismissed = Signal()
    """The user closed the bar."""

    def __init__(self, notices: list[str], *, closable: bool = True, parent=None):
        super().__init__("Notices", parent)
        self.setObjectName("NoticeBar")
        self.setMovable(False)
        self.setFloatable(False)
        self.toggleViewAction().setVisible(False)
        self.labels: list[QLabel] = []
        body = self._body = _Body(self)
        body.setObjectName("NoticeBody")
        body.setAttribute(Qt.WA_StyledBackground, True)
        row = QHBoxLayout(body)
        row.setContentsMargins(12, 6, 8, 6)
        texts = QVBoxLayout()
        texts.setSpacing(2)
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

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._body.updateGeometry()

    def text(self) -> str:
        return "\n".join(label.text() for label in self.labels)

    def _on_close_clicked(self) -> None:
        self.hide()
        self.dismissed.emit()
