"""'5,812 / 8,192 tokens': how full the model's context window is, with a thin bar."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class ContextMeter(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setObjectName("MutedLabel")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(90)
        self.bar.setFixedHeight(8)
        self.setAccessibleName("Context window use")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.used = 0
        self.n_ctx = 0
        self.dropped = 0
        self.show_report(0, 0)

    def show_report(self, used: int, n_ctx: int, dropped: int = 0) -> None:
        self.used, self.n_ctx, self.dropped = used, n_ctx, dropped
        if not n_ctx:
            self.label.setText("Context: no model loaded")
            self.bar.setValue(0)
            return
        text = f"{used:,} / {n_ctx:,} tokens"
        if dropped:
            text += f" · {dropped} oldest {'message' if dropped == 1 else 'messages'} out of memory"
        self.label.setText(text)
        self.bar.setRange(0, n_ctx)
        self.bar.setValue(min(used, n_ctx))
        self.setToolTip(f"The conversation and your draft take {used:,} of the model's "
                        f"{n_ctx:,}-token context window.")
        self.setAccessibleDescription(text)
