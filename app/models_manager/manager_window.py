"""The model manager window (placeholder until its screens land)."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget
from PySide6.QtCore import Qt


class ModelManagerWindow(QWidget):
    model_ready = Signal(str)
    """A model file is ready to chat with (downloaded, converted or imported)."""

    def __init__(self, settings, parent=None):
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("Models")
        QVBoxLayout(self).addWidget(QLabel("Models"))
