"""The models on this machine: use one, delete one, import a GGUF from elsewhere."""
from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from app.engine_worker import _quant_from_name
from app.model_choices import available_models, models_folder
from app.threads import run_in_background
from common.task import format_bytes
from models.bundled import bundled_model_path


class LibraryTab(QWidget):
    model_chosen = Signal(str)
    """The user wants to chat with this GGUF."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.list = QListWidget()
        self.list.setAccessibleName("Models on this computer")
        self.folder = QLabel("")
        self.folder.setObjectName("MutedLabel")
        self.folder.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.use_button = QPushButton("Chat with it")
        self.use_button.setObjectName("PrimaryButton")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("DangerButton")
        self.import_button = QPushButton("Import GGUF…")
        self.status = QLabel("")
        self.status.setObjectName("MutedLabel")
        buttons = QHBoxLayout()
        for b in (self.use_button, self.delete_button, self.import_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folder)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.import_button.clicked.connect(self._on_import_clicked)
        self.refresh()

    def refresh(self) -> None:
        self.folder.setText(f"Models folder: {models_folder(self.settings)}")
        self.list.clear()
        demo = bundled_model_path()
        for path in available_models(self.settings):
            p = Path(path)
            quant = _quant_from_name(p.name)
            extra = " · demo model, ready to chat" if demo is not None and p == demo else ""
            item = QListWidgetItem(f"{p.stem}\n   {quant or 'GGUF'} · {format_bytes(p.stat().st_size)}{extra}")
            item.setData(Qt.UserRole, path)
            self.list.addItem(item)

    def selected(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item else ""

    def _on_use_clicked(self) -> None:
        if self.selected():
            self.model_chosen.emit(self.selected())

    def _on_delete_clicked(self) -> None:
        path = self.selected()
        demo = bundled_model_path()
        if not path:
            return
        if demo is not None and Path(path) == demo:
            self.status.setText("The demo model comes with LlamaDesk and stays.")
            return
        Path(path).unlink(missing_ok=True)
        self.status.setText(f"Deleted {Path(path).name}.")
        self.refresh()

    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Copy a GGUF into the models folder (in the background: it may be gigabytes)."""
        src = Path(path)
        dest = models_folder(self.settings) / src.name
        self.status.setText(f"Importing {src.name}…")

        def job(_h):
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".partial")
            shutil.copyfile(src, tmp)
            tmp.replace(dest)
            return dest

        (run_in_background(job, "import-model")
         .on_success(lambda d: (self.status.setText(f"Imported {d.name}."), self.refresh()))
         .on_failure(lambda exc: self.status.setText(f"Could not import {src.name}: {exc}")).start())
