"""The models on this machine (models.library): metadata, warnings, use, remove, import.

Scanning reads every new GGUF's header (seconds for a big vocabulary), so it runs
on a worker thread; the list fills in when it is done.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from models.choices import models_folder
from app.models_manager.library_details import details_html, list_text, warning_text
from app.threads import run_in_background
from app.widgets.status_text import show_status
from common.task import format_bytes, format_eta, plural
from models.bundled import NOT_REMOVABLE


def scan_library(models_dir: Path, handle=None):
    """Every library entry, the demo model last (runs on a worker thread; ``handle``
    cancels it between entries)."""
    from common.paths import data_paths
    from models import library

    if models_dir.resolve() != data_paths().models.resolve() and models_dir.is_dir():
        library.add_folder(models_dir)   # the folder chosen in Settings is part of the library
    return library.scan(include_demo=True, handle=handle)


class LibraryTab(QWidget):
    model_chosen = Signal(str)
    """The user wants to chat with this GGUF."""
    convert_requested = Signal(str)
    """The user wants to convert this checkpoint folder."""
    scan_finished = Signal()
    """The list was refilled from a fresh scan."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.entries: list = []
        self._scan_serial = 0
        self.list = QListWidget()
        self.list.setAccessibleName("Models on this computer")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # Right, not middle: the middle of "135 M parameters · Q4_1 · 98.4 MB · demo model"
        # is the size, which read as "…B"; the end of a line matters least.
        self.list.setTextElideMode(Qt.ElideRight)
        self.list.setSpacing(2)
        self.folder = QLabel("")
        self.folder.setObjectName("MutedLabel")
        self.folder.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.folder.setWordWrap(True)      # a long models folder path must not widen the window
        self.details = QLabel("Scanning…")
        self.details.setTextFormat(Qt.RichText)
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.details.setAccessibleName("Model details")
        self.warning = QLabel("")
        self.warning.setObjectName("WarningLabel")
        self.warning.setWordWrap(True)
        self.warning.setAccessibleName("Model warning")
        self.warning.hide()
        self.use_button = QPushButton("Chat with it")
        self.use_button.setObjectName("PrimaryButton")
        self.delete_button = QPushButton("Remove…")
        self.delete_button.setObjectName("DangerButton")
        self.delete_button.setAccessibleName("Remove the model and its files")
        self.measure_button = QPushButton("Measure quality")
        self.measure_button.setAccessibleName("Measure the model's quality against the original")
        self.measure_button.hide()
        self._measure_op = None
        self.import_button = QPushButton("Import GGUF…")
        self.rescan_button = QPushButton("Rescan")
        self.status = QLabel("")
        self.status.setObjectName("MutedLabel")
        self.status.setWordWrap(True)
        self.confirm_box = None
        buttons = QHBoxLayout()
        for b in (self.use_button, self.measure_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(8, 0, 0, 0)
        rl.addWidget(self.details)
        rl.addWidget(self.warning)
        rl.addStretch(1)
        rl.addLayout(buttons)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.list)
        split.addWidget(right)
        split.setSizes([420, 480])
        bottom = QHBoxLayout()
        bottom.addWidget(self.import_button)
        bottom.addWidget(self.rescan_button)
        bottom.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folder)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)
        self.list.currentRowChanged.connect(self._on_list_row_changed)
        self.use_button.clicked.connect(self._on_use_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.measure_button.clicked.connect(self._on_measure_clicked)
        self.import_button.clicked.connect(self._on_import_clicked)
        self.rescan_button.clicked.connect(lambda: self.refresh())
        self._show_entry(None)
        self.refresh()

    # scanning ---------------------------------------------------------------------
    def refresh(self, select: str = "", message: str = "") -> None:
        """Rescan on a worker thread; the list is refilled when it finishes, then ``message`` shown."""
        folder = models_folder(self.settings)
        self.folder.setText(f"Models folder: {folder}")
        self._scan_serial += 1
        serial = self._scan_serial
        keep = select or self.selected()
        self.say("Scanning…")
        (run_in_background(lambda h: scan_library(folder, h), "library-scan")
         .on_success(lambda entries: self._on_scan_done(serial, entries, keep, message))
         .on_failure(lambda exc: self.say(f"Could not scan the library: {exc}", True)).start())

    def _on_scan_done(self, serial: int, entries: list, keep: str, message: str = "") -> None:
        if serial != self._scan_serial:
            return  # a newer scan is on its way
        self.entries = entries
        self.list.clear()
        for e in entries:
            item = QListWidgetItem(list_text(e))
            item.setData(Qt.UserRole, str(e.path))
            item.setToolTip(warning_text(e) or str(e.path))
            self.list.addItem(item)
        paths = [str(e.path) for e in entries]
        self.list.setCurrentRow(paths.index(keep) if keep in paths else (0 if entries else -1))
        self._show_entry(self.current_entry())
        total = sum(e.size for e in entries)
        self.say(message or f"{plural(len(entries), 'model')} · {format_bytes(total)}")
        self.scan_finished.emit()

    # the selected model ---------------------------------------------------------------
    def current_entry(self):
        row = self.list.currentRow()
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def selected(self) -> str:
        e = self.current_entry()
        return str(e.path) if e else ""

    def _on_list_row_changed(self, _row: int) -> None:
        self._show_entry(self.current_entry())

    def _show_entry(self, e) -> None:
        reference = self.reference_for(e)
        if e is None:
            self.details.setText("No model selected.")
            self.warning.hide()
        else:
            self.details.setText(details_html(e, reference))
            self.warning.setText(warning_text(e))
            self.warning.setVisible(bool(warning_text(e)))
        usable_gguf = e is not None and e.usable and e.kind == "gguf"
        self.use_button.setEnabled(usable_gguf or (e is not None and e.kind == "checkpoint" and e.usable))
        self.use_button.setText("Convert…" if e is not None and e.kind == "checkpoint" else "Chat with it")
        self.delete_button.setEnabled(e is not None and e.source != "demo")
        self.delete_button.setToolTip(NOT_REMOVABLE if e is not None and e.source == "demo" else "")
        self.measure_button.setVisible(reference is not None or self._measure_op is not None)

    def reference_for(self, e):
        """The library file an unmeasured quantized GGUF can be measured against, or None."""
        from models.quant_quality import find_reference

        if e is None or e.kind != "gguf" or not e.usable or e.quality:
            return None
        return find_reference(e, self.entries)

    # measuring quality -------------------------------------------------------------------
    def _on_measure_clicked(self) -> None:
        if self._measure_op is not None:
            self._measure_op.cancel()
            return
        e = self.current_entry()
        reference = self.reference_for(e)
        if reference is None:
            return
        from engine.quality import measure_and_record

        self.measure_button.setText("Cancel measuring")
        self.say(f"Measuring {e.name} against {reference.name}…")
        self._measure_op = (
            run_in_background(lambda h: measure_and_record(reference.path, e.path, handle=h), "measure-quality")
            .on_progress(lambda p: self.say(f"{p.message} · {format_eta(p.eta_s)} left"))
            .on_success(lambda report: self._on_measure_finished(e, None))
            .on_failure(lambda exc: self._on_measure_finished(e, f"Could not measure {e.name}: {exc}"))
            .on_cancel(lambda: self._on_measure_finished(e, "Measurement cancelled; nothing was changed."))
            .start())

    def _on_measure_finished(self, entry, problem) -> None:
        self._measure_op = None
        self.measure_button.setText("Measure quality")
        if problem:
            self.say(problem, error=problem.startswith("Could not"))
            self._show_entry(self.current_entry())
        else:
            self.refresh(select=str(entry.path), message=f"Measured {entry.name}.")

    def _on_use_clicked(self) -> None:
        e = self.current_entry()
        if e is None:
            return
        if e.kind == "checkpoint":
            self.convert_requested.emit(str(e.path))
        elif e.usable:
            self.model_chosen.emit(str(e.path))

    # removing ---------------------------------------------------------------------------
    def _on_delete_clicked(self) -> None:
        e = self.current_entry()
        if e is None or e.source == "demo":
            return
        where = "the Hugging Face cache" if e.source == "hf-cache" else str(Path(e.path).parent)
        box = QMessageBox(QMessageBox.Warning, "Remove model",
                          f"Remove {e.name}?", QMessageBox.Yes | QMessageBox.Cancel, self)
        box.setInformativeText(f"This deletes {plural(len(e.files), 'file')}, {format_bytes(e.size)}, from {where}.")
        box.button(QMessageBox.Yes).setText("Remove")
        box.setDefaultButton(QMessageBox.Cancel)
        box.finished.connect(lambda result, entry=e: self._on_confirm_finished(result, entry))
        self.confirm_box = box
        box.open()

    def _on_confirm_finished(self, result: int, entry) -> None:
        self.confirm_box = None
        if result != QMessageBox.Yes:
            return
        from models import library

        self.say(f"Removing {entry.name}…")
        (run_in_background(lambda _h: library.remove(entry), "library-remove")
         .on_success(lambda _r: self.refresh(message=f"Removed {entry.name}."))
         .on_failure(lambda exc: self.say(f"Could not remove {entry.name}: {exc}", True)).start())

    # importing ------------------------------------------------------------------------
    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        """Validate and copy a GGUF into the models folder (on a worker thread: it may be gigabytes)."""
        from models import library

        src = Path(path)
        folder = models_folder(self.settings)
        self.say(f"Checking and importing {src.name}…")
        (run_in_background(lambda _h: library.import_gguf(src, models_dir=folder), "import-model")
         .on_success(lambda entry: self.refresh(select=str(entry.path), message=f"Imported {src.name}."))
         .on_failure(lambda exc: self._on_import_failed(src, exc)).start())

    def _on_import_failed(self, src: Path, exc) -> None:
        from models.gguf_validate import UnsafeGGUFError

        if isinstance(exc, UnsafeGGUFError):
            self.say(f"Refused {src.name}: {exc}", error=True)
        else:
            self.say(f"Could not import {src.name}: {exc}", error=True)

    def say(self, text: str, error: bool = False) -> None:
        """Show a status line; errors in the error colour."""
        show_status(self.status, text, error)
