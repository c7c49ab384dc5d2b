"""The bar above the chat: which model, its quant and size, load progress, the GPU plan."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QStackedWidget,
                               QWidget)

from app.widgets.elided_label import ElidedLabel
from common.task import format_bytes
from models.choices import remote_name, remote_ref


class ModelBar(QWidget):
    model_chosen = Signal(str)
    """The user picked a model: a GGUF path, or 'remote:<server name>'."""
    manage_requested = Signal()
    """The user wants the model manager."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ModelBar")
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.picker = QComboBox()
        self.picker.setAccessibleName("Model")
        # as wide as the longest name (up to a limit): the name matters more than the plan text
        self.picker.setMinimumContentsLength(12)
        self.picker.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.picker.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.picker.setMaximumWidth(360)
        self.details = ElidedLabel("")
        self.details.setObjectName("MutedLabel")
        self.details.setAccessibleName("Model details")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(120)
        self.progress.setRange(0, 0)
        self.gpu_plan = ElidedLabel("")
        self.gpu_plan.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.gpu_plan.setObjectName("MutedLabel")
        self.gpu_plan.setAccessibleName("GPU plan")
        # Load progress takes the plan's place (the plan is unknown while loading), so the
        # bar is as wide loading as loaded: a window restored at a narrow width keeps its
        # sidebar where it was when loading ends.
        self.status = QStackedWidget()
        self.status.addWidget(self.gpu_plan)
        progress_page = QWidget()
        row = QHBoxLayout(progress_page)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        row.addWidget(self.progress, 1)
        self.status.addWidget(progress_page)
        self.status.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.manage_button = QPushButton("Models…")
        self.manage_button.setAccessibleName("Open the model manager")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addWidget(self.picker)
        layout.addWidget(self.details)
        layout.addWidget(self.status, 1)
        layout.addWidget(self.manage_button)
        self._filling = False
        self.picker.currentIndexChanged.connect(self._on_picker_index_changed)
        self.manage_button.clicked.connect(self.manage_requested)

    def set_choices(self, paths: list[str], remote_names: list[str], current: str = "") -> None:
        self._filling = True
        self.picker.clear()
        for p in paths:
            self.picker.addItem(Path(p).stem, p)
        for name in remote_names:
            self.picker.addItem(f"{name} (remote server)", remote_ref(name))
        if not paths and not remote_names:
            self.picker.addItem("No model yet: open Models…", "")
        idx = self.picker.findData(current)
        if idx >= 0:
            self.picker.setCurrentIndex(idx)
        self._filling = False
        self._show_picker_tooltip()

    def _show_picker_tooltip(self) -> None:
        """The whole name (a long one may be cut), and where the file is."""
        name, data = self.picker.currentText(), self.picker.currentData() or ""
        where = "" if not data or remote_name(data) is not None else f"\n{data}"
        self.picker.setToolTip(name + where)

    def show_loading(self, name: str) -> None:
        self.details.setText(f"Loading {name}…")
        self.progress.setRange(0, 0)
        self.status.setCurrentIndex(1)
        self.gpu_plan.setText("")

    def show_load_progress(self, fraction) -> None:
        if fraction is not None:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(fraction * 100))

    def show_loaded(self, info) -> None:
        self.status.setCurrentIndex(0)
        bits = [b for b in (info.quant, format_bytes(info.size_bytes) if info.size_bytes else "",
                            f"{info.n_ctx:,} ctx") if b]
        self.details.setText(" · ".join(bits))
        self.gpu_plan.setText(info.gpu_plan)

    def show_failed(self, message: str) -> None:
        self.status.setCurrentIndex(0)
        self.details.setText("Not loaded")
        self.details.setToolTip(message)

    def _on_picker_index_changed(self, index: int) -> None:
        self._show_picker_tooltip()
        if not self._filling and index >= 0 and self.picker.itemData(index):
            self.model_chosen.emit(self.picker.itemData(index))
